"""Non-maximum suppression inside the exported graph, built from plain tensor ops with fixed-size outputs.

``--task detection -o nms=true`` wraps a detector whose raw output is dense — YOLO-style ``[B, 4+C, A]``
(centre-x, centre-y, width, height, then C class scores per anchor) or a pair ``boxes [B, A, 4]`` (x1, y1, x2,
y2) + ``scores [B, A, C]`` — with :class:`DetectionNMS`, which returns::

    boxes [B, max_det, 4] (x1, y1, x2, y2)   scores [B, max_det]   classes [B, max_det] (int32, -1 = none)
    num_detections [B] (int32)

torchvision's ``nms`` is data-dependent (its output length depends on the values), which torch.export cannot
trace with a dynamic batch. Here every shape is fixed: the best ``pre_nms_topk`` candidates per image are taken
with ``topk``, their pairwise IoU is one ``[B, K, K]`` tensor, and greedy suppression ("a box survives unless a
higher-scoring survivor of its class overlaps it by more than iou_threshold") is solved by a fixed number of
parallel sweeps, which is exact whenever chains of suppression are at most that deep (``sweeps``, default 8).
The survivors' scores are ranked once more with ``topk(max_det)``. So pt2, ONNX, OpenVINO, TFLite, ExecuTorch
and Core ML can all hold it, batch dynamic.

Artifacts are compared by matching detections (:func:`compare_detections`), not raw tensors: two correct runtimes
may order tied scores differently, or disagree on a detection sitting exactly at a threshold.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelport.errors import ConfigError

OUTPUT_NAMES = ("boxes", "scores", "classes", "num_detections")
OPTION_KEYS = {"nms": "nms", "max_det": "max_det", "iou_threshold": "iou_threshold", "iou": "iou_threshold",
               "score_threshold": "score_threshold", "conf": "score_threshold",
               "confidence_threshold": "score_threshold", "class_agnostic": "class_agnostic",
               "agnostic": "class_agnostic", "pre_nms_topk": "pre_nms_topk", "box_format": "box_format"}
BOX_FORMATS = ("auto", "cxcywh", "xyxy")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class NMSConfig:
    """Thresholds and sizes of the in-graph NMS (recorded in metadata.json's ``postprocessing``)."""

    max_det: int = 100
    iou_threshold: float = 0.45
    score_threshold: float = 0.25
    class_agnostic: bool = False
    pre_nms_topk: int = 1000
    sweeps: int = 8
    box_format: str = "auto"  # auto: cxcywh for one [B, 4+C, A] tensor, xyxy for a (boxes, scores) pair

    def __post_init__(self) -> None:
        if self.max_det < 1 or self.pre_nms_topk < 1:
            raise ConfigError("nms: max_det and pre_nms_topk must be positive integers")
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ConfigError(f"nms: iou_threshold={self.iou_threshold} must be in (0, 1]")
        if not 0.0 <= self.score_threshold < 1.0:
            raise ConfigError(f"nms: score_threshold={self.score_threshold} must be in [0, 1)")
        if self.box_format not in BOX_FORMATS:
            raise ConfigError(f"nms: box_format={self.box_format!r}; use one of {', '.join(BOX_FORMATS)}")

    def postprocessing(self) -> dict[str, Any]:
        """metadata.json's ``postprocessing`` block for an export with NMS in the graph."""
        return {
            "apply_nms": False,  # already applied inside the model: consumers must not run NMS again
            "nms_in_graph": True,
            "nms_method": "in-graph batched greedy NMS (modelport.engine.nms, fixed-size outputs)",
            "coordinate_format": "xyxy",
            "confidence_threshold": self.score_threshold,
            "iou_threshold": self.iou_threshold,
            "max_det": self.max_det,
            "class_agnostic": self.class_agnostic,
            "outputs": {"boxes": "[batch, max_det, 4] x1,y1,x2,y2", "scores": "[batch, max_det]",
                        "classes": "[batch, max_det] int32, -1 for empty slots",
                        "num_detections": "[batch] int32: the first num_detections rows are detections"},
        }


def _bool(key: str, value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ConfigError(f"-o {key}={value}: expected true or false")


def split_options(options: Sequence[str]) -> tuple[NMSConfig | None, list[str]]:
    """Take the NMS keys (``nms``, ``max_det``, ``iou_threshold``, ``score_threshold``, ``class_agnostic``...)
    out of ``-o`` pairs; returns the config (None when ``nms`` is not true) and the format options left."""
    found: dict[str, str] = {}
    rest: list[str] = []
    for raw in options:
        key, sep, value = raw.partition("=")
        k = key.strip().replace("-", "_")
        if sep and k in OPTION_KEYS:
            found[OPTION_KEYS[k]] = value.strip()
        else:
            rest.append(raw)
    if not found:
        return None, rest
    if not _bool("nms", found.get("nms", "false")):
        extra = sorted(set(found) - {"nms"})
        if extra:
            raise ConfigError(f"-o {', '.join(extra)} configure in-graph NMS; add -o nms=true (with --task detection)")
        return None, rest
    kwargs: dict[str, Any] = {}
    try:
        for k, v in found.items():
            if k == "nms":
                continue
            if k in ("max_det", "pre_nms_topk"):
                kwargs[k] = int(v)
            elif k in ("iou_threshold", "score_threshold"):
                kwargs[k] = float(v)
            elif k == "class_agnostic":
                kwargs[k] = _bool(k, v)
            else:
                kwargs[k] = v
    except ValueError:
        raise ConfigError(f"-o {k}={v}: not a number") from None
    return NMSConfig(**kwargs), rest


def config_from(value: Any) -> NMSConfig | None:
    """``nms=`` of the Python API: True, a mapping of NMSConfig fields, an NMSConfig, or None/False."""
    if value in (None, False):
        return None
    if value is True:
        return NMSConfig()
    if isinstance(value, NMSConfig):
        return value
    if isinstance(value, Mapping):
        return NMSConfig(**dict(value))
    raise ConfigError(f"nms= takes True, a dict of NMS settings or modelport.NMSConfig, got {type(value).__name__}")


# ----------------------------------------------------------------------------- the graph


def split_raw(raw: Any, box_format: str) -> tuple[Any, Any, str]:
    """(boxes [B, A, 4], scores [B, A, C], box format) from the detector's raw output."""
    import torch

    from modelport.engine.outputs import flatten_outputs

    flat = [t for _, t in flatten_outputs(raw)]
    if len(flat) == 1 and flat[0].ndim == 3:
        pred = flat[0]  # [B, 4 + C, A]
        if pred.shape[1] < 5:
            raise ConfigError(f"nms: a single raw output must be [B, 4+C, A] with C >= 1; got {list(pred.shape)}")
        pred = pred.transpose(1, 2)
        return pred[..., :4], pred[..., 4:], "cxcywh" if box_format == "auto" else box_format
    if len(flat) == 2 and flat[0].ndim == 3 and flat[0].shape[-1] == 4 and flat[1].ndim == 3:
        return flat[0], flat[1], "xyxy" if box_format == "auto" else box_format
    shapes = ", ".join(str(list(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__ for t in flat)
    raise ConfigError(f"nms: the model's raw output ({shapes}) is neither one [B, 4+C, A] tensor nor "
                      "(boxes [B, A, 4], scores [B, A, C])")


def _xyxy(boxes: Any, fmt: str) -> Any:
    import torch

    if fmt == "xyxy":
        return boxes
    # indexing, not unbind: coremltools cannot unbind a tensor whose batch is symbolic
    cx, cy, w, h = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def pairwise_iou(boxes: Any) -> Any:
    """IoU of every pair of boxes ``[B, K, 4]`` (xyxy) → ``[B, K, K]``."""
    import torch

    x1, y1, x2, y2 = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    area = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    ix1 = torch.maximum(x1[:, :, None], x1[:, None, :])
    iy1 = torch.maximum(y1[:, :, None], y1[:, None, :])
    ix2 = torch.minimum(x2[:, :, None], x2[:, None, :])
    iy2 = torch.minimum(y2[:, :, None], y2[:, None, :])
    inter = (ix2 - ix1).clamp(min=0) * (iy2 - iy1).clamp(min=0)
    union = area[:, :, None] + area[:, None, :] - inter
    return inter / union.clamp(min=1e-9)


def _gather_boxes(boxes: Any, idx: Any) -> Any:
    """``boxes[b, idx[b, k], :]`` — one gather per coordinate, stacked, so every converter keeps the last axis at 4
    (coremltools loses a gathered axis's size when the batch is symbolic)."""
    import torch

    return torch.stack([boxes[..., c].gather(1, idx) for c in range(4)], dim=-1)


def batched_nms(boxes: Any, scores: Any, cfg: NMSConfig) -> dict[str, Any]:
    """Fixed-size NMS: ``boxes [B, A, 4]`` (xyxy), ``scores [B, A, C]`` → the four fixed-size outputs."""
    import torch

    conf, cls = scores.max(dim=-1)  # [B, A]
    k = min(int(boxes.shape[1]), cfg.pre_nms_topk)  # static: the anchor count does not depend on the batch
    top_conf, idx = conf.topk(k, dim=1)  # sorted, best first
    top_boxes = _gather_boxes(boxes, idx)
    top_cls = cls.gather(1, idx)
    valid = (top_conf > cfg.score_threshold).to(top_conf.dtype)
    iou = pairwise_iou(top_boxes)
    if not cfg.class_agnostic:
        iou = iou * (top_cls[:, :, None] == top_cls[:, None, :]).to(iou.dtype)
    # earlier = higher score: row j may suppress column i only when j < i
    earlier = torch.ones(k, k, dtype=iou.dtype, device=iou.device).triu(diagonal=1)
    overlaps = ((iou * earlier) > cfg.iou_threshold).to(iou.dtype)  # [B, K(j), K(i)]
    keep = valid
    for _ in range(cfg.sweeps):  # Jacobi sweeps of the greedy recursion keep_i = valid_i and no kept j<i overlaps
        suppressed = (overlaps * keep[:, :, None]).amax(dim=1)
        keep = valid * (1 - suppressed)
    kept_conf = top_conf * keep
    n = min(cfg.max_det, k)
    out_conf, order = kept_conf.topk(n, dim=1)
    present = (out_conf > 0).to(out_conf.dtype) * (keep.gather(1, order))
    out_boxes = _gather_boxes(top_boxes, order) * present[..., None]
    out_cls = torch.where(present > 0, top_cls.gather(1, order), torch.full_like(order, -1))
    out_conf = out_conf * present
    if n < cfg.max_det:  # fewer candidates than max_det: pad to the promised size
        pad = cfg.max_det - n
        out_boxes = torch.nn.functional.pad(out_boxes, (0, 0, 0, pad))
        out_conf = torch.nn.functional.pad(out_conf, (0, pad))
        out_cls = torch.nn.functional.pad(out_cls, (0, pad), value=-1)
        present = torch.nn.functional.pad(present, (0, pad))
    return {"boxes": out_boxes, "scores": out_conf, "classes": out_cls.to(torch.int32),
            "num_detections": present.sum(dim=1).to(torch.int32)}


def with_nms(model: Any, cfg: NMSConfig) -> Any:
    """``model`` followed by in-graph NMS; forward keeps ``model``'s signature, so inputs still bind by name."""
    import inspect

    import torch

    class DetectionNMS(torch.nn.Module):
        """A detector with NMS in its graph: raw dense predictions in, fixed-size detections out."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.nms = cfg

        def forward(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            boxes, scores, fmt = split_raw(self.model(*args, **kwargs), cfg.box_format)
            return batched_nms(_xyxy(boxes, fmt), scores, cfg)

    try:
        sig = inspect.signature(model.forward)
        DetectionNMS.forward.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY), *sig.parameters.values()])
    except (TypeError, ValueError):
        pass
    wrapped = DetectionNMS()
    wrapped.train(getattr(model, "training", False))
    return wrapped


def num_classes(model: Any, example: Mapping[str, Any], call: Any) -> int:
    """C, read from one run of the raw detector (for metadata.json's class names)."""
    import torch

    with torch.no_grad():
        _, scores, _ = split_raw(call(model, example), "auto")
    return int(scores.shape[-1])


# ----------------------------------------------------------------------------- detection-aware comparison


@dataclass
class DetectionMatch:
    """How an artifact's detections matched PyTorch's, over every image of every input set."""

    reference: int = 0
    artifact: int = 0
    matched: int = 0
    borderline: int = 0  # unmatched detections whose score sits at a threshold or a tie: allowed to differ
    max_score_diff: float = 0.0
    max_box_diff: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        need = self.reference - self.borderline
        return 1.0 if need <= 0 else min(self.matched / need, 1.0)


def _box_iou(a: Any, b: Any) -> Any:
    import numpy as np

    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def _dets(outs: Sequence[Any], names: Sequence[str], i: int) -> tuple[Any, Any, Any]:
    import numpy as np

    pos = {n: j for j, n in enumerate(names)}
    n = int(np.asarray(outs[pos["num_detections"]])[i])
    boxes = np.asarray(outs[pos["boxes"]], dtype=np.float64)[i, :n]
    scores = np.asarray(outs[pos["scores"]], dtype=np.float64)[i, :n]
    classes = np.asarray(outs[pos["classes"]]).astype(np.int64)[i, :n]
    return boxes, scores, classes


def match_detections(reference: Sequence[Sequence[Any]], actual: Sequence[Sequence[Any]], names: Sequence[str],
                     atol: float, rtol: float, iou_match: float = 0.5,
                     score_threshold: float | None = None) -> DetectionMatch:
    """Match every image's detections by class and IoU (best score first); compare matched scores and boxes.

    A PyTorch detection the artifact lacks (or the reverse) fails only when its score is clear of the cut: not
    within tolerance of the score threshold, of the lowest score kept (max_det), or tied with another score.
    """
    import numpy as np

    rule = _MatchRule(atol, rtol, iou_match, score_threshold)
    m = DetectionMatch()
    for set_i, (ref, act) in enumerate(zip(reference, actual, strict=True)):
        batch = int(np.asarray(ref[list(names).index("num_detections")]).shape[0])
        for b in range(batch):
            ref_dets, act_dets = _dets(ref, names, b), _dets(act, names, b)
            m.reference += len(ref_dets[1])
            m.artifact += len(act_dets[1])
            max_det = int(np.asarray(ref[list(names).index("boxes")]).shape[1])
            _match_image(m, f"input set {set_i}, image {b}", ref_dets, act_dets, max_det, rule)
    return m


@dataclass(frozen=True)
class _MatchRule:
    """How :func:`match_detections` matches and compares detections (its tolerance and thresholds)."""

    atol: float
    rtol: float
    iou_match: float
    score_threshold: float | None


def _borderline_test(ref_dets: tuple[Any, Any, Any], act_dets: tuple[Any, Any, Any], max_det: int,
                     rule: _MatchRule) -> Callable[[float, int, Any], bool]:
    """A test of whether one image's unmatched detection sits at a cut, where either runtime may keep or drop it."""
    import numpy as np

    rb, rs, rc = ref_dets
    ab, as_, ac = act_dets
    saturated = len(rs) >= max_det or len(as_) >= max_det  # only then does max_det cut detections off
    floor = min(rs.min() if len(rs) else math.inf, as_.min() if len(as_) else math.inf)
    cuts = ([floor] if saturated else []) + ([rule.score_threshold] if rule.score_threshold is not None else [])
    boxes_all = np.concatenate([rb, ab]) if len(rb) + len(ab) else np.zeros((0, 4))
    scores_all = np.concatenate([rs, as_])
    classes_all = np.concatenate([rc, ac])

    def borderline(s: float, cls: int, box: Any) -> bool:
        """At the score threshold or the max_det cut, or tied with an overlapping detection of its class
        (which of the two NMS keeps then depends on the runtime's order)."""
        t = 2 * (rule.atol + rule.rtol * abs(s))
        if any(abs(s - c) <= t for c in cuts):
            return True
        if not len(scores_all):
            return False
        overlap = _box_iou(np.asarray(box, dtype=np.float64)[None], boxes_all)[0]
        near = (np.abs(scores_all - s) <= t) & (classes_all == cls) & (overlap > 0.1) & (overlap < 0.999)
        return bool(np.any(near))

    return borderline


def _match_image(m: DetectionMatch, where: str, ref_dets: tuple[Any, Any, Any], act_dets: tuple[Any, Any, Any],
                 max_det: int, rule: _MatchRule) -> None:
    """Match one image's detections (PyTorch's best score first) and add the counts and failures to ``m``."""
    import numpy as np

    rb, rs, rc = ref_dets
    ab, as_, ac = act_dets
    atol, rtol = rule.atol, rule.rtol
    borderline = _borderline_test(ref_dets, act_dets, max_det, rule)
    iou = _box_iou(rb, ab) if len(rb) and len(ab) else np.zeros((len(rb), len(ab)))
    taken: set[int] = set()
    for r in np.argsort(-rs, kind="stable"):
        cands = [a for a in range(len(as_)) if a not in taken and ac[a] == rc[r] and iou[r, a] >= rule.iou_match]
        if not cands:
            if borderline(float(rs[r]), int(rc[r]), rb[r]):
                m.borderline += 1
            else:
                m.failures.append(f"{where}: PyTorch's class-{rc[r]} detection "
                                  f"(score {rs[r]:.4f}) has no match in the artifact")
            continue
        a = max(cands, key=lambda a: iou[r, a])
        taken.add(a)
        m.matched += 1
        ds = abs(float(as_[a] - rs[r]))
        db = float(np.max(np.abs(ab[a] - rb[r])))
        m.max_score_diff = max(m.max_score_diff, ds)
        m.max_box_diff = max(m.max_box_diff, db)
        if ds > atol + rtol * abs(float(rs[r])):
            m.failures.append(f"{where}: score {as_[a]:.6f} vs PyTorch {rs[r]:.6f}")
        if db > atol + rtol * float(np.max(np.abs(rb[r]))) and db > 10 * atol:
            m.failures.append(f"{where}: box off by {db:.3g}")
    for a in range(len(as_)):
        if a not in taken and not borderline(float(as_[a]), int(ac[a]), ab[a]):
            m.failures.append(f"{where}: the artifact's class-{ac[a]} detection "
                              f"(score {as_[a]:.4f}) is not in PyTorch's")


def is_nms_output(names: Sequence[str]) -> bool:
    """True for the four outputs :func:`with_nms` produces."""
    return tuple(names) == OUTPUT_NAMES

"""Check onnxslim's work: the simplified model must give what the unsimplified one gives, on real inputs.

onnxslim folds shapes and constants; on a Mask R-CNN-style model it turned masks ``[N, 1, H, W]`` into
``[1, 1, H, W]``. Both models run in onnxruntime on the export's example inputs (and on another batch when the
batch is dynamic); when they disagree, the unsimplified model is kept and the record says why. The unsimplified
model is also compared with PyTorch, so a later hint that blames the exporter has its premise checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelport import ExportRequest

# in-memory checks only below this many weight bytes: two onnxruntime sessions hold their own copies
MAX_CHECK_BYTES = 256 * 1024 * 1024


@dataclass
class SlimCheck:
    """What the comparison found: problems per output (empty when equal) and what was compared."""

    problems: list[str] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    exporter_vs_pytorch: list[str] | None = None
    skipped: str | None = None


def _run(proto: Any, feeds: Sequence[dict[str, Any]]) -> list[list[Any]]:
    import onnxruntime as ort

    from modelport_onnx.runtime import session_options

    session = ort.InferenceSession(proto.SerializeToString(), sess_options=session_options(1, quiet=True),
                                   providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    outs = []
    for feed in feeds:
        values = list(feed.values())
        given = {n: feed[n] if n in feed else values[i] for i, n in enumerate(names) if n in feed or i < len(values)}
        outs.append(list(session.run(None, given)))
    return outs


def _diff(names: Sequence[str], expected: Sequence[Any], got: Sequence[Any], atol: float, rtol: float) -> list[str]:
    import numpy as np

    problems = []
    if len(expected) != len(got):
        return [f"{len(got)} outputs instead of {len(expected)}"]
    for name, e, g in zip(names, expected, got, strict=True):
        e, g = np.asarray(e), np.asarray(g)
        if e.shape != g.shape:
            problems.append(f"{name}: shape {list(g.shape)} instead of {list(e.shape)}")
        elif e.size and e.dtype.kind in "fc" and not np.allclose(g, e, atol=atol, rtol=rtol, equal_nan=True):
            problems.append(f"{name}: values differ by up to {float(np.nanmax(np.abs(g - e))):.3g}")
        elif e.size and e.dtype.kind not in "fc" and not np.array_equal(g, e):
            problems.append(f"{name}: values differ")
    return problems


def feeds_for(request: ExportRequest, trace_args: Sequence[Any]) -> list[dict[str, Any]]:
    """The example inputs, plus a batch of 3 when the batch axis is dynamic (where shape folding shows)."""
    import torch

    sets = [tuple(trace_args)]
    if request.inputs.dynamic_batch:
        sets.append(tuple(request.make_inputs(batch=3, seed=5)))
    feeds = []
    for args in sets:
        if any(a.dtype == torch.bfloat16 for a in args):
            continue
        feeds.append({n: a.numpy() for n, a in zip(request.input_names, args, strict=True)})
    return feeds


def check_simplified(original: Any, slimmed: Any, request: ExportRequest, trace_args: Sequence[Any],
                     weights: int, atol: float = 1e-4, rtol: float = 1e-3) -> SlimCheck:
    """Run both models (and PyTorch) on the same inputs; problems list where the simplified one differs."""
    import torch
    from modelport.engine.outputs import flatten_outputs

    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return SlimCheck(skipped="onnxruntime is not installed")
    if weights > MAX_CHECK_BYTES:
        return SlimCheck(skipped=f"weights over {MAX_CHECK_BYTES} bytes: left to validation")
    feeds = feeds_for(request, trace_args)
    if not feeds:
        return SlimCheck(skipped="bfloat16 inputs")
    names = [o.name for o in original.graph.output]
    check = SlimCheck(batches=[int(next(iter(f.values())).shape[0]) for f in feeds])
    try:
        before = _run(original, feeds)
    except Exception as exc:  # the unsimplified model does not run: nothing to compare against
        check.skipped = f"the unsimplified model does not run in onnxruntime ({type(exc).__name__})"
        return check
    try:
        after = _run(slimmed, feeds)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        check.problems.append(f"the simplified model fails to run: {type(exc).__name__}: {msg}"[:300])
        return check
    for b, a in zip(before, after, strict=True):
        for p in _diff(names, b, a, atol, rtol):
            if p not in check.problems:
                check.problems.append(p)
    vs_torch: list[str] = []
    with torch.no_grad():
        for feed, b in zip(feeds, before, strict=True):
            ref = [t.detach().float().numpy() if t.is_floating_point() else t.numpy()
                   for _, t in flatten_outputs(request.model(*[torch.from_numpy(v) for v in feed.values()]))]
            vs_torch.extend(p for p in _diff(names, ref, b, atol, rtol) if p not in vs_torch)
    check.exporter_vs_pytorch = vs_torch
    return check

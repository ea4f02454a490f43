"""Detectors with NMS in the graph (issue 14 C): a trained YOLO-style detector exported with ``-o nms=true`` to
every format available here, validated by matching detections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import modelport
import numpy as np
import pytest
from detection_models import CLASSES, draw, trained_detector
from modelport.engine.inputs import InputSpec, TensorSpec
from modelport.engine.nms import NMSConfig, match_detections, with_nms
from modelport.plugins import get_plugin_manager

NMS = {"max_det": 10, "score_threshold": 0.3, "iou_threshold": 0.5}
# ExecuTorch, TFLite and Core ML hold the same NMS too; their slower converters are measured by
# benchmarks/realmodels_matrix.py (table in docs/real-models.md), not in CI
FORMATS = ("pt2", "onnx", "openvino", "torchscript")


@pytest.fixture(scope="module")
def detector() -> Any:
    return trained_detector()


@pytest.fixture(scope="module")
def exported(detector: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    host = get_plugin_manager()
    formats = [f for f in FORMATS if f in host.formats and host.formats[f][0].availability().export]
    images, _ = draw(24, seed=7)
    spec = InputSpec([TensorSpec("image", (1, 3, 32, 32))]).with_dynamic_batch()
    root = tmp_path_factory.mktemp("nms")
    result = modelport.export(detector, formats, spec, output_dir=root, task="detection", nms=NMS,
                              sample_inputs={"image": images}, force=True, per_format_dirs=True)
    return result, formats


def test_every_available_format_holds_the_nms_and_matches_pytorch(exported: Any) -> None:
    result, formats = exported
    assert {"pt2", "onnx"}.issubset(formats)
    statuses = {f: result[f].status for f in formats}
    for fmt in formats:
        r = result[fmt]
        if fmt == "coreml" and r.status in ("structure-only", "skipped"):
            continue  # Core ML runs only on macOS: exported and checked structurally here
        assert r.status == "passed", f"{fmt}: {r.error} ({statuses})"
        det = r.record["validation"]["checks"]["detections"]
        assert det["reference"] >= 20 and det["matched"] >= det["reference"] - det["borderline"], (fmt, det)
        assert det["recall"] == 1.0
        assert {1, 4, 8}.issubset(r.validation.batch_sizes)  # batch dynamic through the NMS


def test_metadata_records_the_thresholds_and_fixed_size_outputs(exported: Any) -> None:
    result, _ = exported
    md = json.loads((result["onnx"].path / "metadata.json").read_text())
    post = md["postprocessing"]
    assert post["confidence_threshold"] == 0.3 and post["iou_threshold"] == 0.5 and post["max_det"] == 10
    assert post["nms_in_graph"] is True and post["coordinate_format"] == "xyxy"
    assert md["task_type"] == "detection" and md["num_classes"] == CLASSES
    assert md["output_shape"]["boxes"] == ["batch", 10, 4]
    assert md["output_shape"]["num_detections"] == ["batch"]


def test_suppression_removes_overlapping_boxes_of_a_class(detector: Any) -> None:
    import torch

    images, _ = draw(16, seed=3)
    wrapped = with_nms(detector, NMSConfig(**NMS)).eval()
    with torch.no_grad():
        out = wrapped(torch.from_numpy(images))
        raw = detector(torch.from_numpy(images))
    candidates = int((raw[:, 4:].max(1).values > 0.3).sum())
    kept = int(out["num_detections"].sum())
    assert 0 < kept < candidates  # real detections, and overlapping ones suppressed
    for i in range(16):
        n = int(out["num_detections"][i])
        boxes, classes = out["boxes"][i, :n], out["classes"][i, :n]
        for a in range(n):
            for b in range(a + 1, n):
                if classes[a] == classes[b]:
                    from modelport.engine.nms import pairwise_iou

                    assert float(pairwise_iou(boxes[None, [a, b]])[0, 0, 1]) <= 0.5
        assert (out["classes"][i, n:] == -1).all() and float(out["scores"][i, n:].abs().sum()) == 0.0


def test_tied_scores_in_another_order_do_not_fail() -> None:
    boxes = np.array([[[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 0, 0]]], np.float32)
    scores = np.array([[0.8, 0.8, 0.0]], np.float32)
    classes = np.array([[1, 1, -1]], np.int32)
    num = np.array([2], np.int32)
    names = ["boxes", "scores", "classes", "num_detections"]
    ref = [[boxes, scores, classes, num]]
    swapped = [[boxes[:, [1, 0, 2]], scores, classes, num]]
    m = match_detections(ref, swapped, names, 1e-4, 1e-3)
    assert not m.failures and m.matched == 2 and m.recall == 1.0
    wrong = [[boxes[:, [1, 0, 2]] + np.array([[[0, 0, 0, 0], [5, 5, 5, 5], [0, 0, 0, 0]]], np.float32), scores,
              np.array([[1, 0, -1]], np.int32), num]]
    assert match_detections(ref, wrong, names, 1e-4, 1e-3).failures


def test_cli_takes_nms_options(tmp_path: Path, detector: Any) -> None:
    import torch
    from click.testing import CliRunner
    from modelport.cli import main

    torch.save(detector.state_dict(), tmp_path / "det.pt")
    src = tmp_path / "det.py"
    src.write_text(f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
                   "from detection_models import TinyYolo\n\ndef build():\n    return TinyYolo()\n")
    images, _ = draw(12, seed=9)
    np.savez(tmp_path / "images.npz", image=images)
    res = CliRunner().invoke(main, ["export", f"{src}:build", "--checkpoint", str(tmp_path / "det.pt"),
                                    "--sample-inputs", str(tmp_path / "images.npz"), "--dynamic-batch",
                                    "--task", "detection", "-o", "nms=true", "-o", "max_det=5", "-o",
                                    "score_threshold=0.3", "-o", "class_agnostic=true", "-f", "pt2",
                                    "--output-dir", str(tmp_path / "o"), "--json"])
    assert res.exit_code == 0, res.stderr
    md = json.loads((tmp_path / "o" / "metadata.json").read_text())
    assert md["postprocessing"]["class_agnostic"] is True and md["output_shape"]["boxes"] == ["batch", 5, 4]
    res = CliRunner().invoke(main, ["export", f"{src}:build", "--vision", "3x32x32", "--task", "classification",
                                    "-o", "nms=true", "-f", "pt2", "--output-dir", str(tmp_path / "x")])
    assert res.exit_code == 3 and "detectors" in res.stderr

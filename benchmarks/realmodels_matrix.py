"""Tasks x formats on this machine (issue 14): which real-model shapes export and validate, and how long it takes.

Run: ``OMP_NUM_THREADS=1 python benchmarks/realmodels_matrix.py > docs-table.md``. Each row is one model shape
(the conformance kit's reference models, plus the trained YOLO-style detector from tests/ with NMS in the graph);
each cell is the validation status and the export time in seconds.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import modelport
from modelport.engine.inputs import InputSpec, TensorSpec
from modelport.plugins import get_plugin_manager
from modelport.testing import export_reference_model

FORMATS = ("pt2", "onnx", "openvino", "torchscript", "executorch", "tflite", "coreml")
ROWS = {
    "cnn": "image classification (conv/BN, dynamic batch)",
    "attention": "text encoder (int64 ids + mask, dict output)",
    "decoder": "decoder, keyword inputs (input_ids + position_ids, no mask)",
    "wrapper": "forward(*args, **kwargs) wrapper",
}


def cell(r: object, seconds: float) -> str:
    status = getattr(r, "status", "error")
    extra = ""
    checks = (getattr(r, "record", {}) or {}).get("validation", {}).get("checks", {})
    if "detections" in checks:
        d = checks["detections"]
        extra = f", {d['matched']}/{d['reference']} dets, recall {d['recall']:.2f}"
    return f"{status}{extra} ({seconds:.0f} s)"


def main() -> None:
    host = get_plugin_manager()
    formats = [f for f in FORMATS if f in host.formats and host.formats[f][0].availability().export]
    root = Path(tempfile.mkdtemp(prefix="modelport-matrix-"))
    print("| model | " + " | ".join(formats) + " |")
    print("|---|" + "---|" * len(formats))
    for name, label in ROWS.items():
        cells = []
        for fmt in formats:
            t0 = time.perf_counter()
            r = export_reference_model(fmt, name, root / name / fmt)
            cells.append(cell(r, time.perf_counter() - t0))
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)

    from detection_models import draw, trained_detector

    detector = trained_detector()
    images, _ = draw(24, seed=7)
    spec = InputSpec([TensorSpec("image", (1, 3, 32, 32))]).with_dynamic_batch()
    cells = []
    for fmt in formats:
        t0 = time.perf_counter()
        r = modelport.export(detector, [fmt], spec, output_dir=root / "nms" / fmt, task="detection",
                             nms={"max_det": 10, "score_threshold": 0.3, "iou_threshold": 0.5},
                             sample_inputs={"image": images}, force=True)[fmt]
        cells.append(cell(r, time.perf_counter() - t0))
    print("| detection, YOLO-style [B,4+C,A] + in-graph NMS | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

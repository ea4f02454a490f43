"""The Python API end to end: export, validate, publish to a local registry, pull back, run the pulled artifact.

Exports the bundled classifier to ``pt2`` (built into the core) and, when modelport-export-onnx is installed, to
``onnx`` as well; every artifact is validated against the PyTorch model on the way.

    python examples/python_api.py [OUT_DIR]        # default: a temporary folder

Exits with the worst export exit code (0 when everything passed).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import modelport

sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import CLASS_NAMES, small_cnn  # the bundled example models sit next to this file


def main(out: Path) -> int:
    # 1. what this machine can export: pt2 always, onnx when its plugin is installed
    available = {row.name for row in modelport.formats() if row.can_export}
    formats = ["pt2"] + (["onnx"] if "onnx" in available else [])
    print(f"formats: {', '.join(formats)}")

    # 2. export + validate every format in one call; failures are in the results, never raised
    model = small_cnn()
    result = modelport.export(
        model, formats, modelport.vision(3, 32, 32, dynamic_batch=True), output_dir=out / "exports",
        model_name="small_cnn", task="classification", class_names=CLASS_NAMES, force=True,
    )
    for fmt, r in result.items():
        if r.error:
            print(f"{fmt}: {r.status}: {r.error}")
            continue
        print(f"{fmt}: {r.status} — max abs diff {r.validation.max_abs_diff:.2e} over "
              f"{r.validation.input_sets} input sets, {r.artifact_path}")
    if result.exit_code:
        return result.exit_code

    # 3. re-check an export later (after a copy, on another machine): same inputs, recorded outputs
    again = modelport.validate(result["pt2"].path)
    print(f"re-validated pt2: {again.status}")

    # 4. publish every format to a local registry folder, one version per format
    registry = out / "registry"
    for fmt, r in result.items():
        published = modelport.publish(r.path, f"file://{registry}", options={"version": f"v1-{fmt}"}, force=True)
        print(f"published {fmt} to {published.url}")

    # 5. pull one back (sha256 of every file verified) and run it the way a deployment would
    deployed = out / "deployed"
    pulled = modelport.pull(f"file://{registry}/small_cnn/v1-pt2", deployed, force=True)
    print(f"pulled {len(pulled.files)} files into {deployed}")
    import torch

    metadata = json.loads((deployed / "metadata.json").read_text())
    program = torch.export.load(str(deployed / "model.pt2")).module()
    image = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        logits = program(image)
        torch.testing.assert_close(logits, model(image), rtol=1e-4, atol=1e-5)
    labels = [metadata["class_names"][i] for i in logits.argmax(-1).tolist()]
    print(f"deployed model predicts {labels} (same as the PyTorch model)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(main(Path(sys.argv[1])))
    with tempfile.TemporaryDirectory(prefix="modelport-example-") as tmp:
        sys.exit(main(Path(tmp)))

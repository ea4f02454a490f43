"""Framework overhead: `modelport export -f X --no-validate` against a script that calls the converter
directly on the same model, each as a fresh process (both pay for Python, torch and the model), in one run.

Target: ratio <= 1.10 for pt2, onnx and openvino. Formats whose plugin is not installed are skipped.
"""

from __future__ import annotations

import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "models.py"

DIRECT = {
    "pt2": """
        ep = torch.export.export(model, args)
        torch.export.save(ep, str(out / "model.pt2"))
    """,
    "onnx": """
        torch.onnx.export(model, args, str(out / "model.onnx"), dynamo=True, input_names=["input"], output_names=["output"])
    """,
    "openvino": """
        import openvino as ov
        with torch.no_grad():
            ovm = ov.convert_model(model, example_input=args)
        ov.save_model(ovm, str(out / "model.xml"), compress_to_fp16=False)
    """,
}
# options that make modelport do what the direct script does (no extra passes)
SAME_SETTINGS = {"pt2": [], "onnx": ["-o", "simplify=false", "-o", "embed_metadata=false"], "openvino": []}
NEEDS = {"pt2": None, "onnx": "modelport_onnx", "openvino": "modelport_openvino"}


def direct_script(fmt: str, out: Path) -> str:
    return textwrap.dedent(f"""
        import sys, torch
        from pathlib import Path
        sys.path.insert(0, {str(MODEL.parent)!r})
        from models import small_cnn
        model = small_cnn().eval()
        args = (torch.randn(1, 3, 32, 32),)
        out = Path({str(out)!r}); out.mkdir(parents=True, exist_ok=True)
    """) + textwrap.dedent(DIRECT[fmt])


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed: {r.stderr[-500:]}")
    return time.perf_counter() - t0


def main(repeats: int = 3) -> dict[str, float]:
    results = {}
    print("| format | modelport export --no-validate (s) | direct converter script (s) | ratio |")
    print("|---|---|---|---|")
    for fmt in DIRECT:
        if NEEDS[fmt] and importlib.util.find_spec(NEEDS[fmt]) is None:
            print(f"| {fmt} | plugin not installed | | |")
            continue
        ours, theirs = [], []
        for i in range(repeats):
            tmp = Path(tempfile.mkdtemp())
            try:
                script = tmp / "direct.py"
                script.write_text(direct_script(fmt, tmp / "direct"))
                theirs.append(timed([sys.executable, str(script)]))
                ours.append(timed([sys.executable, "-m", "modelport", "export", f"{MODEL}:small_cnn", "--vision", "3x32x32",
                                   "-f", fmt, "--no-validate", "-q", "--output-dir", str(tmp / f"mp{i}"), *SAME_SETTINGS[fmt]]))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        o, t = statistics.median(ours), statistics.median(theirs)
        results[fmt] = o / t
        print(f"| {fmt} | {o:.2f} | {t:.2f} | **{o / t:.2f}** |")
    return results


if __name__ == "__main__":
    main()

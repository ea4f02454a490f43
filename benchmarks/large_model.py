"""Large model: peak memory of exporting a model over 2 GB to ONNX, as a multiple of its parameter bytes.

Target <= 1.5x. The model is a stack of 8192x8192 linear layers (about 2.4 GB of float32 weights), so the
ONNX export must use external data (model.onnx + one model.onnx.data). Peak RSS is read from the
child process (ru_maxrss), so it includes building the model itself (1.0x by definition).

Then `modelport validate` runs the written model in onnxruntime on the recorded inputs and compares it with the
recorded PyTorch outputs: its peak is reported (not a target) and it proves the streamed file is right.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

LAYERS = 9
WIDTH = 8192


def model_file(tmp: Path) -> Path:
    p = tmp / "big.py"
    p.write_text(textwrap.dedent(f"""
        import torch
        from torch import nn

        def big():
            torch.manual_seed(0)
            layers = []
            for _ in range({LAYERS}):
                lin = nn.Linear({WIDTH}, {WIDTH}, bias=False)
                nn.init.normal_(lin.weight, std=1.0 / {WIDTH} ** 0.5)
                layers.append(lin)
            return nn.Sequential(*layers).eval()
    """))
    return p


def peak_of(cmd: list[str]) -> tuple[float, float, str]:
    """(peak RSS bytes, seconds, stdout) of one child process, measured alone."""
    code = textwrap.dedent(f"""
        import resource, subprocess, sys, time, json
        t0 = time.perf_counter()
        r = subprocess.run({cmd!r}, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        print(json.dumps({{"rc": r.returncode, "peak_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                           "seconds": dt, "stderr": r.stderr[-800:], "stdout": r.stdout[-20000:]}}))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    data = json.loads(r.stdout)
    if data["rc"] != 0:
        raise RuntimeError(data["stderr"])
    return data["peak_kb"] * 1024, data["seconds"], data["stdout"]


def main() -> dict[str, float]:
    if importlib.util.find_spec("modelport_onnx") is None:
        print("onnx plugin not installed: skipped")
        return {}
    param_bytes = LAYERS * WIDTH * WIDTH * 4
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        src = model_file(tmp)
        base, _, _ = peak_of([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(tmp)!r}); import big; m = big.big()"])
        out = tmp / "out"
        peak, secs, _ = peak_of([sys.executable, "-m", "modelport", "export", f"{src}:big", "--input", f"x:1x{WIDTH}",
                                 "-f", "onnx", "--no-validate", "-q", "--output-dir", str(out)])
        files = {p.name: p.stat().st_size for p in out.iterdir()}
        record = json.loads((out / "export.json").read_text())
        vpeak, vsecs, vout = peak_of([sys.executable, "-m", "modelport", "validate", str(out), "--json"])
        run = json.loads(vout)
        fpeak, fsecs, _ = peak_of([sys.executable, "-m", "modelport", "export", f"{src}:big", "--input",
                                   f"x:1x{WIDTH}", "-f", "onnx", "-q", "--output-dir", str(tmp / "validated")])
        diff = max(o["max_abs_diff"] for o in run["validation"]["outputs"])
        verdict = f"{run['status']} (max abs diff {diff:.1e}, batch {run['validation']['batch_sizes']})"
    print(f"parameters: {param_bytes / 1e9:.2f} GB ({LAYERS} x Linear({WIDTH}, {WIDTH}))\n")
    print("| what | peak RSS GB | x parameter bytes |")
    print("|---|---|---|")
    print(f"| build the model only | {base / 1e9:.2f} | {base / param_bytes:.2f} |")
    print(f"| `modelport export -f onnx --no-validate` ({secs:.0f} s) | {peak / 1e9:.2f} | **{peak / param_bytes:.2f}** |")
    print(f"| `modelport validate` (onnxruntime on the recorded inputs, {vsecs:.0f} s; not a target) | {vpeak / 1e9:.2f} | "
          f"{vpeak / param_bytes:.2f} |")
    print(f"| `modelport export -f onnx` with validation (PyTorch + onnxruntime in one process, {fsecs:.0f} s; "
          f"not a target) | {fpeak / 1e9:.2f} | {fpeak / param_bytes:.2f} |")
    print(f"\nvalidation: {verdict}; written: {record['details'].get('written', 'from one in-memory ModelProto')}")
    print(f"\nfiles written: {', '.join(f'{k} ({v / 1e9:.2f} GB)' if v > 1e8 else k for k, v in sorted(files.items()))}")
    return {"peak_ratio": peak / param_bytes, "baseline_ratio": base / param_bytes,
            "validate_ratio": vpeak / param_bytes, "export_validated_ratio": fpeak / param_bytes}


if __name__ == "__main__":
    main()

"""``modelport debug`` on a ~1 GB model: bisection with a bounded set of exposed module boundaries, memory measured.

Builds ``testing_debug.wide_mlp`` (~1 GB of float32 parameters, 8 stages of residual blocks), with one block's
``amp`` leaving the fp16 range, exports it to fp16 ONNX (validation fails), then runs ``modelport debug`` in a
fresh process with ``--max-probes 8`` and reports the named module, the rounds, and the peak memory.

    python benchmarks/debug_bisect.py [--gigabytes 1.0] [--out DIR] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOT = (5, 3)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gigabytes", type=float, default=1.0)
    ap.add_argument("--max-probes", type=int, default=8)
    ap.add_argument("--out")
    ap.add_argument("--json")
    args = ap.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="modelport-debug-bench-"))
    root.mkdir(parents=True, exist_ok=True)  # ~2 GB of exports: give --out on a disk with room
    factory = root / "wide.py"
    factory.write_text("from modelport.testing.debug import wide_mlp\n\n"
                       f"def build():\n    return wide_mlp({args.gigabytes}, hot={HOT})\n")
    out = root / "onnx"
    t0 = time.perf_counter()
    export = subprocess.run([sys.executable, "-m", "modelport", "export", f"{factory}:build", "-f", "onnx",
                             "-o", "fp16=true", "--input", "x:1x2048", "--output-dir", str(out), "--force", "--json"],
                            capture_output=True, text=True)
    export_s = time.perf_counter() - t0
    status = json.loads(export.stdout)["results"]["onnx"]["status"] if export.stdout.strip() else export.stderr[-500:]
    t0 = time.perf_counter()
    dbg = subprocess.run([sys.executable, "-m", "modelport", "debug", str(out), "--model", f"{factory}:build",
                          "--max-probes", str(args.max_probes), "--json"], capture_output=True, text=True)
    debug_s = time.perf_counter() - t0
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    report = json.loads(dbg.stdout)
    results = {
        "gigabytes_requested": args.gigabytes, "export_status": status, "export_s": round(export_s, 1),
        "debug_exit": dbg.returncode, "debug_s": round(debug_s, 1), "named_module": report["named_module"],
        "expected_module": f"stages.{HOT[0]}.{HOT[1]}.amp", "rounds": report["rounds"],
        "max_probes": report["max_probes"], "modules_total": report["modules_total"],
        "exposed_total": report["exposed_total"],
        "compared": sum(1 for r in report["rows"] if r["status"] in ("ok", "over tolerance")),
        "debug_peak_rss_mb": round(report["peak_rss_bytes"] / 2**20), "probe_bytes_max": report["probe_bytes_max"],
        "largest_child_peak_rss_mb": round(child_peak / 2**20),
        "onnx_bytes": sum(f.stat().st_size for f in out.iterdir() if f.name.startswith("model.onnx")),
    }
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if results["named_module"] == results["expected_module"] else 1


if __name__ == "__main__":
    sys.exit(main())

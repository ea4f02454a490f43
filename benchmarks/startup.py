"""CLI start-up: `modelport formats` (every installed plugin) against `python -c "import torch"`, in one run.

Target: `modelport formats` at least 5x faster than importing torch. Prints a markdown row set.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def best_of(cmd: list[str], n: int = 7) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main() -> dict[str, float]:
    py = sys.executable
    subprocess.run([py, "-m", "modelport", "formats", "--json"], check=True, capture_output=True)  # warm caches
    fmt_min, fmt_med = best_of([py, "-m", "modelport", "formats", "--json"])
    torch_min, torch_med = best_of([py, "-c", "import torch"])
    base_min, base_med = best_of([py, "-c", "pass"])
    ratio = torch_med / fmt_med
    print("| command | min s | median s |")
    print("|---|---|---|")
    print(f"| `python -c pass` (interpreter alone) | {base_min:.3f} | {base_med:.3f} |")
    print(f"| `modelport formats --json` | {fmt_min:.3f} | {fmt_med:.3f} |")
    print(f"| `python -c \"import torch\"` | {torch_min:.3f} | {torch_med:.3f} |")
    print(f"\nimport torch / modelport formats = **{ratio:.1f}x** (target >= 5x)")
    return {"formats_s": fmt_med, "import_torch_s": torch_med, "ratio": ratio}


if __name__ == "__main__":
    main()

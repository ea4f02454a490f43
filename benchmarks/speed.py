"""Artifact speed: every installed format's p50 at batch 1 and 8 against PyTorch eager, for the bundled CNN
and transformer, in one run (same inputs, same thread count). Uses `modelport export -f all` + `modelport bench`."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "small_cnn": ["--vision", "3x32x32"],
    "small_transformer": ["--text", "32:1000"],
}


def main(threads: int = 2, max_seconds: float = 5.0) -> list[dict]:
    all_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in MODELS.items():
            out = Path(tmp) / name
            r = subprocess.run([sys.executable, "-m", "modelport", "export", f"{ROOT}/examples/models.py:{name}", *spec,
                                "--dynamic-batch", "-f", "all", "--output-dir", str(out), "-q", "--threads", str(threads)],
                               capture_output=True, text=True)
            dirs = [d for d in sorted(out.iterdir()) if (d / "export.json").is_file()] if out.exists() else []
            if r.returncode not in (0, 2) or not dirs:
                print(f"{name}: export failed: {r.stderr.strip()[-400:]}")
                continue
            r = subprocess.run([sys.executable, "-m", "modelport", "bench", *map(str, dirs), "--batch", "1,8", "--threads",
                                str(threads), "--max-seconds", str(max_seconds), "--json"], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{name}: bench failed: {r.stderr.strip()[-400:]}")
                continue
            rows = json.loads(r.stdout)
            for row in rows:
                row["model"] = name
            all_rows.extend(rows)
    print(f"threads: {threads}\n")
    print("| model | format | precision | batch | p50 ms | p90 ms | speed-up vs eager | parity |")
    print("|---|---|---|---|---|---|---|---|")
    for row in all_rows:
        if "p50_ms" not in row:
            print(f"| {row['model']} | {row['format']} | | {row.get('batch', '')} | | | | {row.get('error', '')} |")
            continue
        sp = f"{row['speedup']:.2f}x" if row.get("speedup") else ""
        diff = f"{row['parity']} ({row['max_abs_diff']:.1e})" if row.get("max_abs_diff") is not None and row["format"] != "pytorch" else (row.get("parity") or "")
        print(f"| {row['model']} | {row['format']}{' ★' if row.get('best') else ''} | {row.get('precision', '')} | {row['batch']} | "
              f"{row['p50_ms']:.3f} | {row['p90_ms']:.3f} | {sp} | {diff} |")
    return all_rows


if __name__ == "__main__":
    main()

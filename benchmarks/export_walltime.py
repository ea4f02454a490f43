"""Export wall time of a small transformers encoder to ONNX, three ways side by side in one run (issue 18, item 3).

    python benchmarks/export_walltime.py [--repeat 3] [--optimum-python PATH]

A bert-tiny-shaped BertModel (2 layers, hidden 128, built from a BertConfig, no download) is saved with
save_pretrained to a temp folder; each contender is a fresh process timed end to end (imports included):

- `modelport export hf:DIR -f onnx` (source-hf plugin: load, reference run, dynamo exporter, onnxslim,
  validation, metadata),
- a direct `torch.onnx.export` script (dynamo exporter, no validation): the floor for the same exporter,
- `optimum-cli export onnx --model DIR` from a separate virtual environment (default: .optvenv beside this
  checkout), skipped when it is not installed.

Prints a markdown table with medians and the ratios modelport / each other.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

DIRECT = """
import sys, torch
from transformers import AutoModel
model = AutoModel.from_pretrained(sys.argv[1]).eval()
ids = torch.ones(1, 16, dtype=torch.long)
mask = torch.ones(1, 16, dtype=torch.long)
batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
torch.onnx.export(model, (ids, mask), sys.argv[2], input_names=["input_ids", "attention_mask"],
                  dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
                  dynamo=True, external_data=False)
"""


def make_model(folder: Path) -> Path:
    """Save a bert-tiny-shaped encoder (random weights) and its tokenizer-free config with save_pretrained."""
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=30522, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=512, max_position_embeddings=512)
    BertModel(cfg).eval().save_pretrained(folder)
    return folder


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    return elapsed


def main() -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--optimum-python", type=Path, default=ROOT / ".optvenv" / "bin" / "python")
    args, _ = ap.parse_known_args()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    with tempfile.TemporaryDirectory(prefix="mp-export-walltime-") as tmp_s:
        tmp = Path(tmp_s)
        model = make_model(tmp / "bert-tiny")
        contenders: dict[str, list[str]] = {
            "modelport export hf:DIR -f onnx": [sys.executable, "-m", "modelport", "export", f"hf:{model}", "-f",
                                                "onnx", "--output-dir", str(tmp / "mp"), "-q"],
            "torch.onnx.export script (dynamo)": [sys.executable, "-c", DIRECT, str(model), str(tmp / "direct.onnx")],
        }
        if args.optimum_python.exists():
            contenders["optimum-cli export onnx"] = [str(args.optimum_python), "-m", "optimum.exporters.onnx",
                                                     "--model", str(model), "--task", "feature-extraction",
                                                     str(tmp / "optimum")]
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for i in range(args.repeat):  # interleaved, so load changes hit every contender alike
            for name, cmd in contenders.items():
                if name.startswith("modelport"):
                    cmd = [*cmd[:-2], str(tmp / f"mp{i}"), "-q"]
                times[name].append(timed(cmd, env))
    med = {name: statistics.median(t) for name, t in times.items()}
    ours = med["modelport export hf:DIR -f onnx"]
    print(f"bert-tiny shape (2 layers, hidden 128), {args.repeat} interleaved runs each, fresh process each, "
          f"1-minute load average {os.getloadavg()[0]:.1f} at the end (shared machine).\n")
    print("| command | median s | min s | modelport / this |")
    print("|---|---|---|---|")
    for name, t in times.items():
        print(f"| `{name}` | {med[name]:.2f} | {min(t):.2f} | {ours / med[name]:.2f}x |")
    if "optimum-cli export onnx" not in med:
        print(f"\noptimum-cli not measured: no {args.optimum_python} (pip install optimum-onnx into a separate venv)")
    return med


if __name__ == "__main__":
    main()

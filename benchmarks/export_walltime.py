"""Export wall time of a small transformers encoder to ONNX, three ways side by side in one run (issue 18, item 3).

    python benchmarks/export_walltime.py [--repeat 3] [--optimum-python PATH] [--modelport-python PATH] [--breakdown]

A bert-tiny-shaped BertModel (2 layers, hidden 128, built from a BertConfig, no download) is saved with
save_pretrained to a temp folder; each contender is a fresh process timed end to end (imports included):

- `modelport export hf:DIR -f onnx` (source-hf plugin: load, reference run, dynamo exporter, onnxslim,
  validation, metadata),
- a direct `torch.onnx.export` script (dynamo exporter, no validation): the floor for the same exporter,
- the same with the legacy TorchScript exporter (``dynamo=False``, what optimum-cli uses),
- ``import torch, transformers; from transformers import BertModel`` alone, in our venv and in optimum's
  (optimum pins transformers < 4.58; ours is 5.x),
- `optimum-cli export onnx --model DIR` from a separate virtual environment (default: .optvenv beside this
  checkout), skipped when it is not installed; it uses the legacy TorchScript exporter (``dynamo=False``),
- with ``--slow-exit``: modelport again with MODELPORT_SLOW_EXIT=1 (the interpreter's full teardown at exit),
- with ``--modelport-python PATH``: modelport (and the bare imports) again from another environment, e.g. a
  minimal one made with ``pip install -c constraints.txt ./core ./plugins/export-onnx ./plugins/source-hf``
  (what a user's ``pip install modelport-onnx modelport-source-hf`` gives: no other plugin, no torchao).

Prints a markdown table with medians and the ratios modelport / each other. ``--breakdown`` also records one
more modelport run with py-spy (``pip install py-spy``; sampling adds some overhead) and splits its wall time
into phases: imports, model load, reference run, exporter, onnxslim and its check, validation, metadata.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
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

IMPORTS = "import torch, transformers\nfrom transformers import BertModel"

LEGACY = """
import sys, torch
from transformers import AutoModel
model = AutoModel.from_pretrained(sys.argv[1]).eval()
class Encoder(torch.nn.Module):  # the legacy exporter cannot pass transformers 5's forward its arguments directly
    def __init__(self, m):
        super().__init__()
        self.m = m
    def forward(self, input_ids, attention_mask):
        return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
ids = torch.ones(1, 16, dtype=torch.long)
axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
torch.onnx.export(Encoder(model), (ids, ids), sys.argv[2], input_names=["input_ids", "attention_mask"],
                  dynamic_axes=axes, dynamo=False)
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


# (phase, substrings that must all be in a sampled stack, whether the stack must be importing); first match wins
PHASES = [
    ("exporter: imports (torch.onnx, onnxscript)", ["export_dynamo ("], True),
    ("exporter: torch.onnx.export (dynamo)", ["export_dynamo ("], False),
    ("onnxslim", ["simplify (modelport_onnx"], False),
    ("onnxslim check (ORT, both models, and PyTorch)", ["verify_simplified ("], False),
    ("dynamic batch check (ORT and PyTorch)", ["check_batch ("], False),
    ("reference run (PyTorch, 5 input sets)", ["run_reference ("], False),
    ("validation (ORT)", ["run_validation ("], False),
    ("load: imports (transformers, torch)", ["modelport_hf/"], True),
    ("load: config, weights, task", ["modelport_hf/"], False),
    ("onnx plugin: serialize, hierarchy, write", ["export_onnx ("], False),
    ("metadata, record, seal", ["_export_one ("], False),
    ("CLI imports", ["_find_and_load"], True),
]


def breakdown(cmd: list[str], env: dict[str, str], out: Path, rate: int = 100) -> list[str]:
    """One run under py-spy: where its sampled wall time went, phase by phase (markdown lines)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return ["", "no breakdown: py-spy is not installed (pip install py-spy)"]
    raw = out / "spy.txt"
    subprocess.run([spy, "record", "-r", str(rate), "-f", "raw", "-o", str(raw), "--", *cmd], env=env,
                   capture_output=True, check=True)
    tot: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        phase = next((name for name, subs, imp in PHASES
                      if all(s in stack for s in subs) and (not imp or "_find_and_load" in stack)),
                     "interpreter start and exit, CLI" if stack.strip() else "native (no Python frame)")
        tot[phase] += int(count)
    n = sum(tot.values())
    lines = ["", f"Where one more `modelport export` run's time goes (py-spy, {rate} Hz, {n / rate:.1f} s sampled; "
             "sampling slows the run a little):", "", "| phase | s | share |", "|---|---|---|"]
    return lines + [f"| {name} | {count / rate:.2f} | {100 * count / n:.0f}% |" for name, count in tot.most_common()]


def main() -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--optimum-python", type=Path, default=ROOT / ".optvenv" / "bin" / "python")
    ap.add_argument("--modelport-python", type=Path, default=None,
                    help="also time modelport from this interpreter's environment (e.g. a minimal user install)")
    ap.add_argument("--breakdown", action="store_true", help="also split one modelport run into phases (py-spy)")
    ap.add_argument("--slow-exit", action="store_true", help="also time modelport with MODELPORT_SLOW_EXIT=1")
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
        contenders["torch.onnx.export script (legacy, dynamo=False)"] = [sys.executable, "-c", LEGACY, str(model),
                                                                       str(tmp / "legacy.onnx")]
        contenders["import torch + transformers BertModel only (our venv)"] = [sys.executable, "-c", IMPORTS]
        if args.modelport_python:
            contenders["modelport export hf:DIR -f onnx (--modelport-python venv)"] = [
                str(args.modelport_python), "-m", "modelport", "export", f"hf:{model}", "-f", "onnx",
                "--output-dir", str(tmp / "mp-user"), "-q"]
            contenders["import torch + transformers BertModel only (--modelport-python venv)"] = [
                str(args.modelport_python), "-c", IMPORTS]
        if args.optimum_python.exists():
            contenders["import torch + transformers BertModel only (optimum's venv)"] = [
                str(args.optimum_python), "-c", IMPORTS]
        if args.slow_exit:  # the same command with the interpreter's full teardown at exit (as before issue 18)
            contenders["modelport export, MODELPORT_SLOW_EXIT=1"] = [
                "env", "MODELPORT_SLOW_EXIT=1", *contenders["modelport export hf:DIR -f onnx"]]
        if args.optimum_python.exists():
            contenders["optimum-cli export onnx"] = [str(args.optimum_python), "-m", "optimum.exporters.onnx",
                                                     "--model", str(model), "--task", "feature-extraction",
                                                     str(tmp / "optimum")]
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for i in range(args.repeat):  # interleaved, so load changes hit every contender alike
            for k, (name, cmd) in enumerate(contenders.items()):
                if name.startswith("modelport"):
                    cmd = [*cmd[:-2], str(tmp / f"mp{i}-{k}"), "-q"]
                times[name].append(timed(cmd, env))
        if args.breakdown:
            mp_cmd = contenders["modelport export hf:DIR -f onnx"]
            phases = breakdown([*mp_cmd[:-2], str(tmp / "mp-spy"), "-q"], env, tmp)
    med = {name: statistics.median(t) for name, t in times.items()}
    ours = med["modelport export hf:DIR -f onnx"]
    print(f"bert-tiny shape (2 layers, hidden 128), {args.repeat} interleaved runs each, fresh process each, "
          f"1-minute load average {os.getloadavg()[0]:.1f} at the end (shared machine).\n")
    print("| command | median s | min s | modelport / this |")
    print("|---|---|---|---|")
    for name, t in times.items():
        print(f"| `{name}` | {med[name]:.2f} | {min(t):.2f} | {ours / med[name]:.2f}x |")
    user = "modelport export hf:DIR -f onnx (--modelport-python venv)"
    for name in (user, "torch.onnx.export script (dynamo)"):
        if name in med and "optimum-cli export onnx" in med:
            print(f"\n`{name}` / `optimum-cli export onnx`: {med[name] / med['optimum-cli export onnx']:.2f}x", end="")
    print()
    if "optimum-cli export onnx" not in med:
        print(f"\noptimum-cli not measured: no {args.optimum_python} (pip install optimum-onnx into a separate venv)")
    if args.breakdown:
        print("\n".join(phases))
    return med


if __name__ == "__main__":
    main()

"""`modelport export -f all` wall time: formats in worker processes (--jobs N, one per core) vs one after another (--jobs 1) vs
the sum of single-format runs, side by side in one run (issue 18, item 3; goal: auto <= 0.7x the sum).

    python benchmarks/export_all_parallel.py [--size 224] [--formats all] [--write]

The model is a ResNet-18-shaped CNN (BasicBlocks 2-2-2-2, widths 64-512, 1000 classes; random weights, seeded)
written to a temp file and exported as ``FILE.py:resnet18_like``. Every contender is a fresh ``modelport export``
process timed end to end (imports, model load, reference run, every export, validation, metadata). ``--write``
puts the table into benchmarks/RESULTS.md between the ``parallel`` markers.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

MODEL = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + (self.down(x) if self.down is not None else x))


class ResNet18Like(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        layers, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def resnet18_like():
    torch.manual_seed(0)
    return ResNet18Like().eval()
'''


CPU: dict[str, float] = {}  # run label → CPU seconds (user + system) of the process and its workers


def run(cmd: list[str], env: dict[str, str], label: str = "") -> float:
    """Wall seconds of one fresh process; its CPU seconds (workers included) go to CPU[label]."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[label] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 2):  # 2: written, validation failed — still a complete export
        raise RuntimeError(f"{' '.join(cmd[3:])} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    return elapsed


def formats_here(names: str) -> list[str]:
    from modelport.engine.pipeline import expand_formats
    from modelport.plugins import get_plugin_manager

    return expand_formats(get_plugin_manager(), names.split(","))[0]


def main() -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224, help="input height and width")
    ap.add_argument("--formats", default="all")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each -f all contender (mean reported)")
    ap.add_argument("--write", action="store_true", help="update the parallel section of benchmarks/RESULTS.md")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "MODELPORT_JOBS"}
    fmts = formats_here(args.formats)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mp-export-all-") as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "resnet_like.py").write_text(MODEL)
        base = [sys.executable, "-m", "modelport", "export", f"{tmp / 'resnet_like.py'}:resnet18_like",
                "--vision", f"3x{args.size}x{args.size}", "-q", "--force"]
        runs: dict[str, list[float]] = {"auto": [], "1": []}
        cpus: dict[str, list[float]] = {"auto": [], "1": []}
        for i in range(args.repeat):  # alternated, so a change in the machine's load hits both alike
            for jobs in (("auto", "1") if i % 2 == 0 else ("1", "auto")):
                n = str(max(2, min(len(fmts), os.cpu_count() or 2))) if jobs == "auto" else jobs  # workers, one per core
                runs[jobs].append(run([*base, "-f", args.formats, "--jobs", n, "--output-dir", str(tmp / jobs)],
                                      env, jobs))
                cpus[jobs].append(CPU[jobs])
                print(f"-f {args.formats} --jobs {jobs}: {runs[jobs][-1]:.1f} s (CPU {CPU[jobs]:.0f} s)", flush=True)
        walls = {k: statistics.mean(v) for k, v in runs.items()}
        CPU.update({k: statistics.mean(v) for k, v in cpus.items()})
        singles = {}
        for f in fmts:
            singles[f] = run([*base, "-f", f, "--output-dir", str(tmp / "c" / f)], env, f)
            print(f"-f {f}: {singles[f]:.1f} s", flush=True)
    result = {"formats": fmts, "size": args.size, "repeat": args.repeat, "walls": walls, "singles": singles, "sum": sum(singles.values()),
              "load_before": load_before, "load_after": os.getloadavg(), "cores": os.cpu_count(), "cpu": dict(CPU)}
    table = render(result)
    print(table)
    if args.write:
        write(table)
    return result


def render(r: dict) -> str:
    total, auto, seq, cpu = r["sum"], r["walls"]["auto"], r["walls"]["1"], r.get("cpu", {})
    lines = [
        f"ResNet-18-shaped CNN (11.7 M parameters) at 1x3x{r['size']}x{r['size']}, formats: {', '.join(r['formats'])}; "
        f"{r['cores']} cores; every row a fresh `modelport export` process (the `-f all` rows: mean of {r['repeat']} "
        f"alternated runs), all rows in one run. The machine was "
        f"shared with other work: load average {r['load_before'][0]:.1f} before, {r['load_after'][0]:.1f} after.",
        "",
        "| run | wall (s) | vs sum of single-format runs | CPU s (user+sys, workers included) |",
        "|---|---:|---:|---:|",
        f"| `-f all --jobs N` (formats in N = min(formats, cores) worker processes) | {auto:.1f} | **{auto / total:.2f}x** "
        f"({'met' if auto / total <= 0.7 else 'NOT met'}: goal <= 0.7x) | {cpu.get('auto', 0):.0f} |",
        f"| `-f all --jobs 1` (one after another, one process) | {seq:.1f} | {seq / total:.2f}x | {cpu.get('1', 0):.0f} |",
        f"| sum of {len(r['singles'])} single-format runs | {total:.1f} | 1.00x | "
        f"{sum(cpu.get(f, 0) for f in r['singles']):.0f} |",
    ]
    lines += [f"| &nbsp;&nbsp;`-f {f}` | {s:.1f} | | {cpu.get(f, 0):.0f} |" for f, s in r["singles"].items()]
    lines += ["", f"`--jobs auto` / `--jobs 1`: **{auto / seq:.2f}x** wall at {cpu.get('auto', 0):.0f} vs "
              f"{cpu.get('1', 0):.0f} CPU seconds; CPU seconds / wall (the cores the run got): "
              f"{cpu.get('auto', 0) / auto:.2f} (`auto`), {cpu.get('1', 0) / seq:.2f} (`1`)."]
    if auto / seq > 0.9:
        lines[-1] += (" Two worker processes got no more CPU than one on a machine this busy, so running formats "
                      "side by side could not shorten the wall here; the gain over single-format runs is the "
                      "start-up, model load and reference run done once.")
    return "\n".join(lines) + "\n"


def write(table: str) -> None:
    path = HERE / "RESULTS.md"
    text = path.read_text() if path.exists() else ""
    block = ("<!-- parallel:begin (written by benchmarks/export_all_parallel.py) -->\n"
             "## `export -f all`: formats in parallel (issue 18)\n\n" + table + "<!-- parallel:end -->\n")
    pattern = re.compile(r"<!-- parallel:begin.*?<!-- parallel:end -->\n?", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


if __name__ == "__main__":
    main()

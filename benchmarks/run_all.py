"""Run every benchmark in one go and write benchmarks/RESULTS.md (date, machine, versions, the tables).

    nox -s bench            # or: python benchmarks/run_all.py  (with modelport and its plugins installed)
    python benchmarks/run_all.py --only speed   # run some sections; the others keep their last results

Blocks written by other scripts (``<!-- NAME:begin ... -->`` … ``<!-- NAME:end -->``, e.g. serve_load.py's) and
sections not run this time are carried over from the previous RESULTS.md, never dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata as im
import io
import os
import platform
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import large_model  # noqa: E402
import overhead  # noqa: E402
import realistic  # noqa: E402
import speed  # noqa: E402
import startup  # noqa: E402
import trust_cost  # noqa: E402


def _capture(fn, *args, **kwargs) -> tuple[str, object]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        result = fn(*args, **kwargs)
    return buf.getvalue(), result


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def targets(startup_r, overhead_r, speed_r, large_r, trust_r=None, realistic_r=None) -> list[str]:
    """The summary table: each issue target next to the ratio this run measured."""
    rows = ["| measurement | target | result |", "|---|---|---|"]
    if startup_r:
        ratio = startup_r["ratio"]
        rows.append(f"| start-up: `import torch` / `modelport formats` | >= 5x | **{ratio:.1f}x** ({_verdict(ratio >= 5)}) |")
    if overhead_r:
        shown = " / ".join(f"{fmt} {r:.2f}" for fmt, r in overhead_r.items())
        rows.append(f"| overhead vs the direct converter | <= 1.10 | **{shown}** "
                    f"({_verdict(all(r <= 1.10 for r in overhead_r.values()))}) |")
    if speed_r:
        for model in dict.fromkeys(r["model"] for r in speed_r):
            best: dict[int, tuple[float, str]] = {}
            validated = [r for r in speed_r if r["model"] == model and r.get("speedup") and r["format"] != "pytorch"
                         and r.get("parity") == "passed"]
            for r in validated:
                if r["speedup"] > best.get(r["batch"], (0.0, ""))[0]:
                    best[r["batch"]] = (r["speedup"], r["format"])
            shown = ", ".join(f"batch {b}: {f} {x:.1f}x" for b, (x, f) in sorted(best.items()))
            rows.append(f"| artifact speed, {model}: fastest validated format vs PyTorch eager | faster | {shown} |")
    if large_r:
        ratio = large_r["peak_ratio"]
        rows.append(f"| large model peak memory (`--no-validate`) | <= 1.5x parameter bytes | **{ratio:.2f}x** "
                    f"({_verdict(ratio <= 1.5)}) |")
    if trust_r:
        worst = max(max(m["validate_ratio"], m["bench_ratio"]) for m in trust_r.values())
        shown = " / ".join(f"{fmt} {m['validate_ratio']:.2f}, {m['bench_ratio']:.2f}" for fmt, m in trust_r.items())
        rows.append(f"| cost of the trust checks: validate, bench of a trusted local export | <= 1.05 | **{shown}** "
                    f"({_verdict(worst <= 1.05)}) |")
    if realistic_r:
        fp32 = [r for r in realistic_r if r["model"] == "resnet18" and r["format"] != "pytorch eager" and r.get("peak")]
        if fp32:
            best = max(fp32, key=lambda r: r["peak"])
            rows.append(f"| ResNet-18-shaped CNN: best fp32 artifact as a fraction of the measured fp32 peak | >= 0.9 | "
                        f"**{best['peak']:.2f}** ({best['format']}, batch {best['batch']}; {_verdict(best['peak'] >= 0.9)}) |")
    return rows


_BLOCK = re.compile(r"<!-- (?P<name>[\w-]+):begin.*?<!-- (?P=name):end -->", re.S)


def previous(text: str) -> tuple[dict[str, str], list[str]]:
    """The previous RESULTS.md: each "## title" section's body (outside marked blocks), and the marked blocks."""
    blocks = [m.group(0) for m in _BLOCK.finditer(text)]
    bodies: dict[str, str] = {}
    for chunk in re.split(r"^## ", _BLOCK.sub("", text), flags=re.M)[1:]:
        title, _, body = chunk.partition("\n")
        bodies[title.strip()] = body.strip()
    return bodies, blocks


def merge_rows(old: list[str], new: list[str]) -> list[str]:
    """A markdown table: the old rows, each replaced by the new row with the same first cell; new ones appended."""
    def key(row: str) -> str:
        return row.split("|")[1].strip() if row.count("|") > 1 else row

    fresh = {key(r): r for r in new}
    rows = [fresh.pop(key(r), r) for r in old if r.strip()]
    return rows + list(fresh.values())


def _versions() -> str:
    names = ["modelport", "torch", "numpy", "onnx", "onnxruntime", "onnxslim", "openvino", "nncf", "coremltools",
             "litert-torch", "ai-edge-litert", "executorch"]
    out = []
    for n in names:
        try:
            out.append(f"{n} {im.version(n)}")
        except im.PackageNotFoundError:
            pass
    out += [f"{d.metadata['Name']} {d.version}" for d in im.distributions() if d.metadata["Name"].startswith("modelport-")]
    return ", ".join(sorted(set(out)))


def main(argv: list[str] | None = None) -> None:
    sections = [
        ("startup", "1. CLI start-up", startup.main),
        ("overhead", "2. Framework overhead", overhead.main),
        ("speed", "3. Artifact speed", speed.main),
        ("large", "4. Large model (> 2 GB) to ONNX: peak memory", large_model.main),
        ("trust", "5. The cost of safety: trust checks on validate and bench", trust_cost.main),
        ("realistic", "6. Realistic workloads: ResNet-18 and BERT-small, every format x precision",
         lambda: realistic.main([])),
    ]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=[key for key, _, _ in sections],
                    help="run only this section (repeatable); the others keep their previous results")
    args = ap.parse_args(argv)
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    path = HERE / "RESULTS.md"
    old_bodies, blocks = previous(path.read_text()) if path.exists() else ({}, [])
    parts = [
        "# Benchmark results", "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
        + (f" (sections run: {', '.join(args.only)}; the others are from an earlier run)" if args.only else ""),
        f"- machine: {cpu}, {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}, "
        f"1-minute load average {os.getloadavg()[0]:.1f} at the start (measured under load: the machine is shared)",
        f"- versions: {_versions()}",
        "- how: `nox -s bench` (benchmarks/run_all.py); each ratio is measured within one run", "",
    ]
    results: dict[str, object] = {}
    for key, title, fn in sections:
        if args.only and key not in args.only:
            parts += [f"## {title}", "", old_bodies.get(title, "not measured in this run"), ""]
            continue
        print(f"running {title} ...", file=sys.stderr)
        try:
            body, results[title] = _capture(fn)
        except Exception as exc:  # a benchmark that cannot run here says so in the results
            body = f"not measured: {type(exc).__name__}: {exc}"
        parts += [f"## {title}", "", body.strip(), ""]
    target_rows = targets(*(results.get(title) for _, title, _ in sections))
    if args.only and "Against the targets" in old_bodies:
        target_rows = merge_rows(old_bodies["Against the targets"].splitlines(), target_rows)
    parts += ["## Against the targets", "", *target_rows, ""]
    parts += [block + "\n" for block in blocks]
    path.write_text("\n".join(parts))
    print("\n".join(parts))


if __name__ == "__main__":
    main()

"""ONNX plugin overhead and runtime speed, in one run; prints a markdown report on stdout.

1. Export time: ``modelport export -f onnx --no-validate`` (a subprocess, CLI start-up included) against a script
   that calls ``torch.onnx.export`` directly on the same model with the same exporter settings (dynamo, the same
   example batch and dynamic batch dim), also a subprocess. Runs alternate, the median of each is compared:
   target ratio <= 1.10. The in-process API time (``modelport.export(..., validate=False)``, warm) is reported
   against a warm in-process ``torch.onnx.export`` too.
2. Latency: p50 of the bundled CNN in onnxruntime (the plugin's runner) against PyTorch eager, same inputs, same
   thread count.
3. ``--big``: a > 2 GB model exported and validated through the CLI, with its files and the peak memory (RSS) of
   the process — the real run behind the external-data path that the tests only exercise with a lowered threshold.

    python benchmarks/onnx_overhead.py [--repeats 3] [--threads 1] [--models cnn,transformer] [--big]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "models.py"

MODELS: dict[str, dict[str, Any]] = {
    "cnn": {"factory": "small_cnn", "cli": ["--vision", "3x32x32"],
            "inputs": "(torch.randn(2, 3, 32, 32),)", "names": ["input"], "outputs": ["output"]},
    "transformer": {"factory": "small_transformer", "cli": ["--text", "16"],
                    "inputs": "(torch.randint(0, 1000, (2, 16)), torch.ones(2, 16, dtype=torch.int64))",
                    "names": ["input_ids", "attention_mask"], "outputs": ["last_hidden_state", "pooler_output"]},
}

# The direct script: what a user would write without modelport, with the settings the plugin uses by default
# (dynamo exporter, example batch 2, a named dynamic batch dim, opset left to the exporter, one file).
DIRECT = """
import importlib.util, sys, torch
spec = importlib.util.spec_from_file_location("models", {examples!r})
models = importlib.util.module_from_spec(spec); spec.loader.exec_module(models)
model = models.{factory}().eval()
args = {inputs}
batch = torch.export.Dim("batch", min=1, max=1 << 16)
with torch.no_grad():
    program = torch.onnx.export(model, args, dynamo=True, input_names={names!r}, output_names={outputs!r},
                                dynamic_shapes=tuple({{0: batch}} for _ in args), verbose=False)
program.save({out!r}, external_data=False)
"""


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+sys) of a subprocess; CPU time is what a loaded shared machine distorts least."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def export_overhead(name: str, repeats: int, work: Path) -> dict[str, Any]:
    """Median wall time of the CLI export and of the direct script, run alternately."""
    m = MODELS[name]
    py = sys.executable
    script = work / f"direct_{name}.py"
    script.write_text(DIRECT.format(examples=str(EXAMPLES), factory=m["factory"], inputs=m["inputs"],
                                    names=m["names"], outputs=m["outputs"], out=str(work / f"direct_{name}.onnx")))
    cli = [py, "-m", "modelport", "export", f"{EXAMPLES}:{m['factory']}", *m["cli"], "--dynamic-batch", "-f", "onnx",
           "--no-validate", "--force", "-q", "--output-dir", str(work / f"cli_{name}")]
    cli_noslim = [*cli[:-2], "-o", "simplify=false", "--output-dir", str(work / f"cli_{name}_noslim")]
    timed([py, "-c", "import torch, onnxscript, modelport_onnx"])  # warm the file cache before timing anything
    rows: dict[str, list[tuple[float, float]]] = {"cli": [], "cli_noslim": [], "direct": []}
    for _ in range(repeats):
        rows["direct"].append(timed([py, str(script)]))
        rows["cli"].append(timed(cli))
        rows["cli_noslim"].append(timed(cli_noslim))
    wall = {k: statistics.median(w for w, _ in v) for k, v in rows.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in rows.items()}
    return {"model": name, **{f"{k}_s": round(v, 2) for k, v in wall.items()},
            **{f"{k}_cpu_s": round(v, 2) for k, v in cpu.items()},
            "ratio": round(wall["cli"] / wall["direct"], 3), "ratio_noslim": round(wall["cli_noslim"] / wall["direct"], 3),
            "cpu_ratio": round(cpu["cli"] / cpu["direct"], 3)}


def load_examples() -> Any:
    from modelport.testing import load_module

    return load_module(EXAMPLES, "modelport_bench_models")


def in_process(name: str, repeats: int, work: Path) -> dict[str, Any]:
    """Warm in-process times: modelport.export(validate=False) against torch.onnx.export on the same model."""
    import modelport
    import torch

    ex = load_examples()
    m = MODELS[name]
    model = getattr(ex, m["factory"])().eval()
    spec = modelport.vision(3, 32, 32, dynamic_batch=True) if name == "cnn" else modelport.text(16, dynamic_batch=True)
    args = (torch.randn(2, 3, 32, 32),) if name == "cnn" else \
        (torch.randint(0, 1000, (2, 16)), torch.ones(2, 16, dtype=torch.int64))

    def direct() -> None:
        batch = torch.export.Dim("batch", min=1, max=1 << 16)
        with torch.no_grad():
            program = torch.onnx.export(model, args, dynamo=True, input_names=m["names"], output_names=m["outputs"],
                                        dynamic_shapes=tuple({0: batch} for _ in args), verbose=False)
        program.save(str(work / "inproc.onnx"), external_data=False)

    def api() -> dict[str, Any]:
        r = modelport.export(model, ["onnx"], spec, output_dir=work / f"api_{name}", force=True, validate=False)["onnx"]
        return r.record["details"]["timings"]

    direct()
    api()  # warm-up: first exports pay for onnxscript's registry
    d_times, a_times, steps = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        direct()
        d_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        steps.append(api())
        a_times.append(time.perf_counter() - t0)
    d, a = statistics.median(d_times), statistics.median(a_times)
    simplify = statistics.median(s["simplify_s"] for s in steps)
    check = statistics.median(s.get("batch_check_s", 0.0) for s in steps)
    return {"model": name, "api_s": round(a, 3), "direct_s": round(d, 3), "ratio": round(a / d, 3),
            "simplify_s": round(simplify, 3), "batch_check_s": round(check, 3)}


def latency(threads: int, work: Path, runs: int = 300) -> list[dict[str, Any]]:
    """p50/p90 of the CNN in onnxruntime (the plugin's runner) and PyTorch eager, same inputs and threads."""
    import modelport
    import numpy as np
    import torch

    ex = load_examples()
    model = ex.small_cnn().eval()
    r = modelport.export(model, ["onnx"], modelport.vision(3, 32, 32, dynamic_batch=True), output_dir=work / "lat",
                         force=True, threads=threads)["onnx"]
    assert r.status == "passed", r.error
    host = modelport.get_plugin_manager()
    art = modelport.Artifact(format="onnx", path=r.artifact_path)
    runner = host.pm.hook.load_runner(artifact=art, options={"threads": threads})
    torch.set_num_threads(threads)
    rows = []
    for batch in (1, 8):
        x = np.random.default_rng(0).standard_normal((batch, 3, 32, 32), dtype=np.float32)
        xt = torch.from_numpy(x)

        def ort_call(x: Any = x) -> None:
            runner({"input": x})

        def eager_call(xt: Any = xt) -> None:
            with torch.inference_mode():
                model(xt)

        for label, fn in (("onnxruntime", ort_call), ("pytorch eager", eager_call)):
            for _ in range(30):
                fn()
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            rows.append({"runtime": label, "batch": batch, "p50_ms": round(times[len(times) // 2], 3),
                         "p90_ms": round(times[int(len(times) * 0.9)], 3)})
    return rows


def big_model(layers: int = 9, width: int = 8192) -> Any:
    """A model over 2 GB (9 x 8192 x 8192 fp32 = 2.4 GB) for the external-data run; weights are seeded."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    with torch.no_grad():
        model = nn.Sequential(*[nn.Linear(width, width, bias=False) for _ in range(layers)])
        for lin in model:
            nn.init.normal_(lin.weight, std=width ** -0.5)
    return model.eval()


def big_run(work: Path) -> dict[str, Any]:
    """Export + validate the > 2 GB model through the CLI; report files, sizes, time and peak RSS of the child."""
    out = work / "big"
    cmd = [sys.executable, "-m", "modelport", "export", f"{Path(__file__).resolve()}:big_model", "--input", "x:1x8192",
           "-f", "onnx", "--output-dir", str(out), "--force", "--json", "-q", "--threads", "2"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    files = {p.name: p.stat().st_size for p in sorted(out.iterdir())} if out.is_dir() else {}
    record = json.loads((out / "export.json").read_text()) if (out / "export.json").is_file() else {}
    return {"exit_code": proc.returncode, "seconds": round(elapsed, 1), "peak_rss_gb": round(peak_kb / 1024 ** 2, 2),
            "files": files, "validation": record.get("validation", {}).get("status"),
            "max_abs_diff": record.get("validation", {}).get("max_abs_diff"),
            "checker": record.get("validation", {}).get("checks", {}).get("onnx.checker"),
            "stderr": proc.stderr.strip()[-500:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", default="cnn,transformer")
    ap.add_argument("--big", action="store_true", help="also export and validate a > 2 GB model (peak RSS about 10 GB)")
    ap.add_argument("--big-only", action="store_true", help="only the > 2 GB run")
    ap.add_argument("--json", action="store_true", help="print the results as JSON instead of markdown")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelport-onnx-bench-"))
    try:
        names = [] if a.big_only else [n.strip() for n in a.models.split(",") if n.strip()]
        results: dict[str, Any] = {"machine": f"{os.cpu_count()} CPUs, {sys.platform}, Python {sys.version.split()[0]}"}
        results["cli"] = [export_overhead(n, a.repeats, work) for n in names]
        results["api"] = [in_process(n, a.repeats, work) for n in names]
        results["latency"] = [] if a.big_only else latency(a.threads, work)
        if a.big or a.big_only:
            results["big"] = big_run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if a.json:
        print(json.dumps(results, indent=2))
        return
    if names:
        print_tables(results, a)
    if "big" in results:
        b = results["big"]
        print(f"\n## > 2 GB model (9 x Linear(8192, 8192), 2.4 GB fp32), export + validation through the CLI "
              f"({results['machine']})\n")
        print(f"exit {b['exit_code']}, {b['seconds']} s, peak RSS {b['peak_rss_gb']} GB, validation {b['validation']} "
              f"(max abs diff {b['max_abs_diff']}), onnx.checker {b['checker']}")
        print("\n| file | bytes |\n|---|---|")
        for f, size in b["files"].items():
            print(f"| {f} | {size} |")
        if b["exit_code"]:
            print(f"\nstderr: {b['stderr']}")


def print_tables(results: dict[str, Any], a: argparse.Namespace) -> None:
    """The overhead and latency tables in markdown."""
    print(f"## ONNX export overhead ({results['machine']}, {a.repeats} repeats, medians)\n")
    print("| model | `modelport export --no-validate` s | same, simplify=false s | direct torch.onnx.export script s "
          "| wall ratio | wall ratio (simplify=false) | CPU s (modelport / direct) | CPU ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results["cli"]:
        print(f"| {r['model']} | {r['cli_s']} | {r['cli_noslim_s']} | {r['direct_s']} | **{r['ratio']}** | {r['ratio_noslim']} "
              f"| {r['cli_cpu_s']} / {r['direct_cpu_s']} | **{r['cpu_ratio']}** |")
    print("\n| model (in-process, warm) | `modelport.export(validate=False)` s | `torch.onnx.export` s | ratio "
          "| of which onnxslim s | of which batch check s |")
    print("|---|---|---|---|---|---|")
    for r in results["api"]:
        print(f"| {r['model']} | {r['api_s']} | {r['direct_s']} | {r['ratio']} | {r['simplify_s']} | {r['batch_check_s']} |")
    print(f"\n## small_cnn latency, {a.threads} thread(s)\n")
    print("| runtime | batch | p50 ms | p90 ms |")
    print("|---|---|---|---|")
    for r in results["latency"]:
        print(f"| {r['runtime']} | {r['batch']} | {r['p50_ms']} | {r['p90_ms']} |")


if __name__ == "__main__":
    main()

"""Benchmark and compare artifacts through their plugins' runners — no format-specific code here.

Each runner is loaded once, warmed up, then timed in windows of runs until three window medians in
a row agree within 10% (or the time bound is hit). PyTorch eager runs on the same inputs and threads.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError, ModelportError
from modelport.inputs import InputSpec
from modelport.pipeline import (
    REFERENCE_FILE,
    artifact_from_dir,
    call_hook,
    load_reference,
    read_record,
)
from modelport.plugins import PluginHost, get_plugin_manager

BENCH_FILE = "bench.json"


def machine_info(threads: int) -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy
    import torch

    return {
        "cpu": cpu, "cores": os.cpu_count(), "threads": threads, "os": platform.platform(),
        "python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
    }


def time_runner(fn: Callable[[], Any], *, max_seconds: float = 10.0, window: int = 0, warmup_seconds: float = 0.3) -> dict[str, Any]:
    """Warm up, then time ``fn`` in windows until three window medians in a row agree within 10%."""
    t_end_warm = time.perf_counter() + warmup_seconds
    fn()
    warm = 1
    while time.perf_counter() < t_end_warm or warm < 3:
        fn()
        warm += 1
    if window <= 0:  # size windows to ~50 ms, at least 5 runs
        t0 = time.perf_counter()
        fn()
        one = max(time.perf_counter() - t0, 1e-6)
        window = max(5, min(200, int(0.05 / one)))
    samples: list[float] = []
    medians: list[float] = []
    stable = False
    deadline = time.perf_counter() + max_seconds
    while time.perf_counter() < deadline:
        win = []
        for _ in range(window):
            t0 = time.perf_counter()
            fn()
            win.append(time.perf_counter() - t0)
        samples.extend(win)
        medians.append(statistics.median(win))
        if len(medians) >= 3:
            last = medians[-3:]
            if max(last) <= min(last) * 1.10:
                stable = True
                break
    samples.sort()

    def pct(p: float) -> float:
        return samples[min(len(samples) - 1, round(p / 100 * (len(samples) - 1)))]

    return {"p50_ms": pct(50) * 1e3, "p90_ms": pct(90) * 1e3, "p99_ms": pct(99) * 1e3, "runs": len(samples),
            "windows": len(medians), "stable": stable, "warmup_runs": warm}


def _eager_model(record: Mapping[str, Any]) -> tuple[Any, str | None]:
    """Reload the PyTorch model from the export's recorded source, or say why it cannot be."""
    source = record.get("source") or {}
    ref = source.get("reference")
    if not ref or ref == "python object":
        return None, "no reloadable PyTorch source recorded (exported from a Python object)"
    from modelport.loading import load_model

    ckpt = (source.get("checkpoint") or {}).get("path")
    try:
        model, _ = load_model(ref, model_kwargs=source.get("model_kwargs") or None, checkpoint=ckpt,
                              checkpoint_prefix=(source.get("checkpoint") or {}).get("prefix_stripped"))
    except Exception as exc:
        return None, f"cannot reload {ref}: {exc}"
    return model, None


def bench_dirs(
    dirs: Sequence[Path],
    *,
    batches: Sequence[int] = (1,),
    threads: int | None = None,
    max_seconds: float = 10.0,
    host: PluginHost | None = None,
    progress: Callable[[str], None] = lambda m: None,
    eager: bool = True,
    write: bool = True,
) -> list[dict[str, Any]]:
    """Benchmark every export folder (and PyTorch eager once per source) at each batch size."""
    import torch

    host = host or get_plugin_manager()
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    records = []
    for d in dirs:
        d = Path(d)
        record = read_record(d)
        host.require_format(str(record["format"]))
        records.append((d, record))
    rows: list[dict[str, Any]] = []
    eager_done: dict[str, dict[int, dict[str, Any]]] = {}
    info = machine_info(threads)
    for d, record in records:
        spec = InputSpec.from_dict(record["inputs"])
        artifact = artifact_from_dir(d, record)
        artifact.options["threads"] = threads
        validation = record.get("validation") or {}
        source_key = json.dumps(record.get("source"), sort_keys=True, default=str)
        progress(f"{artifact.format}: loading")
        try:
            runner = call_hook(host, artifact.format, "load_runner", artifact=artifact, options={"threads": threads})
        except ModelportError as exc:  # e.g. Core ML cannot run on Linux: a row that says so, not a failed bench
            rows.append({"export_dir": str(d), "format": artifact.format, "error": str(exc).removeprefix(f"{artifact.format}: ")})
            continue
        if runner is None:
            rows.append({"export_dir": str(d), "format": artifact.format, "error": "no plugin can run this artifact here"})
            continue
        model = None
        if eager and source_key not in eager_done:
            model, why = _eager_model(record)
            eager_done[source_key] = {}
            if model is None:
                eager_done[source_key] = {-1: {"note": why}}
        for b in batches:
            if b != spec.batch_size and not spec.dynamic_batch:
                rows.append({"export_dir": str(d), "format": artifact.format, "batch": b,
                             "error": f"batch axis is fixed at {spec.batch_size}"})
                continue
            inputs = spec.make_numpy(batch=b if spec.dynamic_batch else None, seed=0)
            if model is not None and b not in eager_done[source_key]:
                progress(f"pytorch eager: batch {b}")
                args = spec.to_torch(inputs)

                def run_eager(args: tuple[Any, ...] = args, m: Any = model) -> Any:
                    with torch.no_grad():
                        return m(*args)

                t = time_runner(run_eager, max_seconds=max_seconds)
                eager_done[source_key][b] = t
                rows.append({"export_dir": None, "format": "pytorch", "precision": "fp32", "batch": b, "size_bytes": None,
                             "max_abs_diff": 0.0, "parity": "reference", "runtime": f"torch {torch.__version__}",
                             **_throughput(t, b), "speedup": 1.0})
            progress(f"{artifact.format}: batch {b}")
            t = time_runner(functools.partial(runner, inputs), max_seconds=max_seconds)
            base = eager_done.get(source_key, {}).get(b)
            rows.append({
                "export_dir": str(d), "format": artifact.format, "precision": artifact.precision, "batch": b,
                "size_bytes": (record.get("sizes") or {}).get("total_bytes"),
                "max_abs_diff": validation.get("max_abs_diff"), "parity": validation.get("status"),
                "runtime": getattr(runner, "runtime", None), **_throughput(t, b),
                "speedup": (base["p50_ms"] / t["p50_ms"]) if base and "p50_ms" in base else None,
            })
    _mark_best(rows)
    if write:
        for d, _ in records:
            mine = [r for r in rows if r.get("export_dir") == str(d)]
            eager_rows = [r for r in rows if r.get("format") == "pytorch"]
            from modelport.store import now_iso, write_json_atomic

            write_json_atomic(d / BENCH_FILE, {"created_at": now_iso(), "machine": info, "rows": mine + eager_rows})
    for r in rows:
        r.setdefault("machine", None)
    return rows


def _throughput(t: dict[str, Any], batch: int) -> dict[str, Any]:
    return {**t, "throughput": batch / (t["p50_ms"] / 1e3) if t["p50_ms"] > 0 else None}


def _mark_best(rows: list[dict[str, Any]]) -> None:
    by_batch: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        if "p50_ms" in r and r.get("format") != "pytorch" and r.get("parity") not in ("failed",):
            by_batch.setdefault(r["batch"], []).append(r)
    for group in by_batch.values():
        best = min(group, key=lambda r: r["p50_ms"])
        best["best"] = True


def render_table(rows: Sequence[Mapping[str, Any]]) -> Any:
    """A rich table: format, precision, size, parity, p50, p90, throughput, speed-up; best row marked."""
    from rich.table import Table

    from modelport.text import human_size

    table = Table(title="Benchmark (latency per call; speed-up vs PyTorch eager)", title_justify="left")
    for col in ("", "format", "precision", "batch", "size", "parity (max abs)", "p50 ms", "p90 ms", "p99 ms",
                "throughput /s", "speed-up"):
        table.add_column(col)
    for r in rows:
        if "error" in r:
            table.add_row("", r.get("format", ""), "", str(r.get("batch", "")), "", "", "", "", "", "", r["error"])
            continue
        parity = r.get("parity") or ""
        if r.get("max_abs_diff") is not None and r.get("format") != "pytorch":
            parity = f"{parity} ({r['max_abs_diff']:.1e})"
        table.add_row(
            "★" if r.get("best") else "", r["format"], r.get("precision") or "", str(r["batch"]),
            human_size(r.get("size_bytes"), ""), parity, f"{r['p50_ms']:.3f}", f"{r['p90_ms']:.3f}", f"{r['p99_ms']:.3f}",
            f"{r['throughput']:.1f}" if r.get("throughput") else "", f"{r['speedup']:.2f}x" if r.get("speedup") else "",
        )
    return table


def plot_rows(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Bar chart of p50 latency per format and batch size (matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install 'modelport[plot]'") from None
    ok = [r for r in rows if "p50_ms" in r]
    if not ok:
        raise ConfigError("nothing was measured, so there is nothing to plot")
    formats = list(dict.fromkeys(r["format"] for r in ok))
    batches = sorted({r["batch"] for r in ok})
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(formats) * len(batches)), 4))
    width = 0.8 / len(batches)
    for i, b in enumerate(batches):
        vals = [next((r["p50_ms"] for r in ok if r["format"] == f and r["batch"] == b), 0.0) for f in formats]
        pos = [x + i * width for x in range(len(formats))]
        bars = ax.bar(pos, vals, width, label=f"batch {b}")
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks([x + width * (len(batches) - 1) / 2 for x in range(len(formats))], formats)
    ax.set_ylabel("p50 latency (ms)")
    ax.set_title("modelport bench: p50 latency per format")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def compare_dirs(a: Path, b: Path | str, *, atol: float | None = None, rtol: float | None = None,
                 host: PluginHost | None = None) -> dict[str, Any]:
    """Run A's recorded inputs through A and B (an export folder, or ``pytorch`` for A's reference) and diff."""
    from modelport.compare import PROFILES, compare_outputs, profile_for

    host = host or get_plugin_manager()
    rec_a = read_record(a)
    spec = InputSpec.from_dict(rec_a["inputs"])
    names = list(rec_a.get("outputs") or [])
    ref = load_reference(a / REFERENCE_FILE, spec.names, len(names))

    def run(d: Path, record: Mapping[str, Any]) -> tuple[list[list[Any]], Any]:
        host.require_format(str(record["format"]))
        art = artifact_from_dir(d, record)
        runner = call_hook(host, art.format, "load_runner", artifact=art, options={"threads": None})
        if runner is None:
            raise ConfigError(f"{d}: no installed plugin can run {art.format} artifacts here")
        return [list(runner(dict(s))) for s in ref.inputs], art

    out_a, art_a = run(a, rec_a)
    structure: dict[str, Any] = {}
    if str(b) in ("pytorch", "torch"):
        out_b, prec_b, label = ref.outputs, "fp32", "pytorch"
    else:
        b = Path(b)
        rec_b = read_record(b)
        if [t["name"] for t in rec_b["inputs"]] != spec.names:
            raise ConfigError(f"{a} and {b} take different inputs ({spec.names} vs {[t['name'] for t in rec_b['inputs']]})")
        out_b, art_b = run(b, rec_b)
        prec_b, label = art_b.precision, str(b)
        ia = host.pm.hook.inspect_artifact(path=art_a.path, options={})
        ib = host.pm.hook.inspect_artifact(path=art_b.path, options={})
        if ia and ib and art_a.format == art_b.format:
            structure = _structural_diff(ia, ib)
    order = list(PROFILES)
    loosest = max(art_a.precision, prec_b, key=lambda p: order.index(p) if p in order else 0)
    comp = compare_outputs(out_b, out_a, names or [f"output_{i}" for i in range(len(out_a[0]))],
                           profile_for(loosest, atol, rtol), loosest,
                           classifier=rec_a.get("task") in ("classification", "text-classification"),
                           batch_sizes=sorted(set(ref.batch_sizes)))
    return {"a": str(a), "b": label, "comparison": comp, "structure": structure}


def _structural_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ops_a, ops_b = a.get("ops") or {}, b.get("ops") or {}
    changed = {op: [ops_a.get(op, 0), ops_b.get(op, 0)] for op in sorted(set(ops_a) | set(ops_b)) if ops_a.get(op, 0) != ops_b.get(op, 0)}
    out["op histogram (A, B)"] = changed or "identical"
    for key in ("inputs", "outputs"):
        if a.get(key) != b.get(key):
            out[f"{key} signature"] = {"A": a.get(key), "B": b.get(key)}
        else:
            out[f"{key} signature"] = "identical"
    if "nodes" in a or "nodes" in b:
        out["nodes (A, B)"] = [a.get("nodes"), b.get("nodes")]
    return out

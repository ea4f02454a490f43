"""Benchmark and compare artifacts through their plugins' runners — no format-specific code here.

Each runner is loaded once and warmed up; then, per batch size, every artifact and PyTorch eager (same inputs,
same threads) are timed in windows taken in turns, so a burst of load from elsewhere on the machine hits all of
them alike, until each one's last three window medians agree within 10% (or the time bound is hit). A row whose
numbers are not trustworthy (windows disagree, p90 far above p50, too few runs) says why in ``unstable``.
Throughput is items per measured second, not 1000 / p50.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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


# A measurement is trusted when its last windows agree, its tail is not far above its median and it has enough runs.
AGREE = 0.10  # the last three window medians within 10% of each other
MAX_SPREAD = 2.0  # p90 at most twice p50
MIN_RUNS = 20
MIN_WINDOWS = 3


@dataclass
class Measurement:
    """One thing being timed (an artifact's runner or PyTorch eager) at one batch size, window by window."""

    label: str
    fn: Callable[[], Any]
    batch: int
    window: int = 0
    samples: list[float] = field(default_factory=list)
    medians: list[float] = field(default_factory=list)
    warmup_runs: int = 0

    def warm_up(self, seconds: float = 0.2) -> None:
        """Run until warm (at least 3 runs), then size windows to ~50 ms, at least 3 runs each."""
        t_end = time.perf_counter() + seconds
        while time.perf_counter() < t_end or self.warmup_runs < 3:
            t0 = time.perf_counter()
            self.fn()
            one = max(time.perf_counter() - t0, 1e-6)
            self.warmup_runs += 1
        self.window = max(3, min(200, int(0.05 / one)))

    def run_window(self) -> None:
        win = []
        for _ in range(self.window):
            t0 = time.perf_counter()
            self.fn()
            win.append(time.perf_counter() - t0)
        self.samples.extend(win)
        self.medians.append(statistics.median(win))

    @property
    def converged(self) -> bool:
        if len(self.medians) < MIN_WINDOWS or len(self.samples) < MIN_RUNS:
            return False
        last = self.medians[-MIN_WINDOWS:]
        return max(last) <= min(last) * (1 + AGREE)

    def result(self) -> dict[str, Any]:
        """p50/p90/p99, throughput from the measured runs (items / measured seconds), and why not to trust it."""
        s = sorted(self.samples)

        def pct(q: float) -> float:
            return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]

        p50, p90 = pct(50), pct(90)
        problems = []
        if len(s) < MIN_RUNS:
            problems.append(f"only {len(s)} runs")
        if len(self.medians) >= 2 and not self.converged:
            last = self.medians[-MIN_WINDOWS:]
            problems.append(f"window medians differ by {max(last) / min(last) - 1:.0%}")
        if p50 > 0 and p90 / p50 > MAX_SPREAD:
            problems.append(f"p90 is {p90 / p50:.1f}x p50")
        total = sum(s)
        return {
            "p50_ms": p50 * 1e3, "p90_ms": p90 * 1e3, "p99_ms": pct(99) * 1e3, "runs": len(s),
            "windows": len(self.medians), "warmup_runs": self.warmup_runs, "stable": not problems,
            "unstable": "; ".join(problems) or None,
            "throughput": self.batch * len(s) / total if total > 0 else None,
        }


def measure_interleaved(items: Sequence[Measurement], *, max_seconds: float = 10.0) -> None:
    """Time every item window by window, in turns, so contention from the rest of the machine falls on all of
    them alike; an item stops once its windows agree, everything stops at ``max_seconds`` per item."""
    for m in items:
        m.warm_up()
    deadline = time.perf_counter() + max_seconds * max(1, len(items))
    while True:
        pending = [m for m in items if not m.converged]
        if not pending or time.perf_counter() >= deadline:
            break
        for m in pending:
            m.run_window()


def time_runner(fn: Callable[[], Any], *, max_seconds: float = 10.0) -> dict[str, Any]:
    """Warm up, then time ``fn`` in windows until three window medians in a row agree within 10%."""
    m = Measurement("fn", fn, 1)
    measure_interleaved([m], max_seconds=max_seconds)
    out = m.result()
    out.pop("throughput")
    return out


_NOT_IMPORTED = ("this export was not written by modelport on this machine, and its export.json names the code "
                 "that would be imported; pass --trust-code if you trust it")


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


@dataclass
class _Target:
    export_dir: Path
    record: dict[str, Any]
    spec: InputSpec
    artifact: Any
    runner: Any
    source_key: str


def _load_targets(records: Sequence[tuple[Path, dict[str, Any]]], host: PluginHost, threads: int,
                  progress: Callable[[str], None], rows: list[dict[str, Any]]) -> list[_Target]:
    """Load each artifact's runner once (never inside a timing); one that cannot run here becomes an error row."""
    targets = []
    for d, record in records:
        artifact = artifact_from_dir(d, record)
        artifact.options["threads"] = threads
        progress(f"{artifact.format}: loading")
        try:
            runner = call_hook(host, artifact.format, "load_runner", artifact=artifact, options={"threads": threads})
        except ModelportError as exc:  # e.g. Core ML cannot run on Linux: a row that says so, not a failed bench
            rows.append({"export_dir": str(d), "format": artifact.format, "error": str(exc).removeprefix(f"{artifact.format}: ")})
            continue
        if runner is None:
            rows.append({"export_dir": str(d), "format": artifact.format, "error": "no plugin can run this artifact here"})
            continue
        targets.append(_Target(d, record, InputSpec.from_dict(record["inputs"]), artifact, runner,
                               json.dumps(record.get("source"), sort_keys=True, default=str)))
    return targets


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
    trust_code: bool = False,
) -> list[dict[str, Any]]:
    """Benchmark every export folder (and PyTorch eager once per source) at each batch size.

    At each batch size every artifact and the eager model are timed in interleaved windows (see
    :func:`measure_interleaved`); a row whose numbers cannot be trusted says why in ``unstable``.
    PyTorch eager is rebuilt from the record's ``source`` only when modelport sealed the record on this
    machine or ``trust_code`` is set: a record from elsewhere would otherwise name the code bench runs.
    """
    import torch

    from modelport.trust import check_export

    host = host or get_plugin_manager()
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    records = []
    verdicts = {}
    for d in dirs:
        d = Path(d)
        record = read_record(d)
        host.require_format(str(record["format"]))
        verdicts[str(d)] = check_export(d, record, artifact_from_dir(d, record).files, trust_code=trust_code)
        records.append((d, record))
    rows: list[dict[str, Any]] = []
    info = machine_info(threads)
    targets = _load_targets(records, host, threads, progress, rows)
    eager_models: dict[str, Any] = {}
    if eager:
        for t in targets:
            if t.source_key not in eager_models:
                progress("pytorch eager: loading")
                allowed = verdicts[str(t.export_dir)].may_import_source
                model, why = _eager_model(t.record) if allowed else (None, _NOT_IMPORTED)
                eager_models[t.source_key] = model
                if model is None:
                    rows.append({"export_dir": None, "format": "pytorch", "error": f"not measured: {why}"})
    for b in batches:
        items: list[tuple[Measurement, dict[str, Any]]] = []
        eager_rows: dict[str, dict[str, Any]] = {}
        for t in targets:
            if b != t.spec.batch_size and not t.spec.dynamic_batch:
                rows.append({"export_dir": str(t.export_dir), "format": t.artifact.format, "batch": b,
                             "error": f"batch axis is fixed at {t.spec.batch_size}"})
                continue
            inputs = t.spec.make_numpy(batch=b if t.spec.dynamic_batch else None, seed=0)
            model = eager_models.get(t.source_key)
            if model is not None and t.source_key not in eager_rows:
                from modelport.binding import plan_binding

                _, binding = plan_binding(model, t.spec)
                named = dict(zip(t.spec.names, t.spec.to_torch(inputs), strict=True))

                def run_eager(named: dict[str, Any] = named, m: Any = model, bd: Any = binding) -> Any:
                    with torch.no_grad():
                        return bd.call(m, named)  # inputs by name, as the export's reference run

                row: dict[str, Any] = {"export_dir": None, "format": "pytorch", "precision": "fp32", "batch": b, "size_bytes": None,
                       "max_abs_diff": 0.0, "parity": "reference", "runtime": f"torch {torch.__version__}"}
                eager_rows[t.source_key] = row
                items.append((Measurement("pytorch", run_eager, b), row))
            validation = t.record.get("validation") or {}
            row = {"export_dir": str(t.export_dir), "format": t.artifact.format, "precision": t.artifact.precision,
                   "batch": b, "size_bytes": (t.record.get("sizes") or {}).get("total_bytes"),
                   "max_abs_diff": validation.get("max_abs_diff"), "parity": validation.get("status"),
                   "runtime": getattr(t.runner, "runtime", None), "_source": t.source_key}
            items.append((Measurement(t.artifact.format, functools.partial(t.runner, inputs), b), row))
        if not items:
            continue
        progress(f"batch {b}: timing {', '.join(m.label for m, _ in items)} in turns")
        measure_interleaved([m for m, _ in items], max_seconds=max_seconds)
        for m, row in items:
            row.update(m.result())
        for _m, row in items:
            base = eager_rows.get(row.pop("_source", None) or "") if not is_eager(row) else row
            row["speedup"] = (base["p50_ms"] / row["p50_ms"]) if base and row.get("p50_ms") else None
            rows.append(row)
    _mark_best(rows)
    if write:
        from modelport.store import now_iso, write_json_atomic

        eager_all = [r for r in rows if is_eager(r)]
        for d, _ in records:
            mine = [r for r in rows if r.get("export_dir") == str(d)]
            write_json_atomic(d / BENCH_FILE, {"created_at": now_iso(), "machine": info, "rows": mine + eager_all})
    for r in rows:
        r.setdefault("machine", info)
    return rows


def is_eager(row: Mapping[str, Any]) -> bool:
    """The PyTorch eager baseline row (labelled ``pytorch``, no export folder) — not a ``pytorch`` format export."""
    return row.get("format") == "pytorch" and not row.get("export_dir")


def _mark_best(rows: list[dict[str, Any]]) -> None:
    by_batch: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        if "p50_ms" in r and not is_eager(r) and r.get("parity") not in ("failed",):
            by_batch.setdefault(r["batch"], []).append(r)
    for group in by_batch.values():
        best = min(group, key=lambda r: r["p50_ms"])
        best["best"] = True


def check_plot_dependencies() -> None:
    """Exit 3 before any work when ``--plot`` cannot be drawn (matplotlib missing), with the command that fixes it."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        from modelport.catalog import install_hint

        raise ConfigError(f"--plot needs matplotlib: {install_hint('modelport', extra='plot')}")


def plot_rows(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """p50 latency per format and batch size on a log axis, with a whisker up to p90; unstable bars hatched."""
    check_plot_dependencies()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if "p50_ms" in r]
    if not ok:
        raise ConfigError("nothing was measured, so there is nothing to plot")
    formats = list(dict.fromkeys(r["format"] for r in ok))
    batches = sorted({r["batch"] for r in ok})
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(formats) * len(batches)), 4))
    width = 0.8 / len(batches)
    for i, b in enumerate(batches):
        found = [next((r for r in ok if r["format"] == f and r["batch"] == b), None) for f in formats]
        pos = [x + i * width for x, r in zip(range(len(formats)), found, strict=True) if r is not None]
        sel = [r for r in found if r is not None]
        p50 = [r["p50_ms"] for r in sel]
        whisker = [[0.0] * len(sel), [max(0.0, r["p90_ms"] - r["p50_ms"]) for r in sel]]
        bars = ax.bar(pos, p50, width, yerr=whisker, capsize=3, label=f"batch {b}")
        for bar, r in zip(bars, sel, strict=True):
            if r.get("unstable"):
                bar.set_hatch("//")
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in p50], fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks([x + width * (len(batches) - 1) / 2 for x in range(len(formats))], formats)
    ax.set_ylabel("latency per call, ms (log): p50, whisker to p90")
    title = "modelport bench"
    if any(r.get("unstable") for r in ok):
        title += " (hatched: unstable measurement)"
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def compare_dirs(a: Path, b: Path | str, *, atol: float | None = None, rtol: float | None = None,
                 host: PluginHost | None = None, trust_code: bool = False) -> dict[str, Any]:
    """Run A's recorded inputs through A and B (an export folder, or ``pytorch`` for A's reference) and diff."""
    from modelport.compare import PROFILES, compare_outputs, profile_for
    from modelport.trust import check_export

    host = host or get_plugin_manager()
    rec_a = read_record(a)
    spec = InputSpec.from_dict(rec_a["inputs"])
    names = list(rec_a.get("outputs") or [])
    ref = load_reference(a / REFERENCE_FILE, spec.names, len(names))

    def run(d: Path, record: Mapping[str, Any]) -> tuple[list[list[Any]], Any]:
        host.require_format(str(record["format"]))
        art = artifact_from_dir(d, record)
        check_export(d, record, art.files, trust_code=trust_code)
        runner = call_hook(host, art.format, "load_runner", artifact=art, options={"threads": None})
        if runner is None:
            raise ConfigError(f"{d}: no installed plugin can run {art.format} artifacts here")
        return [list(runner(dict(s))) for s in ref.inputs], art

    out_a, art_a = run(a, rec_a)
    structure: dict[str, Any] = {}
    if str(b) in ("pytorch", "torch") and not Path(b).is_dir():  # a folder named pytorch is a pytorch-format export
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

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

from modelport.engine.inputs import InputSpec
from modelport.engine.pipeline import call_hook, load_reference
from modelport.errors import ConfigError, ModelportError
from modelport.folder.exportdir import BENCH_FILE, ExportRecord, OpenedExport, open_export
from modelport.plugins.host import PluginHost, get_plugin_manager


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


def _eager_model(record: ExportRecord) -> tuple[Any, str | None]:
    """Reload the PyTorch model from the export's recorded source, or say why it cannot be."""
    source = record.source or {}
    ref = source.get("reference")
    if not ref or ref == "python object":
        return None, "no reloadable PyTorch source recorded (exported from a Python object)"
    from modelport.models.loading import load_model

    ckpt = (source.get("checkpoint") or {}).get("path")
    try:
        model, _ = load_model(ref, model_kwargs=source.get("model_kwargs") or None, checkpoint=ckpt,
                              checkpoint_prefix=(source.get("checkpoint") or {}).get("prefix_stripped"))
    except Exception as exc:
        return None, f"cannot reload {ref}: {exc}"
    return model, None


@dataclass
class BenchRow:
    """One row of ``modelport bench``: an artifact (or PyTorch eager, ``export_dir`` None) at one batch size, or
    ``error`` saying why it was not measured. :meth:`to_dict` is the row as bench.json and ``--json`` show it."""

    export_dir: str | None
    format: str
    batch: int | None = None
    precision: str | None = None
    size_bytes: int | None = None
    max_abs_diff: float | None = None
    parity: str | None = None
    runtime: str | None = None
    error: str | None = None
    #: :meth:`Measurement.result`: p50_ms, p90_ms, p99_ms, runs, windows, warmup_runs, stable, unstable, throughput
    timing: dict[str, Any] | None = None
    speedup: float | None = None
    best: bool = False
    machine: dict[str, Any] | None = None
    source_key: str | None = field(default=None, repr=False)  # which eager row this artifact is measured against

    @property
    def p50_ms(self) -> float | None:
        return (self.timing or {}).get("p50_ms")

    def to_dict(self) -> dict[str, Any]:
        """The JSON row: what was measured (or the error), the speedup over eager, ``best`` when fastest."""
        out: dict[str, Any] = {"export_dir": self.export_dir, "format": self.format}
        if self.error is not None:
            out.update({"batch": self.batch} if self.batch is not None else {})
            out["error"] = self.error
        else:
            out.update(precision=self.precision, batch=self.batch, size_bytes=self.size_bytes,
                       max_abs_diff=self.max_abs_diff, parity=self.parity, runtime=self.runtime)
            out.update(self.timing or {})
            out["speedup"] = self.speedup
            if self.best:
                out["best"] = True
        if self.machine is not None:
            out["machine"] = self.machine
        return out


@dataclass
class _Target:
    export_dir: Path
    record: ExportRecord
    spec: InputSpec
    artifact: Any
    runner: Any
    source_key: str


def _load_targets(opened: Sequence[OpenedExport], host: PluginHost, threads: int,
                  progress: Callable[[str], None], rows: list[BenchRow]) -> list[_Target]:
    """Load each artifact's runner once (never inside a timing); one that cannot run here becomes an error row."""
    targets = []
    for o in opened:
        d, record, artifact = o.export_dir, o.folder.typed_record, o.artifact
        artifact.options["threads"] = threads
        progress(f"{artifact.format}: loading")
        try:
            runner = call_hook(host, artifact.format, "load_runner", artifact=artifact, options={"threads": threads})
        except ModelportError as exc:  # e.g. Core ML cannot run on Linux: a row that says so, not a failed bench
            rows.append(BenchRow(str(d), artifact.format, error=str(exc).removeprefix(f"{artifact.format}: ")))
            continue
        if runner is None:
            rows.append(BenchRow(str(d), artifact.format, error="no plugin can run this artifact here"))
            continue
        targets.append(_Target(d, record, InputSpec.from_dict(record.inputs), artifact, runner,
                               json.dumps(record.source, sort_keys=True, default=str)))
    return targets


def _eager_models(targets: Sequence[_Target], opened: Sequence[OpenedExport], progress: Callable[[str], None],
                  rows: list[BenchRow]) -> dict[str, Any]:
    """PyTorch eager once per recorded source — rebuilt only from a record sealed here or with --trust-code."""
    allowed = {str(o.export_dir): o.trust.may_import_source for o in opened}
    models: dict[str, Any] = {}
    for t in targets:
        if t.source_key not in models:
            progress("pytorch eager: loading")
            model, why = _eager_model(t.record) if allowed[str(t.export_dir)] else (None, _NOT_IMPORTED)
            models[t.source_key] = model
            if model is None:
                rows.append(BenchRow(None, "pytorch", error=f"not measured: {why}"))
    return models


def _eager_item(t: _Target, model: Any, inputs: Any, b: int) -> tuple[Measurement, BenchRow]:
    """PyTorch eager on the same inputs, bound by name as in the export's reference run."""
    import torch

    from modelport.engine.binding import plan_binding

    _, binding = plan_binding(model, t.spec)
    named = dict(zip(t.spec.names, t.spec.to_torch(inputs), strict=True))

    def run_eager(named: dict[str, Any] = named, m: Any = model, bd: Any = binding) -> Any:
        with torch.no_grad():
            return bd.call(m, named)

    row = BenchRow(None, "pytorch", batch=b, precision="fp32", max_abs_diff=0.0, parity="reference",
                   runtime=f"torch {torch.__version__}")
    return Measurement("pytorch", run_eager, b), row


def _measure_batch(targets: Sequence[_Target], eager_models: Mapping[str, Any], b: int, max_seconds: float,
                   progress: Callable[[str], None], rows: list[BenchRow]) -> None:
    """Time every artifact (and eager once per source) at batch ``b`` in turns; rows appended in order."""
    items: list[tuple[Measurement, BenchRow]] = []
    eager_rows: dict[str, BenchRow] = {}
    for t in targets:
        if b != t.spec.batch_size and not t.spec.dynamic_batch:
            rows.append(BenchRow(str(t.export_dir), t.artifact.format, batch=b,
                                 error=f"batch axis is fixed at {t.spec.batch_size}"))
            continue
        inputs = t.spec.make_numpy(batch=b if t.spec.dynamic_batch else None, seed=0)
        model = eager_models.get(t.source_key)
        if model is not None and t.source_key not in eager_rows:
            item = _eager_item(t, model, inputs, b)
            eager_rows[t.source_key] = item[1]
            items.append(item)
        validation = t.record.validation or {}
        row = BenchRow(str(t.export_dir), t.artifact.format, batch=b, precision=t.artifact.precision,
                       size_bytes=(t.record.sizes or {}).get("total_bytes"),
                       max_abs_diff=validation.get("max_abs_diff"), parity=validation.get("status"),
                       runtime=getattr(t.runner, "runtime", None), source_key=t.source_key)
        items.append((Measurement(t.artifact.format, functools.partial(t.runner, inputs), b), row))
    if not items:
        return
    progress(f"batch {b}: timing {', '.join(m.label for m, _ in items)} in turns")
    measure_interleaved([m for m, _ in items], max_seconds=max_seconds)
    for m, row in items:
        row.timing = m.result()
    for _m, row in items:
        base = row if is_eager(row) else eager_rows.get(row.source_key or "")
        row.speedup = (base.p50_ms / row.p50_ms) if base and base.p50_ms is not None and row.p50_ms else None
        rows.append(row)


@dataclass(frozen=True)
class _BenchOptions:
    """:func:`bench_rows`' keywords with their defaults (``bench_dirs`` and ``modelport bench`` pass them on)."""

    batches: Sequence[int] = (1,)
    threads: int | None = None
    max_seconds: float = 10.0
    host: PluginHost | None = None
    progress: Callable[[str], None] = lambda m: None
    eager: bool = True
    write: bool = True
    trust_code: bool = False


def bench_rows(dirs: Sequence[Path], **options: Any) -> list[BenchRow]:
    """Benchmark every export folder (and PyTorch eager once per source) at each batch size.

    Keywords: ``batches`` (default (1,)), ``threads`` (default: all cores), ``max_seconds`` (10.0), ``host``,
    ``progress``, ``eager`` (True), ``write`` (True: bench.json in each folder), ``trust_code`` (False).
    Every folder is opened as validate opens it (record, metadata, sha256, trust) before anything is timed. At
    each batch size every artifact and the eager model are timed in interleaved windows (see
    :func:`measure_interleaved`); a row whose numbers cannot be trusted says why in ``unstable``. PyTorch eager
    is rebuilt from the record's ``source`` only when modelport sealed the record on this machine or
    ``trust_code`` is set: a record from elsewhere would otherwise name the code bench runs.
    """
    import torch

    o = _BenchOptions(**options)
    host = o.host or get_plugin_manager()
    threads = o.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    opened = [open_export(d, host=host, trust_code=o.trust_code) for d in dirs]
    rows: list[BenchRow] = []
    info = machine_info(threads)
    targets = _load_targets(opened, host, threads, o.progress, rows)
    eager_models = _eager_models(targets, opened, o.progress, rows) if o.eager else {}
    for b in o.batches:
        _measure_batch(targets, eager_models, b, o.max_seconds, o.progress, rows)
    _mark_best(rows)
    if o.write:
        _write_bench_files(opened, rows, info)
    for r in rows:
        r.machine = r.machine or info
    return rows


def _write_bench_files(opened: Sequence[OpenedExport], rows: list[BenchRow], info: dict[str, Any]) -> None:
    """bench.json in each folder: its own rows and the eager baseline's, with the machine they ran on."""
    from modelport.folder.store import now_iso, write_json_atomic

    eager_all = [r.to_dict() for r in rows if is_eager(r)]
    for o in opened:
        mine = [r.to_dict() for r in rows if r.export_dir == str(o.export_dir)]
        write_json_atomic(o.export_dir / BENCH_FILE, {"created_at": now_iso(), "machine": info, "rows": mine + eager_all})


def bench_dirs(dirs: Sequence[Path], **kwargs: Any) -> list[dict[str, Any]]:
    """:func:`bench_rows` as JSON-ready dicts (what ``modelport bench --json`` prints); same keyword arguments."""
    return [r.to_dict() for r in bench_rows(dirs, **kwargs)]


def is_eager(row: BenchRow | Mapping[str, Any]) -> bool:
    """The PyTorch eager baseline row (labelled ``pytorch``, no export folder) — not a ``pytorch`` format export."""
    if isinstance(row, BenchRow):
        return row.format == "pytorch" and not row.export_dir
    return row.get("format") == "pytorch" and not row.get("export_dir")


def _mark_best(rows: list[BenchRow]) -> None:
    """Mark the fastest artifact at each batch size (eager and failed-parity rows never win)."""
    by_batch: dict[int | None, list[BenchRow]] = {}
    for r in rows:
        if r.p50_ms is not None and not is_eager(r) and r.parity not in ("failed",):
            by_batch.setdefault(r.batch, []).append(r)
    for group in by_batch.values():
        best = min(group, key=lambda r: r.p50_ms or 0.0)
        best.best = True


def check_plot_dependencies() -> None:
    """Exit 3 before any work when ``--plot`` cannot be drawn (matplotlib missing), with the command that fixes it."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        from modelport.plugins.catalog import install_hint

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
    from modelport.engine.compare import PROFILES, compare_outputs, profile_for

    host = host or get_plugin_manager()
    opened_a = open_export(a, host=host, trust_code=trust_code)
    eager_b = str(b) in ("pytorch", "torch") and not Path(b).is_dir()  # a folder named pytorch is a pytorch export
    opened_b = None if eager_b else open_export(b, host=host, trust_code=trust_code)
    rec_a = opened_a.record
    spec = InputSpec.from_dict(rec_a["inputs"])
    names = list(rec_a.get("outputs") or [])
    ref = load_reference(opened_a.folder.reference_path, spec.names, len(names))

    def run(opened: OpenedExport) -> tuple[list[list[Any]], Any]:
        art = opened.artifact
        runner = call_hook(host, art.format, "load_runner", artifact=art, options={"threads": None})
        if runner is None:
            raise ConfigError(f"{opened.export_dir}: no installed plugin can run {art.format} artifacts here")
        return [list(runner(dict(s))) for s in ref.inputs], art

    if opened_b is not None:
        b_names = InputSpec.from_dict(opened_b.record["inputs"]).names
        if b_names != spec.names:
            raise ConfigError(f"{a} and {b} take different inputs ({spec.names} vs {b_names})")
    out_a, art_a = run(opened_a)
    structure: dict[str, Any] = {}
    if opened_b is None:
        out_b, prec_b, label = ref.outputs, "fp32", "pytorch"
    else:
        out_b, art_b = run(opened_b)
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

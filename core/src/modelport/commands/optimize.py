"""``modelport optimize``: the fastest artifact within an accuracy budget — no format-specific code here.

Every available format is exported through the normal pipeline with each combination of the values its options
declare worth trying (``OptionSpec.tune``) and each thread count — exported once per file-changing combination:
threads and options marked ``OptionSpec.runtime`` only reload the runner; a candidate is scored on the user's data against
PyTorch (or labels), dropped if a first slice already breaks the budget, else timed at batch 1 with bench's code.
The winner is the fastest on the Pareto front that fits, copied as a normal export folder whose export.json says how.
Calibration sizes (an option marked ``OptionSpec.calibration``) are searched only where the format calibrates: the first
items of the data calibrate, the rest score (held out), and a larger size is tried only when a smaller one came close.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import ConfigError, ModelportError

NO_FIT_EXIT = 2  # no candidate fits the budget: like a failed validation (DESIGN.md exit codes)
FIRST_SLICE = 8  # items a candidate must pass before the full measurement
MIN_HELD_OUT = 8  # fewer items left to score than this: calibration items are scored too (said in one line)
EXPORT_SAMPLES = 32  # items a candidate that does not calibrate gets (its export validates on a few of them)
_BUDGET = re.compile(r"^\s*(top1|cosine|max_abs)\s*(=|>=|<=)\s*([-+]?[0-9]*\.?[0-9]+(?:e[-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Budget:
    """An accuracy budget: ``top1=-1.0`` (points vs reference), ``cosine>=0.999``, ``max_abs<=1e-3``."""

    metric: str
    bound: float

    def fits(self, value: float, reference: float | None = None) -> bool:
        if self.metric == "top1":
            return value >= (reference if reference is not None else 100.0) + self.bound - 1e-9
        if self.metric == "cosine":
            return value >= self.bound
        return value <= self.bound

    def near(self, value: float, reference: float | None = None) -> bool:
        """Missed by at most the budget's own margin again (top1: at least 1 point): worth more calibration."""
        if self.metric == "top1":
            return self.fits(value - min(self.bound, -1.0), reference)  # the threshold moved down by the margin
        if self.metric == "cosine":
            return value >= self.bound - max(1.0 - self.bound, 1e-6)
        return value <= 2 * self.bound

    def __str__(self) -> str:
        op = {"top1": "=", "cosine": ">=", "max_abs": "<="}[self.metric]
        return f"{self.metric}{op}{self.bound:.10g}"


def parse_budget(text: str) -> Budget:
    """Parse ``--budget``; a malformed one is a ConfigError (exit 2) naming the accepted forms."""
    m = _BUDGET.match(text or "")
    forms = "top1=-1.0 (points vs the reference), cosine>=0.999 or max_abs<=0.001"
    if not m:
        raise ConfigError(f"--budget {text!r}: expected {forms}")
    metric, op, num = m.group(1), m.group(2), float(m.group(3))
    want = {"top1": "=", "cosine": ">=", "max_abs": "<="}[metric]
    if op != want:
        raise ConfigError(f"--budget {text!r}: {metric} takes '{want}' ({forms})")
    if metric == "top1" and num > 0:
        raise ConfigError(f"--budget {text!r}: top1 is the allowed change in points, e.g. top1=-1.0")
    if metric == "cosine" and not -1.0 <= num <= 1.0:
        raise ConfigError(f"--budget {text!r}: cosine must be between -1 and 1")
    if metric == "max_abs" and num < 0:
        raise ConfigError(f"--budget {text!r}: max_abs must be >= 0")
    return Budget(metric, num)


@dataclass
class Candidate:
    """One format × options × threads tried: its score, latency, and why it stopped if it did."""

    format: str
    options: dict[str, Any]
    threads: int
    metric: float | None = None
    p50_ms: float | None = None
    status: str = "pending"  # fits | pruned | over-budget | error
    note: str | None = None
    benchmarked: bool = False
    pareto: bool = False
    calibration: str | None = None  # the option holding its calibration size, when it calibrates

    @property
    def calibration_size(self) -> int | None:
        return int(self.options[self.calibration]) if self.calibration else None

    @property
    def label(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.format}[{opts}]@{self.threads}t" if opts else f"{self.format}@{self.threads}t"


@dataclass
class OptimizeResult:
    """What ``optimize`` tried and chose: every candidate, the Pareto front, the winner's export folder."""

    budget: Budget
    reference_metric: float | None
    eager_p50_ms: float | None
    candidates: list[Candidate] = field(default_factory=list)
    winner: Candidate | None = None
    winner_dir: Path | None = None
    data: dict[str, Any] = field(default_factory=dict)  # DataSplit.describe(): which items calibrated, which scored

    @property
    def pareto(self) -> list[Candidate]:
        return [c for c in self.candidates if c.pareto]

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget": str(self.budget), "reference_metric": self.reference_metric, "eager_p50_ms": self.eager_p50_ms,
            "candidates": [asdict(c) | {"label": c.label} for c in self.candidates],
            "winner": self.winner.label if self.winner else None,
            "winner_dir": str(self.winner_dir) if self.winner_dir else None, "data": self.data,
        }


def pareto_front(cands: Sequence[Candidate], budget: Budget) -> list[Candidate]:
    """Mark and return the measured candidates no other beats on both latency and metric, fastest first."""
    done = [c for c in cands if c.p50_ms is not None and c.metric is not None]
    better = (lambda a, b: a >= b) if budget.metric != "max_abs" else (lambda a, b: a <= b)
    front = []
    for c in done:
        assert c.p50_ms is not None and c.metric is not None
        dominated = any(o is not c and o.p50_ms is not None and o.metric is not None and o.p50_ms <= c.p50_ms
                        and better(o.metric, c.metric) and (o.p50_ms < c.p50_ms or o.metric != c.metric)
                        for o in done)
        c.pareto = not dominated
        if c.pareto:
            front.append(c)
    return sorted(front, key=lambda c: c.p50_ms or 0.0)


def score(outputs: Sequence[np.ndarray], reference: Sequence[np.ndarray], budget: Budget,
          labels: np.ndarray | None) -> float:
    """The budget's metric of ``outputs`` (first output) against labels or the PyTorch ``reference``."""
    out = np.asarray(outputs[0], dtype=np.float64).reshape(len(outputs[0]), -1)
    ref = np.asarray(reference[0], dtype=np.float64).reshape(len(reference[0]), -1)
    if budget.metric == "top1":
        truth = labels[: len(out)] if labels is not None else ref.argmax(1)
        return float((out.argmax(1) == truth).mean() * 100.0)
    if budget.metric == "cosine":
        num = (out * ref).sum(1)
        den = np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1)
        return float(np.min(np.where(den > 0, num / np.maximum(den, 1e-30), 1.0)))
    return float(np.abs(out - ref).max())


def candidate_grid(host: Any, formats: Sequence[str] | None, threads: Sequence[int],
                   calibration_items: int | None = None) -> list[Candidate]:
    """Every available format (or those named) × its options' ``tune`` values × thread counts; an option with
    ``tune_when`` only where it applies, calibration sizes capped at ``calibration_items`` and deduplicated."""
    from modelport.api import formats as list_formats

    ok = {s.name for s in list_formats(host) if s.status == "available" and s.can_export and s.can_validate}
    out = []
    for name, (spec, _plugin) in host.formats.items():
        if name not in ok or (formats and name not in formats):
            continue
        calib = [o.name for o in spec.options if getattr(o, "calibration", False)]
        for opts in _option_combos(spec, calibration_items):
            for t in threads:
                out.append(Candidate(name, opts, t, calibration=next((k for k in calib if k in opts), None)))
    return out


def _option_combos(spec: Any, calibration_items: int | None) -> list[dict[str, Any]]:
    """The tuned option values of one format, options in declared order (earlier ones vary slowest)."""
    combos: list[dict[str, Any]] = [{}]
    for o in spec.options:
        if not o.tune:
            continue
        values = list(o.tune)
        if getattr(o, "calibration", False) and calibration_items is not None:
            values = sorted({min(int(v), calibration_items) for v in values})
        when = getattr(o, "tune_when", None) or {}
        nxt: list[dict[str, Any]] = []
        for combo in combos:
            applies = all(combo.get(k, _default(spec, k)) in allowed for k, allowed in when.items())
            nxt.extend([{**combo, o.name: v} for v in values] if applies else [combo])
        combos = nxt
    return combos


def _default(spec: Any, name: str) -> Any:
    opt = spec.option(name)
    return opt.default if opt is not None else None


@dataclass(frozen=True)
class DataSplit:
    """Which sample items calibrate and which score: items ``[0, calibration)`` calibrate, the rest are held out."""

    items: int
    calibration: int  # leading items exports may calibrate on (0: no candidate calibrates)
    shared: bool = False  # too few items to hold any out: calibrating candidates are scored on their own items
    note: str | None = None

    @property
    def scored(self) -> tuple[int, int]:
        return (0, self.items) if self.shared or not self.calibration else (self.calibration, self.items)

    def describe(self) -> dict[str, Any]:
        a, b = self.scored
        return {"items": self.items, "calibration_items": [0, self.calibration] if self.calibration else None,
                "scored_items": [a, b], "held_out": bool(self.calibration) and not self.shared, "note": self.note}

    def line(self) -> str:
        a, b = self.scored
        if not self.calibration:
            return f"data: no candidate calibrates; items {a}-{b - 1} score"
        if self.shared:
            return f"data: {self.note}"
        return f"data: items 0-{self.calibration - 1} calibrate, items {a}-{b - 1} score (held out)"


def plan_split(items: int, largest: int, requested: int | None = None) -> DataSplit:
    """Hold the first items out for calibration: ``requested`` of them, else up to ``largest`` (the largest size
    tried) but at most half; with fewer than ``2 * MIN_HELD_OUT`` items nothing is held out and the note says so."""
    if requested is not None:
        if requested < 1 or items - requested < MIN_HELD_OUT:
            raise ConfigError(f"{requested} calibration items (--calibration-items) leave {items - requested} of "
                              f"{items} sample items to score; keep at least {MIN_HELD_OUT}")
        return DataSplit(items, requested)
    if largest <= 0:
        return DataSplit(items, 0)
    if items // 2 < MIN_HELD_OUT:
        return DataSplit(items, min(largest, items), shared=True,
                         note=f"only {items} sample items, too few to hold calibration items out (needs "
                              f"{2 * MIN_HELD_OUT}): calibrating candidates are scored on the items they calibrated on")
    return DataSplit(items, min(largest, items // 2))


def _items(samples: Mapping[str, np.ndarray], start: int, stop: int) -> list[dict[str, np.ndarray]]:
    """Batch-1 input sets ``start..stop`` of the sample arrays."""
    n = min(len(a) for a in samples.values())
    return [{k: np.ascontiguousarray(a[i:i + 1]) for k, a in samples.items()} for i in range(start, min(stop, n))]


def _run_all(fn: Callable[[dict[str, np.ndarray]], Sequence[Any]], sets: Sequence[dict[str, np.ndarray]]) -> list[np.ndarray]:
    """First output of ``fn`` over every set, stacked along axis 0."""
    return [np.concatenate([np.asarray(fn(s)[0]) for s in sets], axis=0)]


def _eager(module: Any) -> Callable[[dict[str, np.ndarray]], Sequence[Any]]:
    import torch

    def run(s: dict[str, np.ndarray]) -> Sequence[Any]:
        with torch.inference_mode():
            out = module(**{k: torch.from_numpy(v) for k, v in s.items()})
        out = out[0] if isinstance(out, (tuple, list)) else out
        return [out.float().numpy()]

    return run


@dataclass
class _Job:
    """What every candidate is measured against (kept together so helpers stay short)."""

    resolved: Any
    budget: Budget
    samples: dict[str, np.ndarray]
    labels: np.ndarray | None
    reference: list[np.ndarray]
    reference_metric: float | None
    work: Path
    host: Any
    calib: dict[str, np.ndarray]  # the items exports may calibrate on (never scored unless ``split.shared``)
    split: DataSplit
    bench_seconds: float
    progress: Callable[[str], None]


def _runtime_options(host: Any, c: Candidate) -> dict[str, Any]:
    """The options of ``c`` its format marks ``runtime`` (they change how the file runs, not the file)."""
    spec = host.formats[c.format][0]
    names = {o.name for o in spec.options if getattr(o, "runtime", False)}
    return {k: v for k, v in c.options.items() if k in names}


def _export_once(job: _Job, c: Candidate, index: int, cache: dict[str, Path | str]) -> Path | str:
    """The export folder for ``c``'s file-changing options (an error line if it failed), exported on first need:
    candidates differing only in threads or ``runtime`` options reuse it and just reload the runner."""
    from modelport.api import export

    rt = _runtime_options(job.host, c)
    file_opts = {k: v for k, v in c.options.items() if k not in rt}
    key = repr((c.format, sorted(file_opts.items())))
    if key in cache:
        return cache[key]
    size = c.options.get(c.calibration or "", EXPORT_SAMPLES)
    calib = {k: a[: int(size)] for k, a in job.calib.items()}
    try:
        res = export(job.resolved, [c.format], output_dir=job.work / f"c{index}", options={c.format: file_opts},
                     sample_inputs=calib, host=job.host, threads=c.threads)
    except ModelportError as exc:
        cache[key] = str(exc).splitlines()[0]
        return cache[key]
    r = res[c.format]
    if r.status not in ("passed", "inconclusive", "not-validated", "structure-only", "failed") or r.path is None:
        cache[key] = str(r.error or r.status)
    else:
        cache[key] = Path(r.path) if Path(r.path).is_dir() else Path(r.path).parent
    return cache[key]


def _try(job: _Job, c: Candidate, index: int, cache: dict[str, Path | str]) -> Path | None:
    """Export ``c`` (or reuse its export), score it on a first slice then on all data, time it if it fits."""
    from modelport.commands.bench import time_runner
    from modelport.engine.pipeline import artifact_from_dir, call_hook

    export_dir = _export_once(job, c, index, cache)
    if isinstance(export_dir, str):
        c.status, c.note = "error", export_dir
        return None
    art = artifact_from_dir(export_dir)
    runner = call_hook(job.host, c.format, "load_runner", artifact=art,
                       options={"threads": c.threads, **_runtime_options(job.host, c)})
    sets = _items(job.samples, 0, 10**9)
    first = _run_all(runner, sets[:FIRST_SLICE])
    ref_first = [job.reference[0][: len(first[0])]]
    slice_metric = score(first, ref_first, job.budget, job.labels)
    ref_slice = score(ref_first, ref_first, job.budget, job.labels) if job.budget.metric == "top1" else None
    # cosine / max_abs are worst-case over items, so a failing slice fails the whole set; top1 gets one item slack
    slack = 100.0 / len(first[0]) if job.budget.metric == "top1" else 0.0
    if not job.budget.fits(slice_metric + slack, ref_slice if job.labels is not None else None):
        c.metric, c.status, c.note = slice_metric, "pruned", (
            f"first {len(first[0])} items miss {job.budget} ({job.budget.metric} shown is theirs); not benchmarked")
        return None
    c.metric = score(_run_all(runner, sets), job.reference, job.budget, job.labels)
    if not job.budget.fits(c.metric, job.reference_metric):
        c.status = "over-budget"
        return None
    one = sets[0]
    c.p50_ms = time_runner(lambda: runner(one), max_seconds=job.bench_seconds)["p50_ms"]
    c.benchmarked, c.status = True, "fits"
    return export_dir


def optimize(
    model: Any,
    sample_inputs: Mapping[str, Any],
    budget: Budget | str,
    *,
    output_dir: str | Path,
    labels: Any = None,
    formats: Sequence[str] | None = None,
    threads: Sequence[int] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> OptimizeResult:
    """Export every tunable candidate, keep those within ``budget``, write the fastest to ``output_dir``.

    ``model`` is an ``nn.Module`` (then ``settings["inputs"]`` is its InputSpec) or a reference; ``settings`` may
    hold ``inputs``, ``time_limit`` (seconds), ``calibration`` (how many leading items are held out to calibrate on;
    default: the largest calibration size tried, at most half), ``calibration_search`` (``"all"``: try every size,
    no skipping), ``bench_seconds``, ``host``, ``progress``, ``trust_code``. Raises ConfigError on bad input;
    ``result.winner`` is None when nothing fits.
    """
    import os

    cfg = dict(settings or {})
    b = parse_budget(budget) if isinstance(budget, str) else budget
    job, grid = _prepare(model, sample_inputs, b, labels, cfg, (formats, list(threads or sorted({1, os.cpu_count() or 1}))))
    if not grid:
        raise ConfigError("no installed format declares anything to try here (see `modelport formats`)")
    job.progress(job.split.line())
    result = OptimizeResult(b, job.reference_metric, _eager_p50(job, max(c.threads for c in grid)))
    result.candidates, result.data = grid, job.split.describe()
    deadline = time.monotonic() + float(cfg.get("time_limit") or 1e9)
    dirs: dict[int, Path] = {}
    exported: dict[str, Path | str] = {}
    for i, c in enumerate(result.candidates):
        skip = "time limit reached" if time.monotonic() > deadline else None
        if skip is None and cfg.get("calibration_search") != "all":
            skip = _calibration_skip(job, c, result.candidates[:i])
        if skip is not None:
            c.status, c.note = "skipped", skip
            continue
        job.progress(f"trying {c.label}")
        try:
            d = _try(job, c, i, exported)
        except ModelportError as exc:
            c.status, c.note = "error", str(exc).splitlines()[0]
            d = None
        if d is not None:
            dirs[i] = d
    front = pareto_front(result.candidates, b)
    if front:
        result.winner = front[0]
        idx = result.candidates.index(front[0])
        result.winner_dir = _write_winner(dirs[idx], Path(output_dir), result)
    shutil.rmtree(job.work, ignore_errors=True)
    return result


def _calibration_skip(job: _Job, c: Candidate, earlier: Sequence[Candidate]) -> str | None:
    """Why ``c`` need not be tried (None: try it): a larger calibration size of the same file options is exported
    only when the next smaller size was tried and came close to the budget without fitting — a larger size moves
    only the int8 scales, never the latency, and costs another calibration run."""
    name = c.calibration
    if name is None:
        return None
    size = int(c.options[name])
    rt = _runtime_options(job.host, c)
    same = [e for e in earlier if e.format == c.format and e.calibration == name
            and {k: v for k, v in e.options.items() if k != name and k not in rt}
            == {k: v for k, v in c.options.items() if k != name and k not in rt}]
    smaller = [int(e.options[name]) for e in same if int(e.options[name]) < size]
    if not smaller:
        return None
    prev_size = max(smaller)
    prev = [e for e in same if int(e.options[name]) == prev_size and e.status not in ("pending", "skipped")]
    if not prev:  # the smaller size was skipped too: for the same reason
        return next((e.note for e in same if int(e.options[name]) == prev_size and e.status == "skipped"), None)
    if any(e.status == "fits" for e in prev):
        return f"{name}={prev_size} already fits (a larger size changes int8 scales, not latency)"
    metrics = [e.metric for e in prev if e.metric is not None]
    if not metrics:
        return f"{name}={prev_size} did not export"
    best = max(metrics) if job.budget.metric != "max_abs" else min(metrics)
    if not job.budget.near(best, job.reference_metric):
        return f"{name}={prev_size} missed the budget by more than its margin ({best:.4g})"
    return None


def _prepare(model: Any, sample_inputs: Mapping[str, Any], budget: Budget, labels: Any, cfg: Mapping[str, Any],
             search: tuple[Sequence[str] | None, Sequence[int]]) -> tuple[_Job, list[Candidate]]:
    """Resolve the model, split the data (calibration items first, then the scored ones), build the candidate grid,
    compute PyTorch's outputs and reference metric on the scored items."""
    from modelport.plugins.host import get_plugin_manager

    samples = {k: np.asarray(v) for k, v in sample_inputs.items()}
    if not samples:
        raise ConfigError("--sample-inputs holds no arrays")
    model = _resolve(model, samples, cfg)
    lab = None if labels is None else np.asarray(labels).reshape(-1)
    if budget.metric != "top1" and lab is not None:
        raise ConfigError(f"--labels is only used with a top1 budget, not {budget.metric}")
    n = min(len(a) for a in samples.values())
    if lab is not None and len(lab) < n:
        raise ConfigError(f"--labels has {len(lab)} entries for {n} sample items")
    host = cfg.get("host") or get_plugin_manager()
    uncapped = candidate_grid(host, search[0], search[1])
    sizes = [c.calibration_size for c in uncapped if c.calibration_size is not None]
    requested = cfg.get("calibration")
    split = plan_split(n, max(sizes, default=0), int(requested) if requested is not None else None)
    grid = candidate_grid(host, search[0], search[1], split.calibration or None) if sizes else uncapped
    a, b = split.scored
    scored = {k: v[a:b] for k, v in samples.items()}
    calib = {k: v[: split.calibration or EXPORT_SAMPLES] for k, v in samples.items()}
    lab = lab[a:b] if lab is not None else None
    reference = _run_all(_eager(model.module), _items(scored, 0, b - a))
    ref_metric = score(reference, reference, budget, lab) if budget.metric == "top1" else None
    work = Path(tempfile.mkdtemp(prefix="modelport-optimize-"))
    return _Job(model, budget, scored, lab, reference, ref_metric, work, host, calib, split,
                float(cfg.get("bench_seconds") or 2.0), cfg.get("progress") or (lambda _m: None)), grid


def _resolve(model: Any, samples: Mapping[str, np.ndarray], cfg: Mapping[str, Any]) -> Any:
    """A ResolvedModel from a reference or an ``nn.Module`` (whose InputSpec is ``cfg["inputs"]``)."""
    from modelport.api import resolve
    from modelport.models.sources import ResolvedModel

    if isinstance(model, str):
        model = resolve(model, trust_code=bool(cfg.get("trust_code")))
        if cfg.get("inputs") is not None:
            model.inputs = cfg["inputs"]
        elif model.inputs is None:
            from modelport.engine.inputs import spec_from_samples

            model.inputs = spec_from_samples(samples, batch=1)
    elif not isinstance(model, ResolvedModel):
        if cfg.get("inputs") is None:
            raise ConfigError("inputs are required for an nn.Module: pass settings={'inputs': modelport.vision(...)}")
        model = ResolvedModel(module=model.eval(), inputs=cfg["inputs"], source={"reference": "python object"})
    return model


def _eager_p50(job: _Job, threads: int) -> float:
    """PyTorch eager latency at batch 1 with ``threads`` threads (the baseline in the table)."""
    import torch

    from modelport.commands.bench import time_runner

    run, one = _eager(job.resolved.module), _items(job.samples, 0, 1)[0]
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return float(time_runner(lambda: run(one), max_seconds=job.bench_seconds)["p50_ms"])
    finally:
        torch.set_num_threads(old)


def _write_winner(src: Path, dest: Path, result: OptimizeResult) -> Path:
    """Copy the winner's export folder to ``dest`` and record in its export.json how it was chosen (re-sealed)."""
    from modelport.commands.bench import machine_info
    from modelport.folder.exportdir import read_record, write_record

    if dest.exists() and any(dest.iterdir()):
        raise ConfigError(f"{dest}: not empty; choose another --output-dir")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.rmdir()
    shutil.copytree(src, dest)
    record = read_record(dest)
    assert result.winner is not None
    record["optimize"] = result.to_dict() | {"winner_dir": None, "machine": machine_info(result.winner.threads)}
    record["optimize"]["winner_options"] = {"options": result.winner.options, "threads": result.winner.threads}
    size = result.winner.calibration_size
    record["optimize"]["calibration"] = (  # what the winner calibrated on; None: it does not calibrate
        {"option": result.winner.calibration, "size": size, "items": [0, size]} if size is not None else None)
    # the folder may have been exported with other runtime-only values: record the winner's, so validate and bench
    # load it the way it was measured (metadata.json's export_config says the same; the seal covers both)
    record["options"] = {**(record.get("options") or {}), **result.winner.options}
    _record_options_in_metadata(dest, result.winner.options)
    write_record(dest, record)  # re-sealed: the record changed
    return dest


def _record_options_in_metadata(dest: Path, options: Mapping[str, Any]) -> None:
    """metadata.json's ``export_config`` with the winner's option values (before the record is re-sealed)."""
    import json

    from modelport.folder.exportdir import METADATA_FILE
    from modelport.folder.store import write_json_atomic

    path = dest / METADATA_FILE
    if not options or not path.is_file():
        return
    md = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(md.get("export_config"), dict):
        md["export_config"].update(options)
        write_json_atomic(path, md)


def print_result(console: Any, result: OptimizeResult) -> None:
    """The candidates as a table (latency vs metric, Pareto front marked), then the winner or why none."""
    from modelport.terminal.render import Notes, new_table, print_lines, styled

    t = new_table(f"optimize: budget {result.budget}")
    for col, just in (("candidate", "left"), ("status", "left"), (result.budget.metric, "right"),
                      ("p50 ms", "right"), ("vs eager", "right"), ("pareto", "left"), ("note", "left")):
        # a label folds onto more lines rather than losing the options that tell candidates apart (80 columns)
        t.add_column(col, justify=just, overflow="fold" if col == "candidate" else "ellipsis")
    notes = Notes()  # why a candidate was pruned, skipped or failed: each distinct reason once, under the table
    for c in sorted(result.candidates, key=lambda c: (c.p50_ms is None, c.p50_ms or 0.0)):
        speed = f"{result.eager_p50_ms / c.p50_ms:.1f}x" if c.p50_ms and result.eager_p50_ms else ""
        t.add_row(styled(c.label), styled(c.status), f"{c.metric:.6g}" if c.metric is not None else "",
                  f"{c.p50_ms:.3f}" if c.p50_ms else "", speed, "*" if c.pareto else "", notes.ref(c.note))
    console.print(t)
    print_lines(console, notes.lines())
    ref = f", PyTorch top1 {result.reference_metric:.2f}" if result.reference_metric is not None else ""
    console.print(f"eager PyTorch p50 {result.eager_p50_ms or 0:.3f} ms{ref}", markup=False, highlight=False)
    if result.data:
        console.print(_data_line(result.data), markup=False, highlight=False)
    if result.winner is not None:
        console.print(f"winner: {result.winner.label} -> {result.winner_dir}", markup=False, highlight=False)


def _data_line(data: Mapping[str, Any]) -> str:
    """One line saying which sample items calibrated and which scored (from ``DataSplit.describe()``)."""
    return DataSplit(int(data["items"]), int((data.get("calibration_items") or [0, 0])[1]),
                     not data.get("held_out") and bool(data.get("calibration_items")), data.get("note")).line()


def plot_result(result: OptimizeResult, path: Path) -> Path:
    """Latency vs metric scatter, the Pareto front joined, saved to ``path`` (matplotlib: modelport[plot])."""
    from modelport.commands.bench import check_plot_dependencies

    check_plot_dependencies()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [c for c in result.candidates if c.p50_ms is not None and c.metric is not None]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter([c.p50_ms or 0.0 for c in done], [c.metric or 0.0 for c in done], color="tab:gray")
    front = sorted(result.pareto, key=lambda c: c.p50_ms or 0.0)
    ax.plot([c.p50_ms or 0.0 for c in front], [c.metric or 0.0 for c in front], "o-", color="tab:blue",
            label="Pareto front")
    for c in done:
        ax.annotate(c.label, (c.p50_ms, c.metric), fontsize=7)
    if result.eager_p50_ms:
        ax.axvline(result.eager_p50_ms, color="tab:red", linestyle="--", label="eager PyTorch")
    ax.set_xlabel("p50 latency at batch 1 (ms)")
    ax.set_ylabel(result.budget.metric)
    ax.set_title(f"modelport optimize, budget {result.budget}")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def cli_run(model: str, sample_inputs: str, budget: str, **kw: Any) -> OptimizeResult:
    """``modelport optimize``: check every argument before loading anything, then :func:`optimize`."""
    from modelport.engine.input_flags import build_input_spec
    from modelport.engine.inputs import load_sample_inputs
    from modelport.engine.limits import check_run_settings

    b = parse_budget(budget)
    out = Path(kw["output_dir"])
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--output-dir {out}: exists and is not an empty folder")
    threads = None
    if kw.get("threads"):
        try:
            threads = [int(t) for t in str(kw["threads"]).split(",")]
        except ValueError:
            raise ConfigError(f"--threads {kw['threads']!r}: expected N[,N...]") from None
        for t in threads:
            check_run_settings(threads=t)
    if kw.get("time_limit") is not None and kw["time_limit"] <= 0:
        raise ConfigError("--time-limit must be a positive number of seconds")
    labels = _load_labels(kw.get("labels"))
    samples = load_sample_inputs(sample_inputs)
    spec = None
    if kw.get("inputs") or kw.get("vision"):
        spec = build_input_spec(inputs=kw.get("inputs") or (), vision=kw.get("vision"), text=None, batch=1,
                                dynamic=(), dynamic_batch=False, sample_arrays=samples, model_ref=model, config={})
    settings = {"inputs": spec, "time_limit": kw.get("time_limit"), "trust_code": kw.get("trust_code"),
                "progress": kw.get("progress")}
    if kw.get("calibration_items") is not None:
        plan_split(min(len(a) for a in samples.values()), 0, kw["calibration_items"])  # before the model loads
        settings["calibration"] = kw["calibration_items"]
    if kw.get("every_calibration_size"):
        settings["calibration_search"] = "all"
    return optimize(model, samples, b, output_dir=out, labels=labels, formats=kw.get("formats") or None,
                    threads=threads, settings=settings)


def _load_labels(path: str | None) -> np.ndarray | None:
    if not path:
        return None
    try:
        return np.asarray(np.load(path, allow_pickle=False)).reshape(-1).astype(np.int64)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--labels {path}: cannot be read as a .npy of integers ({exc})") from None

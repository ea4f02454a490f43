"""``modelport debug``: when an artifact disagrees with PyTorch, name the module where the disagreement starts.

The recorded inputs run through PyTorch with forward hooks on every module and through the artifact with the
matching intermediate tensors exposed (a format opts in through the ``load_intermediates`` hook; the plugin only
exposes tensors, the algorithm lives here). The tensors are compared pairwise in execution order with the
validation's precision-aware tolerance, and the report names the first module over tolerance and where the error
grows fastest.

Large models never expose every tensor at once: each round exposes at most ``max_probes`` module boundaries,
finds the first failing one, and descends into it (or, among many siblings, bisects between the last passing and
the first failing boundary). The peak memory of the process and the bytes held by exposed tensors are reported.
"""

from __future__ import annotations

import math
import sys
import time
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport.engine.compare import Tolerance, compare_outputs, profile_for
from modelport.errors import ConfigError
from modelport.plugins.types import GraphNode
from modelport.terminal.strings import human_size

DEFAULT_MAX_PROBES = 64
ROOT = ""


# ----------------------------------------------------------------------------- records


@dataclass
class ModuleCall:
    """One module as PyTorch ran it: path, class, depth, order of completion, output shape, call count."""

    module: str
    cls: str
    order: int
    shape: list[int] | None
    calls: int = 1

    @property
    def depth(self) -> int:
        return 0 if self.module == ROOT else self.module.count(".") + 1


@dataclass
class ModuleRow:
    """One row of the debug table: a PyTorch module and how the artifact's tensor there compares."""

    module: str
    cls: str
    depth: int
    order: int
    shape: list[int] | None
    status: str  # ok | over tolerance | not compared | not exposed | not probed
    tensor: str | None = None
    max_abs_diff: float | None = None
    rel_error: float | None = None
    cosine: float | None = None
    note: str | None = None
    first_over_tolerance: bool = False
    fastest_growth: bool = False


@dataclass
class DebugReport:
    """What ``modelport debug`` found, table included; ``to_dict()`` is the ``--json`` output."""

    export_dir: str
    format: str
    precision: str
    mode: str
    rule: str
    runtime: str | None
    rows: list[ModuleRow] = field(default_factory=list)
    first_over_tolerance: str | None = None
    fastest_growth: str | None = None
    named_module: str | None = None
    rounds: int = 0
    max_probes: int = DEFAULT_MAX_PROBES
    exposed_total: int = 0
    modules_total: int = 0
    probe_bytes_max: int = 0
    peak_rss_bytes: int = 0
    seconds: float = 0.0
    input_set: int = 0
    validation: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """2 when a module is over tolerance (the artifact disagrees), 0 when every exposed tensor agrees."""
        return 2 if self.first_over_tolerance is not None or self.named_module is not None else 0

    def summary(self) -> str:
        if self.named_module is None:
            return (f"{self.format}: every exposed module agrees with PyTorch within {self.rule} "
                    f"({self.exposed_total} of {self.modules_total} modules exposed)")
        row = next((r for r in self.rows if r.module == self.named_module), None)
        where = f"{self.named_module or '(model)'}" + (f" ({row.cls})" if row else "")
        text = f"{self.format}: the disagreement starts in {where}"
        if row and row.max_abs_diff is not None:
            text += f": max abs diff {_num(row.max_abs_diff)}, cosine {_num(row.cosine, 6)}"
        if row and row.note:
            text += f" — {row.note}"
        return text

    def to_dict(self) -> dict[str, Any]:
        from modelport.plugins.types import to_jsonable

        out = to_jsonable(self)
        out["exit_code"] = self.exit_code
        out["summary"] = self.summary()
        return _finite(out)


def _finite(obj: Any) -> Any:
    """JSON has no inf/nan: write them as strings."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _num(v: float | None, digits: int = 3) -> str:
    if v is None:
        return ""
    if not math.isfinite(v):
        return str(v)
    return f"{v:.{digits}f}" if digits > 3 else f"{v:.{digits}g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


# ----------------------------------------------------------------------------- mapping graphs to modules


def _ancestors(path: str) -> list[str]:
    """``a.b.c`` → ``["a", "a.b", "a.b.c"]`` (the model itself, ``""``, is not a boundary)."""
    if not path:
        return []
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def module_boundaries(nodes: Sequence[GraphNode], graph_outputs: Sequence[str] = ()) -> dict[str, str]:
    """Each module's output tensor in a graph whose nodes carry module paths (nodes in topological order).

    A module's output is the last tensor produced by one of its nodes (or its submodules' nodes) that is read
    outside the module or is a graph output. Modules with no node of their own (``nn.Identity``, a dropout
    removed at export) get no entry. Used by the ONNX and OpenVINO plugins; any graph format can use it.
    """
    within: list[set[str]] = [set(_ancestors(n.module)) if n.module else set() for n in nodes]
    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for t in n.inputs:
            if t:
                consumers.setdefault(t, []).append(i)
    outs = set(graph_outputs)
    result: dict[str, str] = {}
    for i, n in enumerate(nodes):
        if not within[i]:
            continue
        for t in n.outputs:
            if not t:
                continue
            readers = consumers.get(t, [])
            for mod in within[i]:
                if t in outs or any(mod not in within[j] for j in readers):
                    result[mod] = t  # later nodes overwrite: the last escaping tensor wins
    return result


WRAPPER_PREFIXES = ("model.",)


def align_paths(taps: Mapping[str, str], known: set[str]) -> dict[str, str]:
    """Model path → artifact path when the artifact was exported through a wrapper (``model.blocks.0``).

    modelport exports a model whose inputs need binding by name through a wrapper module holding it as ``model``
    (see :mod:`modelport.engine.binding`), so the artifact's module paths carry that prefix. Returns {} when the paths
    already match.
    """
    direct = sum(1 for m in taps if m in known)
    best: dict[str, str] = {}
    for prefix in WRAPPER_PREFIXES:
        mapped = {m[len(prefix):]: m for m in taps if m.startswith(prefix) and m[len(prefix):] in known}
        if len(mapped) > max(direct, len(best)):
            best = mapped
    return best


# ----------------------------------------------------------------------------- PyTorch side


def first_tensor(value: Any) -> Any:
    """The first tensor in a module's output (a tensor, tuple, dict or ModelOutput) — what ``debug`` compares."""
    import torch

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, Mapping):
        value = list(value.values())
    elif hasattr(value, "to_tuple"):
        value = value.to_tuple()
    if isinstance(value, (list, tuple)):
        for v in value:
            t = first_tensor(v)
            if t is not None:
                return t
    return None


def _clone(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, tuple):
        return tuple(_clone(v) for v in value)
    if isinstance(value, list):
        return [_clone(v) for v in value]
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return value


@dataclass
class TorchRun:
    """A PyTorch forward with hooks: every module's call in completion order, and the tensors that were asked for."""

    calls: list[ModuleCall]
    outputs: dict[str, Any]
    inputs: dict[str, tuple[tuple[Any, ...], dict[str, Any]]]
    held_bytes: int


def run_torch(model: Any, args: tuple[Any, ...], keep: set[str] | None = None,
              keep_inputs: set[str] | None = None, call: Callable[[], Any] | None = None) -> TorchRun:
    """Run ``model(*args)`` (or ``call()``) with a forward hook on every module; keep outputs (and inputs) of ``keep``.

    Only the first call of a module is kept (a shared module called twice is counted, and said so). ``call`` runs
    the model with its inputs bound by name, as the export's reference run did.
    """
    import torch

    from modelport.engine.outputs import to_numpy

    keep = keep or set()
    keep_inputs = keep_inputs or set()
    calls: dict[str, ModuleCall] = {}
    outputs: dict[str, Any] = {}
    inputs: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
    held = [0]
    handles = []

    def pre(name: str) -> Any:
        def hook(_mod: Any, a: tuple[Any, ...], kw: dict[str, Any]) -> None:
            if name in keep_inputs and name not in inputs:
                inputs[name] = (_clone(a), _clone(kw))
        return hook

    def post(name: str) -> Any:
        def hook(mod: Any, _a: Any, out: Any) -> None:
            if name in calls:
                calls[name].calls += 1
                return
            t = first_tensor(out)
            calls[name] = ModuleCall(name, type(mod).__name__, len(calls), list(t.shape) if t is not None else None)
            if name in keep and t is not None:
                arr = to_numpy(t).copy()
                held[0] += arr.nbytes
                outputs[name] = arr
        return hook

    for name, mod in model.named_modules():
        if name == ROOT:
            continue
        if name in keep_inputs:
            handles.append(mod.register_forward_pre_hook(pre(name), with_kwargs=True))
        handles.append(mod.register_forward_hook(post(name)))
    try:
        with torch.no_grad():
            call() if call is not None else model(*args)
    finally:
        for h in handles:
            h.remove()
    return TorchRun(sorted(calls.values(), key=lambda c: c.order), outputs, inputs, held[0])


# ----------------------------------------------------------------------------- comparison


def compare_tensor(module: str, ref: Any, act: Any, tol: Tolerance, precision: str) -> tuple[str, dict[str, Any]]:
    """Compare one module's tensors with the validation rule; returns (status, fields for the row)."""
    import numpy as np

    r = np.asarray(ref)
    a = np.asarray(act)
    if a.shape != r.shape:
        if a.size == r.size or (a.ndim == r.ndim + 1 and a.shape[0] == 1 and a.size == r.size):
            a = a.reshape(r.shape)
        else:
            return "not compared", {"note": f"artifact tensor shape {list(a.shape)} != PyTorch {list(r.shape)}"}
    if r.dtype.kind not in "fc" and a.dtype.kind not in "fc":
        same = bool(np.array_equal(r, a))
        return ("ok" if same else "over tolerance"), {"max_abs_diff": 0.0 if same else float(np.max(np.abs(
            r.astype(np.float64) - a.astype(np.float64)))), "cosine": 1.0 if same else None}
    r64 = r.astype(np.float64)
    a64 = a.astype(np.float64)
    # hidden activations are not unit-scaled like outputs: the absolute tolerance scales with the tensor's RMS
    # (when above 1), so 1e5-sized activations are held to the same relative standard as unit-sized ones
    finite_r = r64[np.isfinite(r64)]
    scale = max(1.0, float(np.sqrt(np.mean(finite_r ** 2)))) if finite_r.size else 1.0
    comp = compare_outputs([[r64 / scale]], [[a64 / scale]], [module], tol, precision)
    o = comp.outputs[0]
    o.max_abs_diff *= scale
    finite = np.isfinite(r64) & np.isfinite(a64)
    norm = float(np.linalg.norm(r64[finite])) if finite.any() else 0.0
    rel = float(np.linalg.norm((a64 - r64)[finite]) / norm) if norm > 0 else (0.0 if o.max_abs_diff == 0 else math.inf)
    fields: dict[str, Any] = {"max_abs_diff": o.max_abs_diff, "cosine": o.cosine, "rel_error": rel}
    if o.problem:
        bad = int(np.sum(~np.isfinite(a64) & np.isfinite(r64)))
        fields["note"] = (f"{bad} non-finite value(s) where PyTorch has finite ones (largest |PyTorch| value "
                          f"{float(np.max(np.abs(r64[np.isfinite(r64)]), initial=0.0)):.4g})") if bad else o.problem
        finite_a = a64[np.isfinite(a64) & np.isfinite(r64)]
        fields["max_abs_diff"] = math.inf if bad else fields["max_abs_diff"]
        fields["cosine"] = _cos(finite_a, r64[np.isfinite(a64) & np.isfinite(r64)]) if finite_a.size else 0.0
        return "over tolerance", fields
    return ("ok" if o.passed else "over tolerance"), fields


def _cos(a: Any, b: Any) -> float | None:
    from modelport.engine.compare import cosine_similarity

    return cosine_similarity(a, b)


# ----------------------------------------------------------------------------- the search


@dataclass
class _Search:
    """State shared by the probing rounds."""

    model: Any
    args: tuple[Any, ...]
    feed: dict[str, Any]
    runner: Any
    tol: Tolerance
    precision: str
    calls: dict[str, ModuleCall]
    call: Callable[[], Any] | None = None
    alias: dict[str, str] = field(default_factory=dict)  # model's module path → the artifact's, when they differ
    rows: dict[str, ModuleRow] = field(default_factory=dict)
    rounds: int = 0
    probe_bytes_max: int = 0

    def probe(self, modules: Sequence[str]) -> dict[str, ModuleRow]:
        """One round: PyTorch and the artifact with exactly ``modules`` exposed; rows for each."""
        todo = [m for m in modules if m not in self.rows]
        if todo:
            per_module = getattr(self.runner, "mode", "end-to-end") == "per-module"
            torch_run = run_torch(self.model, self.args, keep=set(todo), keep_inputs=set(todo) if per_module else None,
                                  call=self.call)
            alias = self.alias
            inputs = {alias.get(m, m): v for m, v in torch_run.inputs.items()} if per_module else None
            raw = self.runner.run(self.feed, [alias.get(m, m) for m in todo], inputs)
            got = {m: raw[alias.get(m, m)] for m in todo if alias.get(m, m) in raw}
            held = torch_run.held_bytes + sum(getattr(v, "nbytes", 0) for v in got.values())
            self.probe_bytes_max = max(self.probe_bytes_max, held)
            self.rounds += 1
            for m in todo:
                call = self.calls[m]
                row = ModuleRow(m, call.cls, call.depth, call.order, call.shape, "not compared",
                                tensor=self.runner.taps.get(self.alias.get(m, m)))
                if call.calls > 1:
                    row.note = f"called {call.calls} times; the first call is compared"
                ref = torch_run.outputs.get(m)
                if ref is None:
                    row.note = "the module returned no tensor"
                elif m not in got:
                    why = (getattr(self.runner, "unavailable", None) or {}).get(self.alias.get(m, m))
                    row.note = why or "the artifact returned no tensor for it"
                else:
                    status, fields = compare_tensor(m, ref, got[m], self.tol, self.precision)
                    row.status = status
                    note = fields.pop("note", None)
                    for k, v in fields.items():
                        setattr(row, k, v)
                    if note:
                        row.note = f"{note}; {row.note}" if row.note else note
                self.rows[m] = row
                del ref
            del got, torch_run
        return {m: self.rows[m] for m in modules}


def _units(scope: str, exposable: Sequence[str]) -> list[str]:
    """The exposable modules directly under ``scope``: no exposable module between them and ``scope``."""
    inside = [m for m in exposable if scope == ROOT or m.startswith(scope + ".")]
    inside_set = set(inside)
    out = []
    for m in inside:
        between = [a for a in _ancestors(m)[:-1] if a in inside_set and (scope == ROOT or a.startswith(scope + "."))]
        if not between:
            out.append(m)
    return out


def _spaced(lo: int, hi: int, k: int) -> list[int]:
    """``k`` indices evenly spread over ``[lo, hi)``, always including ``hi - 1``."""
    n = hi - lo
    return sorted({lo + (i + 1) * n // k - 1 for i in range(k)} | {hi - 1})


def _first_failing(rows: Mapping[str, ModuleRow], order: Sequence[str]) -> str | None:
    return next((m for m in order if rows[m].status == "over tolerance"), None)


def search(s: _Search, exposable: list[str], max_probes: int) -> str | None:
    """Descend from the model to the first failing module: bounded rounds, bisection among many siblings."""
    if len(exposable) <= max_probes:
        rows = s.probe(exposable)
        first = _first_failing(rows, exposable)
        if first is None:
            return None
        # the first failing module in completion order is a leaf of the failure: no failing child came before it
        return first
    scope = ROOT
    named: str | None = None
    while True:
        cands = _units(scope, exposable)
        if not cands:
            return named
        lo, hi = 0, len(cands)
        while hi - lo > max_probes:
            idx = _spaced(lo, hi, max_probes)
            rows = s.probe([cands[i] for i in idx])
            fail = next((i for i in idx if rows[cands[i]].status == "over tolerance"), None)
            if fail is None:
                lo = hi
                break
            passed = [i for i in idx if i < fail]
            lo, hi = (passed[-1] + 1 if passed else lo), fail + 1
        if lo >= hi:
            return named
        window = cands[lo:hi]
        rows = s.probe(window)
        first = _first_failing(rows, window)
        if first is None:
            return named  # scope fails but no exposed child does: the error is in scope's own operations
        named = first
        scope = first


# ----------------------------------------------------------------------------- entry point


def _peak_rss_bytes() -> int:
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)
    except (ImportError, OSError):  # pragma: no cover - not on Windows
        return 0


def model_from_record(record: Mapping[str, Any], trust_code: bool) -> Any:
    """Rebuild the PyTorch model from the export's recorded source — only with ``trust_code``.

    The record is a file modelport did not write in this run, so the factory or file it names is untrusted code.
    """
    from modelport.models.loading import load_model

    source = record.get("source") or {}
    ref = source.get("reference") if isinstance(source, Mapping) else None
    if not ref or ref == "python object":
        raise ConfigError("the export's record names no model source (it was exported from a Python object); "
                          "pass the model: --model REF, or modelport.debug(..., model=module)")
    if not trust_code:
        raise ConfigError(f"the PyTorch side needs the model, and the record names {ref!r}: loading it runs code "
                          "from a record modelport did not write in this run; pass --trust-code to allow it, or give "
                          "the model with --model REF")
    ckpt = source.get("checkpoint")
    if isinstance(ckpt, Mapping):
        ckpt = ckpt.get("path")
    module, _facts = load_model(str(ref), model_kwargs=source.get("model_kwargs") or None,
                                checkpoint=str(ckpt) if ckpt else None, trust_pickle=True)
    return module


# nine parameters: these keywords are the documented API of modelport.debug() (api.py) and `modelport debug`
def debug_export(export_dir: str | Path, model: Any = None, *, trust_code: bool = False, atol: float | None = None,
                 rtol: float | None = None, max_probes: int = DEFAULT_MAX_PROBES, input_set: int | None = None,
                 threads: int | None = None, host: Any = None) -> DebugReport:
    """Find the first module where the artifact in ``export_dir`` disagrees with the PyTorch ``model``.

    ``model`` is an ``nn.Module``; when None it is rebuilt from the record's source, which needs ``trust_code``.
    ``input_set`` picks one of the recorded input sets; by default the one whose outputs the artifact gets most
    wrong (a traced branch may agree on the example input and disagree on another).
    """
    from modelport.engine.inputs import InputSpec
    from modelport.engine.pipeline import load_reference
    from modelport.folder.exportdir import open_export

    t0 = time.perf_counter()
    if max_probes < 2:
        raise ConfigError("--max-probes must be at least 2")
    # files checked against their sha256, and the trust rules applied before the artifact is ever loaded
    opened = open_export(export_dir, host=host, trust_code=trust_code)
    export_dir, record, host, artifact = opened.export_dir, opened.record, opened.host, opened.artifact
    fmt = artifact.format
    model = _debug_model(model, record, trust_code, threads)
    spec = InputSpec.from_dict(record["inputs"])
    names = list(record.get("outputs") or [])
    ref = load_reference(opened.folder.reference_path, spec.names, len(names))
    artifact.options.setdefault("threads", threads)
    notes: list[str] = []
    input_set = _pick_input_set(host, artifact, ref, names, threads, input_set, notes)
    feed = dict(ref.inputs[input_set])
    args = spec.to_torch(feed)
    call = _bound_call(model, spec, args)
    # the order every module runs in, and whether this model reproduces the recorded reference
    first = run_torch(model, args, call=call)
    calls = {c.module: c for c in first.calls}
    _note_if_not_reproduced(call, ref.outputs[input_set], names, notes)
    runner = _intermediates_runner(host, artifact, model, first.calls, threads)
    alias, taps, unavailable = _runner_taps(runner, calls)
    exposable = [c.module for c in first.calls if c.module in taps]
    tol = profile_for(artifact.precision, atol, rtol)
    s = _Search(model, args, feed, runner, tol, artifact.precision, calls, call, alias)
    named = search(s, exposable, max_probes)
    rows, first_bad, growth = _debug_rows(s, first.calls, taps, unavailable)
    validation = record.get("validation") or {}
    report = DebugReport(
        export_dir=str(export_dir), format=fmt, precision=artifact.precision,
        mode=str(getattr(runner, "mode", "end-to-end")), rule=tol.rule(), runtime=getattr(runner, "runtime", None),
        rows=rows, first_over_tolerance=first_bad.module if first_bad else None,
        fastest_growth=growth.module if growth else None, named_module=named, rounds=s.rounds, max_probes=max_probes,
        exposed_total=len(exposable), modules_total=len(first.calls), probe_bytes_max=s.probe_bytes_max,
        peak_rss_bytes=_peak_rss_bytes(), seconds=round(time.perf_counter() - t0, 3), input_set=input_set,
        validation={k: validation.get(k) for k in ("status", "max_abs_diff", "min_cosine", "reason")},
        notes=notes + list(getattr(runner, "notes", []) or []),
    )
    if not exposable:
        report.notes.append(f"{fmt}: the artifact exposes no module boundary"
                            + (f" ({next(iter(unavailable.values()))})" if unavailable else ""))
    return report


def _bound_call(model: Any, spec: Any, args: Sequence[Any]) -> Callable[[], Any]:
    """A no-argument call of ``model`` on ``args``; inputs reach forward by name, as in the export's reference run."""
    from modelport.engine.binding import plan_binding

    _spec, binding = plan_binding(model, spec)

    def call() -> Any:
        return binding.call(model, dict(zip(spec.names, args, strict=True)))

    return call


def _debug_model(model: Any, record: dict[str, Any], trust_code: bool, threads: int | None) -> Any:
    """The PyTorch model to compare against: the one given, a path loaded, or the record's source; in eval mode."""
    from modelport.models.loading import set_eval

    if model is None:
        model = model_from_record(record, trust_code)
    if isinstance(model, (str, Path)):
        from modelport.models.loading import load_model

        model, _ = load_model(str(model), trust_code=trust_code)
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    set_eval(model)
    if threads:
        torch.set_num_threads(threads)
    return model


def _pick_input_set(host: Any, artifact: Any, ref: Any, names: Sequence[str], threads: int | None,
                    input_set: int | None, notes: list[str]) -> int:
    """``--input-set``, checked against the recorded sets, or the set the artifact gets most wrong (noted why)."""
    if input_set is None:
        input_set, why = worst_input_set(host, artifact, ref, names, threads)
        if why:
            notes.append(why)
    if not 0 <= input_set < len(ref.inputs):
        raise ConfigError(f"--input-set {input_set}: the export recorded {len(ref.inputs)} input set(s)")
    return input_set


def _note_if_not_reproduced(call: Any, recorded: Any, names: Sequence[str], notes: list[str]) -> None:
    """Note when the model given does not reproduce the recorded outputs: its modules would be blamed wrongly."""
    import torch

    from modelport.engine.outputs import flatten_outputs, to_numpy

    with torch.no_grad():
        got = [to_numpy(t) for _, t in flatten_outputs(call())]
    fp32 = profile_for("fp32")
    same = compare_outputs([recorded], [got], list(names) or [f"output_{j}" for j in range(len(got))], fp32)
    if not same.passed:
        notes.append("the PyTorch model given does not reproduce the outputs recorded at export "
                     f"({'; '.join(same.failures)}): is it the model that was exported, with the same weights?")


def _intermediates_runner(host: Any, artifact: Any, model: Any, calls: Sequence[Any], threads: int | None) -> Any:
    """The format plugin's runner that exposes module outputs; exit 3 when the format cannot expose any."""
    from modelport.engine.pipeline import call_hook

    options = {"threads": threads, "model": model, "modules": {c.module: c.cls for c in calls}}
    runner = call_hook(host, artifact.format, "load_intermediates", artifact=artifact, options=options)
    if runner is None:
        fmt = artifact.format
        raise ConfigError(f"{fmt}: no installed plugin can expose intermediate tensors of {fmt} artifacts "
                          "(the format does not implement the load_intermediates hook)")
    return runner


def _runner_taps(runner: Any, calls: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """The runner's tensors and the reasons it lacks some, keyed by the model's module paths (aliases resolved)."""
    alias = align_paths(dict(getattr(runner, "taps", {}) or {}), set(calls))
    inverse = {v: k for k, v in alias.items()}
    taps = {inverse.get(m, m): t for m, t in (getattr(runner, "taps", {}) or {}).items()}
    unavailable = {inverse.get(m, m): why for m, why in (getattr(runner, "unavailable", {}) or {}).items()}
    return alias, taps, unavailable


def _debug_rows(s: _Search, calls: Sequence[Any], taps: dict[str, Any],
                unavailable: dict[str, str]) -> tuple[list[ModuleRow], ModuleRow | None, ModuleRow | None]:
    """Every module's row in run order (compared, not exposed or not probed), with the first bad and fastest growth marked."""
    rows = list(s.rows.values())
    compared = set(s.rows)
    for c in calls:
        if c.module in compared:
            continue
        if c.module not in taps:
            why = unavailable.get(c.module) or "the artifact has no tensor for this module's output"
            rows.append(ModuleRow(c.module, c.cls, c.depth, c.order, c.shape, "not exposed", note=why))
        else:
            rows.append(ModuleRow(c.module, c.cls, c.depth, c.order, c.shape, "not probed", tensor=taps[c.module],
                                  note="the search did not need it (an enclosing or earlier boundary decided)"))
    rows.sort(key=lambda r: r.order)
    first_bad = next((r for r in rows if r.status == "over tolerance"), None)
    if first_bad is not None:
        first_bad.first_over_tolerance = True
    growth = _fastest_growth(rows) if first_bad is not None else None
    if growth is not None:
        growth.fastest_growth = True
    return rows, first_bad, growth


def worst_input_set(host: Any, artifact: Any, ref: Any, names: Sequence[str], threads: int | None) -> tuple[int, str | None]:
    """The recorded input set whose outputs the artifact gets most wrong (its plain runner, loaded once)."""
    from modelport.engine.pipeline import call_hook

    if len(ref.inputs) == 1:
        return 0, None
    try:
        runner = call_hook(host, artifact.format, "load_runner", artifact=artifact, options={"threads": threads})
    except ConfigError:  # the artifact cannot run whole here (Core ML off macOS): the intermediates say why
        return 0, None
    if runner is None:
        return 0, None
    tol = profile_for(artifact.precision)
    worst, score, failing = 0, -1.0, False
    for i, (inp, expected) in enumerate(zip(ref.inputs, ref.outputs, strict=True)):
        try:
            got = list(runner(dict(inp)))
        except Exception:
            continue
        comp = compare_outputs([expected], [got], list(names) or [f"output_{j}" for j in range(len(got))], tol)
        bad = sum(0 if o.passed else 1 for o in comp.outputs)
        cosines = [1.0 if o.cosine is None else o.cosine for o in comp.outputs]  # None: both all-zero
        value = bad * 1e9 + (1.0 - min(cosines)) if cosines else 0.0
        if value > score:
            worst, score, failing = i, value, bad > 0
    del runner
    why = (f"input set {worst} of {len(ref.inputs)} is the one the artifact gets most wrong; debugging on it"
           if worst and failing else None)
    return worst, why


def _fastest_growth(rows: Sequence[ModuleRow]) -> ModuleRow | None:
    """The compared module whose relative error rose most over the compared module before it (execution order)."""
    prev: float | None = None
    best: ModuleRow | None = None
    best_ratio = 1.0
    for r in rows:
        if r.rel_error is None:
            continue
        cur = r.rel_error
        if prev is not None and cur > prev:
            ratio = math.inf if not math.isfinite(cur) else (cur + 1e-12) / (prev + 1e-12)
            if ratio > best_ratio:
                best, best_ratio = r, ratio
        if math.isfinite(cur):
            prev = cur
    return best


# ----------------------------------------------------------------------------- output


def render_table(report: DebugReport, *, all_rows: bool = True) -> Any:
    """A rich table: module, class, shape, max abs diff, cosine, status; first over tolerance and growth marked."""
    from rich.table import Table

    title = (f"{report.format} ({report.precision}, {report.mode}) vs PyTorch — rule {report.rule}; "
             f"{report.exposed_total}/{report.modules_total} modules exposed, {report.rounds} round(s)")
    table = Table(title=title, title_justify="left")
    for col in ("#", "module", "class", "shape", "max abs diff", "rel err", "cosine", "status", "note"):
        table.add_column(col)
    for r in report.rows:
        if not all_rows and r.status in ("not exposed", "not probed"):
            continue
        mark = ""
        style = {"ok": "green", "over tolerance": "red"}.get(r.status, "dim")
        if r.first_over_tolerance:
            mark = "<< first over tolerance"
        if r.fastest_growth:
            mark = (mark + "; " if mark else "<< ") + "error grows fastest"
        status = f"[{style}]{r.status}[/]" + (f" [bold]{mark}[/]" if mark else "")
        table.add_row(str(r.order), "  " * max(r.depth - 1, 0) + (r.module or "(model)"), r.cls,
                      "x".join(map(str, r.shape)) if r.shape else "", _num(r.max_abs_diff), _num(r.rel_error),
                      _num(r.cosine, 6), status, r.note or "")
    return table


def write_plot(report: DebugReport, path: Path) -> Path:
    """Error against execution order and depth: ``.html`` (self-contained SVG) or ``.png`` (matplotlib)."""
    path = Path(path)
    pts = [(r.order, r.rel_error, r) for r in report.rows if r.rel_error is not None]
    if path.suffix.lower() == ".png":
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise ConfigError("--plot FILE.png needs matplotlib (pip install 'modelport[plot]'); "
                              "or write FILE.html") from None
        fig, ax = plt.subplots(figsize=(10, 4))
        xs = [p[0] for p in pts]
        ys = [max(min(p[1], 1e6), 1e-12) for p in pts]
        colors = ["red" if p[2].status == "over tolerance" else "tab:blue" for p in pts]
        ax.scatter(xs, ys, c=colors, s=[8 + 30 / (1 + p[2].depth) for p in pts])
        ax.plot(xs, ys, lw=0.5, color="gray")
        ax.set_yscale("log")
        ax.set_xlabel("module, in execution order")
        ax.set_ylabel("relative error ||a-r||/||r||")
        ax.set_title(f"{report.format}: error against depth (red: over tolerance)")
        first = next((p for p in pts if p[2].first_over_tolerance), None)
        if first:
            ax.annotate(first[2].module, (first[0], max(min(first[1], 1e6), 1e-12)), fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path
    if path.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--plot {path}: write .html or .png")
    path.write_text(_html(report, pts), encoding="utf-8")
    return path


def _html(report: DebugReport, pts: list[tuple[int, float, ModuleRow]]) -> str:
    import html

    w, h, pad = 900, 320, 50
    orders = [p[0] for p in pts] or [0]
    logs = [math.log10(max(min(p[1], 1e6), 1e-12)) for p in pts] or [0.0]
    x0, x1 = min(orders), max(orders) or 1
    y0, y1 = min(logs), max(logs)
    if y1 - y0 < 1:
        y1 = y0 + 1

    def sx(o: int) -> float:
        return pad + (o - x0) / max(x1 - x0, 1) * (w - 2 * pad)

    def sy(v: float) -> float:
        return h - pad - (v - y0) / (y1 - y0) * (h - 2 * pad)

    dots = []
    line = []
    for (o, _e, r), lv in zip(pts, logs, strict=True):
        color = "#d62728" if r.status == "over tolerance" else "#1f77b4"
        title = html.escape(f"{r.module} ({r.cls}) depth {r.depth}: rel err {_num(r.rel_error)}, "
                            f"max abs {_num(r.max_abs_diff)}, cosine {_num(r.cosine, 6)} — {r.status}")
        radius = 2 + 6 / (1 + r.depth)
        dots.append(f'<circle cx="{sx(o):.1f}" cy="{sy(lv):.1f}" r="{radius:.1f}" fill="{color}"><title>{title}'
                    "</title></circle>")
        line.append(f"{sx(o):.1f},{sy(lv):.1f}")
    ticks = "".join(f'<text x="{pad - 6}" y="{sy(v) + 4:.1f}" text-anchor="end" font-size="10">1e{v}</text>'
                    for v in range(math.floor(y0), math.ceil(y1) + 1))
    rows = "".join(
        f"<tr class='{html.escape(r.status.replace(' ', '-'))}'><td>{r.order}</td><td>{html.escape(r.module or '(model)')}"
        f"</td><td>{html.escape(r.cls)}</td><td>{r.depth}</td><td>{_num(r.max_abs_diff)}</td><td>{_num(r.rel_error)}</td>"
        f"<td>{_num(r.cosine, 6)}</td><td>{html.escape(r.status)}{' ← first' if r.first_over_tolerance else ''}"
        f"{' ← grows fastest' if r.fastest_growth else ''}</td><td>{html.escape(r.note or '')}</td></tr>"
        for r in report.rows)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>modelport debug: {html.escape(report.format)}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:2px 8px;text-align:left;font-size:13px}}
tr.over-tolerance{{color:#d62728}} tr.not-exposed{{color:#999}}</style></head><body>
<h2>{html.escape(report.summary())}</h2>
<p>rule {html.escape(report.rule)} · mode {html.escape(report.mode)} · {report.rounds} round(s) ·
peak memory {human_size(report.peak_rss_bytes)}</p>
<svg width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">
<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#444"/>
<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#444"/>{ticks}
<text x="{w / 2}" y="{h - 12}" text-anchor="middle" font-size="12">module, in execution order (dot size: shallower is larger)</text>
<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" text-anchor="middle" font-size="12">relative error</text>
<polyline points="{' '.join(line)}" fill="none" stroke="#aaa"/>{''.join(dots)}</svg>
<table><tr><th>#</th><th>module</th><th>class</th><th>depth</th><th>max abs</th><th>rel err</th><th>cosine</th>
<th>status</th><th>note</th></tr>{rows}</table></body></html>
"""


def load_model_for_debug(ref: str, model_kwargs: Mapping[str, Any] | None, checkpoint: str | None,
                         trust_code: bool) -> Any:
    """``--model REF``: the same references ``export`` takes; pickles need ``--trust-code``."""
    from modelport.models.loading import load_model

    module, _ = load_model(ref, model_kwargs=model_kwargs, checkpoint=checkpoint, trust_pickle=trust_code)
    return module


class _CallableModule(types.ModuleType):
    """``modelport.debug(...)`` is the Python API; importing this module by its wave-1 name (:mod:`modelport.aliases`)
    makes the package attribute ``debug`` this module.

    Python sets the package attribute to the submodule on import, so the module itself is made callable: both
    spellings reach :func:`debug_export`.
    """

    def __call__(self, export_dir: str | Path, model: Any = None, *, trust_code: bool = False,
                 **kwargs: Any) -> DebugReport:
        return debug_export(export_dir, model, trust_code=trust_code, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

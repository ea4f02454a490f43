"""The export pipeline: load → example inputs → reference outputs once → per format: export, validate,
describe, write metadata.json + export.json, rename into place."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import platform
import shutil
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport.engine.binding import Binding, bind_model, plan_binding, pristine_copy
from modelport.engine.compare import Comparison, compare_outputs, profile_for
from modelport.engine.inputs import InputSpec, batches_from_samples
from modelport.engine.settings import DEFAULT_EXTRA_BATCHES, ExportSettings, ModelInfo, from_keywords
from modelport.errors import (
    ConfigError,
    ExportFailed,
    ModelLoadError,
    ModelportError,
    PluginContractError,
    ValidationFailed,
)
from modelport.folder.exportdir import METADATA_FILE, REFERENCE_FILE
from modelport.folder.metadata import SCHEMA_VERSION, Contribution, check, merge_plugin_fields
from modelport.folder.store import (
    StagedDir,
    default_model_name,
    file_table,
    index_entry,
    new_export_id,
    now_iso,
    safe_name,
    safe_relpath,
    update_index,
    write_json_atomic,
)
from modelport.models.loading import set_eval
from modelport.plugins.host import PluginHost, get_plugin_manager
from modelport.plugins.options import resolve_options
from modelport.plugins.types import Artifact, ExportRequest, FormatSpec, ValidationRun, to_jsonable
from modelport.terminal.console import CapturedOutput, capture_fds

_REFERENCE_CAP_BYTES = 16 * 1024 * 1024

Progress = Callable[[str], None]


@dataclass
class FormatResult:
    """The outcome for one format: where it went, how validation went, and the exit code it implies."""

    format: str
    status: str  # passed | failed | inconclusive | skipped | structure-only | not-validated | error
    path: Path | None = None
    artifact: Artifact | None = None
    validation: Comparison | None = None
    validation_note: str | None = None
    error: str | None = None
    exit_code: int = 0
    record: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def metadata_path(self) -> Path | None:
        return self.path / METADATA_FILE if self.path else None

    @property
    def artifact_path(self) -> Path | None:
        if self.path and self.artifact:
            return self.path / self.artifact.path.name
        return None


class ExportResult(Mapping[str, FormatResult]):
    """format → FormatResult, plus the run's worst exit code."""

    def __init__(self, results: dict[str, FormatResult], notes: Sequence[str] = ()) -> None:
        self._results = results
        self.notes = list(notes)  # for the user: how the formats ran when not as asked (a fallback)

    def __getitem__(self, key: str) -> FormatResult:
        return self._results[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    @property
    def exit_code(self) -> int:
        codes = [r.exit_code for r in self._results.values()]
        for code in (1, 2):
            if code in codes:
                return code
        return max(codes, default=0)

    @property
    def metadata_path(self) -> Path | None:
        """metadata.json of the first format (the only one in a single-format export)."""
        for r in self._results.values():
            if r.metadata_path:
                return r.metadata_path
        return None


@dataclass
class ReferenceSet:
    """Input sets (numpy) and PyTorch's outputs for them, computed once and shared by every format."""

    inputs: list[dict[str, Any]]
    outputs: list[list[Any]]
    output_names: list[str]
    batch_sizes: list[int]


def _quiet(msg: str) -> None:
    pass


def run_reference(
    model: Any,
    spec: InputSpec,
    *,
    sample_inputs: Mapping[str, Any] | None = None,
    extra_batches: Sequence[int] = DEFAULT_EXTRA_BATCHES,
    n_random_sets: int = 3,
    binding: Binding | None = None,
    reference_inputs: Sequence[Mapping[str, Any]] | None = None,
) -> ReferenceSet:
    """Make the validation input sets and run PyTorch eager on each (under no_grad), inputs bound by name.

    ``reference_inputs`` (real inputs a model source made: tokenized text, a chain of decoding steps) come
    first — the first one is also the export's example — then samples, then seeded random sets.
    """
    import torch

    from modelport.engine.outputs import flatten_outputs, to_numpy

    sets: list[dict[str, Any]] = [{n: s[n] for n in spec.names} for s in reference_inputs or ()]
    if sample_inputs is not None:
        sets.extend(batches_from_samples(sample_inputs, spec.batch_size, limit=n_random_sets))
    for seed in range(max(n_random_sets - len(sets), 1 if not sets else 0)):
        sets.append(spec.make_numpy(seed=seed))
    if spec.dynamic_batch:
        for i, b in enumerate(extra_batches):
            if b != spec.batch_size:
                if sample_inputs is not None and next(iter(sample_inputs.values())).shape[0] >= b:
                    sets.extend(batches_from_samples(sample_inputs, b, limit=1))
                else:
                    sets.append(spec.make_numpy(batch=b, seed=100 + i))
    outputs: list[list[Any]] = []
    names: list[str] | None = None
    with torch.no_grad():
        for s in sets:
            args = spec.to_torch(s)
            try:
                out = binding.call(model, dict(zip(spec.names, args, strict=True))) if binding else model(*args)
            except Exception as exc:
                shapes = ", ".join(f"{k}{list(v.shape)}:{v.dtype}" for k, v in s.items())
                raise ModelLoadError(
                    f"the model rejects the example inputs ({shapes}): {type(exc).__name__}: "
                    f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:500]
                ) from exc
            try:
                flat = flatten_outputs(out)
            except TypeError as exc:
                from modelport.plugins.converter_errors import CACHE_HINT, mentions_cache

                raise ModelLoadError(f"{exc} — {CACHE_HINT}" if mentions_cache(str(exc)) else str(exc)) from exc
            if names is None:
                names = [n for n, _ in flat]
            outputs.append([to_numpy(t) for _, t in flat])
    assert names is not None
    batches = [next(iter(s.values())).shape[0] if next(iter(s.values())).ndim else 1 for s in sets]
    return ReferenceSet(sets, outputs, names, batches)


def save_reference(path: Path, ref: ReferenceSet) -> None:
    """Store inputs and expected outputs so ``modelport validate`` can re-check the artifact later."""
    import numpy as np

    arrays: dict[str, Any] = {}
    total = 0
    kept = 0
    for i, (inp, out) in enumerate(zip(ref.inputs, ref.outputs, strict=True)):
        size = sum(a.nbytes for a in inp.values()) + sum(np.asarray(a).nbytes for a in out)
        if i > 0 and total + size > _REFERENCE_CAP_BYTES:
            continue
        total += size
        for k, v in inp.items():
            arrays[f"{kept}/in/{k}"] = v
        for j, v in enumerate(out):
            arrays[f"{kept}/out/{j}"] = np.asarray(v)
        kept += 1
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def load_reference(path: Path, input_names: Sequence[str], n_outputs: int) -> ReferenceSet:
    import numpy as np

    from modelport.engine.limits import check_npz_size

    check_npz_size(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
            sets, outs = [], []
            i = 0
            while f"{i}/out/0" in keys or any(k.startswith(f"{i}/in/") for k in keys):
                sets.append({n: data[f"{i}/in/{n}"] for n in input_names})
                outs.append([data[f"{i}/out/{j}"] for j in range(n_outputs)])
                i += 1
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: unreadable reference data ({type(exc).__name__}: {exc})") from None
    if not sets:
        raise ConfigError(f"{path}: holds no reference input sets")
    batches = [next(iter(s.values())).shape[0] for s in sets]
    return ReferenceSet(sets, outs, [], batches)


def _check_artifact(artifact: Any, fmt: str, plugin: str, workdir: Path) -> Artifact:
    if not isinstance(artifact, Artifact):
        raise PluginContractError(
            f"plugin {plugin} broke the contract: export returned {type(artifact).__name__}, expected modelport.Artifact"
        )
    if not artifact.files:
        artifact.files = [artifact.path.name]
    for rel in artifact.files:
        safe_relpath(rel, f"plugin {plugin}: artifact file")
        if not (workdir / rel).exists():
            raise PluginContractError(f"plugin {plugin} broke the contract: it reported {rel} but did not write it")
    try:
        Path(artifact.path).resolve().relative_to(workdir.resolve())
    except ValueError:
        raise PluginContractError(f"plugin {plugin} broke the contract: artifact path {artifact.path} is outside the workdir") from None
    return artifact


def _plugin_for_format(host: PluginHost, fmt: str) -> str:
    entry = host.formats.get(fmt)
    return host.label(entry[1]) if entry else fmt


@contextlib.contextmanager
def _captured_warnings() -> Iterator[list[str]]:
    """Collect Python warnings raised by converters, to record each once instead of printing them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seen: list[str] = []
        yield seen
        for w in caught:
            text = f"{w.category.__name__}: {str(w.message).strip().splitlines()[0] if str(w.message).strip() else ''}"[:300]
            if text not in seen:
                seen.append(text)


def call_hook(host: PluginHost, fmt: str, hook: str, **kwargs: Any) -> Any:
    """Call a hook; a plugin's unexpected exception becomes one line naming the plugin and its version."""
    try:
        if hook == "format_object":  # resolving a format object (its import) fails like the plugin's hooks
            return host.format_object(fmt)
        if hook == "describe":  # a format object's describe, called directly
            return kwargs.pop("fn")(**kwargs)
        return getattr(host.pm.hook, hook)(**kwargs)
    except ModelportError:
        raise
    except KeyboardInterrupt:
        raise
    except OSError as exc:
        import errno

        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EDQUOT):
            raise  # the disk's fault, not the plugin's: reported as "cannot write"
        return _plugin_failure(host, fmt, hook, exc)
    except Exception as exc:
        return _plugin_failure(host, fmt, hook, exc)


def _plugin_failure(host: PluginHost, fmt: str, hook: str, exc: BaseException) -> Any:
    """Re-raise a plugin's unexpected exception as one line naming the plugin and its version."""
    from modelport.folder import store

    if store.INTERRUPTED:
        raise KeyboardInterrupt from exc
    plugin = _plugin_for_format(host, fmt)
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    err = ExportFailed(f"{fmt}: {hook} failed in {plugin}: {type(exc).__name__}: {msg}"[:800])
    err.debug_traceback = traceback.format_exc()  # type: ignore[attr-defined]
    raise err from exc


def describe(host: PluginHost, artifact: Artifact, request: ExportRequest | None) -> list[Contribution]:
    """Call every describe_metadata implementation; one that raises or returns a non-dict is named.

    Each result is tagged with its plugin and whether that plugin owns the artifact's format, which decides
    what it may contribute (:func:`modelport.folder.metadata.admit`).
    """
    owner = (host.formats.get(artifact.format) or (None, None))[1]
    contributed = _describe_object(host, artifact, request, owner)
    for impl in reversed(host.pm.hook.describe_metadata.get_hookimpls()):
        if impl.hookwrapper or getattr(impl, "wrapper", False):
            continue
        try:
            value = host.call_impl("describe_metadata", impl, artifact=artifact, request=request)
        except ModelportError:
            raise
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            err = ExportFailed(f"{artifact.format}: describe_metadata failed in {host.label(impl.plugin_name)}: "
                               f"{type(exc).__name__}: {msg}"[:800])
            err.debug_traceback = traceback.format_exc()  # type: ignore[attr-defined]
            raise err from exc
        if value is not None and not isinstance(value, Mapping):
            raise PluginContractError(f"plugin {host.label(impl.plugin_name)} broke the contract: describe_metadata "
                                      f"returned {type(value).__name__}, expected a dict or None")
        if value:
            contributed.append(Contribution(host.label(impl.plugin_name), value, impl.plugin_name == owner))
    return contributed


def _describe_object(host: PluginHost, artifact: Artifact, request: ExportRequest | None,
                     owner: str | None) -> list[Contribution]:
    """The owning format object's ``describe`` contribution (it owns the format's metadata), if it has one."""
    if owner is None:
        return []
    from modelport.plugins.format_objects import trace_method, unbound

    obj = call_hook(host, artifact.format, "format_object")
    fn = getattr(obj, "describe", None)
    if fn is not None:  # formats: traced like a hook call
        trace_method(host, artifact.format, obj, "describe")
    request = unbound(request) if request is not None else None
    value = call_hook(host, artifact.format, "describe", fn=fn, artifact=artifact, request=request) if fn else None
    if value is not None and not isinstance(value, Mapping):
        raise PluginContractError(f"plugin {host.label(owner)} broke the contract: describe returned "
                                  f"{type(value).__name__}, expected a dict or None")
    return [Contribution(host.label(owner), value, True)] if value else []


def run_validation(
    host: PluginHost,
    artifact: Artifact,
    ref: ReferenceSet,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    classifier: bool = False,
    threads: int | None = None,
    score_threshold: float | None = None,
) -> tuple[str, Comparison | None, ValidationRun | None, str | None]:
    """Run the artifact on the reference inputs and compare. Returns (status, comparison, run, note).

    Detections from in-graph NMS are compared by matching boxes (:func:`modelport.engine.nms.match_detections`).
    """
    artifact.options.setdefault("threads", threads)
    run = call_hook(host, artifact.format, "validate", artifact=artifact, inputs=ref.inputs)
    if run is None:
        # default validation: load once through load_runner, call it on every input set
        runner = call_hook(host, artifact.format, "load_runner", artifact=artifact, options={"threads": threads})
        if runner is None:
            return "skipped", None, None, f"no installed plugin can run {artifact.format} artifacts"
        try:
            outputs = [list(runner(dict(s))) for s in ref.inputs]
        except ModelportError:
            raise
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ValidationFailed(f"{artifact.format}: the artifact failed to run: {type(exc).__name__}: {msg}"[:800]) from exc
        run = ValidationRun(outputs=outputs, runtime=getattr(runner, "runtime", None))
    if not isinstance(run, ValidationRun):
        raise PluginContractError(
            f"plugin {_plugin_for_format(host, artifact.format)} broke the contract: validate returned "
            f"{type(run).__name__}, expected modelport.ValidationRun"
        )
    if run.problems:
        return "failed", None, run, "structural check failed: " + "; ".join(run.problems)
    if run.outputs is None:
        status = "structure-only" if run.checks else "skipped"
        return status, None, run, run.skipped or "the artifact cannot be run here"
    names = ref.output_names or [f"output_{j}" for j in range(len(ref.outputs[0]))]
    tol = profile_for(artifact.precision, atol, rtol)
    from modelport.engine.nms import is_nms_output

    if is_nms_output(names):
        return _detection_verdict(ref, run, names, tol, artifact.precision, score_threshold)
    comp = compare_outputs(ref.outputs, run.outputs, names, tol, artifact.precision, classifier=classifier,
                           batch_sizes=sorted(set(ref.batch_sizes)))
    return _verdict(comp, ref, names, run)


def _detection_verdict(ref: ReferenceSet, run: ValidationRun, names: Sequence[str], tol: Any, precision: str,
                       score_threshold: float | None) -> tuple[str, Comparison, ValidationRun, str | None]:
    """Match the artifact's detections with PyTorch's by class and IoU; inconclusive when there are none."""
    from modelport.engine.compare import OutputDiff
    from modelport.engine.nms import match_detections
    from modelport.engine.verdicts import HINT

    assert run.outputs is not None
    atol = tol.atol if tol.atol > 0 else 1e-2  # int8 profiles have no elementwise atol: use a score tolerance
    rtol = tol.rtol if tol.rtol > 0 else 5e-2
    m = match_detections(ref.outputs, run.outputs, names, atol, rtol, score_threshold=score_threshold)
    passed = not m.failures
    rule = f"detections matched by class and IoU >= 0.5; matched scores |a-r| <= {atol:g} + {rtol:g}*|r|"
    shape = list(getattr(ref.outputs[0][0], "shape", []))
    diff = OutputDiff("detections", shape, max(m.max_score_diff, m.max_box_diff), 0.0, None, passed, m.max_score_diff)
    comp = Comparison(passed=passed, precision=precision, rule=rule, atol=atol, rtol=rtol, outputs=[diff],
                      input_sets=len(ref.inputs), batch_sizes=sorted(set(ref.batch_sizes)),
                      failures=m.failures[:5] + ([f"... and {len(m.failures) - 5} more"] if len(m.failures) > 5 else []))
    run.checks["detections"] = {"reference": m.reference, "artifact": m.artifact, "matched": m.matched,
                                "borderline": m.borderline, "recall": round(m.recall, 4),
                                "max_score_diff": m.max_score_diff, "max_box_diff": m.max_box_diff}
    if not passed:
        return "failed", comp, run, None
    if m.reference == 0:
        return "inconclusive", comp, run, f"detections: PyTorch detected nothing in any input set — {HINT}"
    return "passed", comp, run, None


def _verdict(comp: Comparison, ref: ReferenceSet, names: Sequence[str],
             run: ValidationRun) -> tuple[str, Comparison, ValidationRun, str | None]:
    """passed / failed, or inconclusive when a passing comparison compared empty, zero or constant outputs."""
    from modelport.engine.verdicts import INCONCLUSIVE, inconclusive_message, tiny_outputs, vacuous_outputs

    tiny = tiny_outputs(ref.outputs, names, comp.atol)
    if tiny:
        run.checks.setdefault("tiny_outputs", tiny)
    if not comp.passed:
        return "failed", comp, run, None
    found = vacuous_outputs(ref.outputs, names, ref.batch_sizes)
    if found:
        run.checks["vacuous_outputs"] = [v.line() for v in found]
        return INCONCLUSIVE, comp, run, inconclusive_message(found)
    return "passed", comp, run, None


def _dim_labels(spec: InputSpec) -> dict[str, list[Any]]:
    out = {}
    for t in spec.tensors:
        out[t.name] = [t.dynamic.get(i, d) for i, d in enumerate(t.shape)]
    return out


def _output_dims(spec: InputSpec, ref: ReferenceSet) -> list[list[Any]]:
    """Each output's shape at the example batch, with the batch label on every axis that followed the batch.

    The reference runs cover several batch sizes when the batch is dynamic; an output axis whose size equals the
    batch size in every one of them is the batch axis (a classifier's logits, a transformer's hidden states).
    """
    first = [list(getattr(o, "shape", ())) for o in ref.outputs[0]]
    label = next((t.dynamic[0] for t in spec.tensors if 0 in t.dynamic), None)
    if label is None or not spec.dynamic_batch or len(set(ref.batch_sizes)) < 2:
        return first
    for k, dims in enumerate(first):
        for axis in range(len(dims)):
            if all(len(getattr(out[k], "shape", ())) == len(dims) and out[k].shape[axis] == b
                   for out, b in zip(ref.outputs, ref.batch_sizes, strict=True)):
                dims[axis] = label
    return first


def build_metadata(fmt: str, artifact: Artifact, run: ExportRun, plugin: dict[str, Any], files: dict[str, Any],
                   validation: dict[str, Any], contributed: list[Any]) -> dict[str, Any]:
    """metadata.json's content: the artifact's inputs and outputs, the model info, and plugins' contributions."""
    import torch

    from modelport.version import __version__

    spec, ref, info = run.inputs, run.ref, run.info
    task, class_names = info.task, info.class_names
    in_names = artifact.input_names or spec.names
    out_names = artifact.output_names or ref.output_names
    dtypes = {t.name: t.dtype for t in spec.tensors}
    if artifact.input_dtypes:
        dtypes.update(artifact.input_dtypes)
    input_shape = _dim_labels(spec)
    if artifact.input_names and len(artifact.input_names) == len(spec.names):
        input_shape = dict(zip(artifact.input_names, input_shape.values(), strict=True))
        dtypes = {a: dtypes.get(a, dtypes.get(s, "float32")) for a, s in zip(artifact.input_names, spec.names, strict=True)}
    md: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "framework": "pytorch",
        "model_name": run.model_name,
        "export_format": fmt,
        "task_type": task or "other",
        "input_shape": input_shape,
        "input_dtype": {n: dtypes.get(n, "float32") for n in in_names},
        "output_shape": dict(zip(out_names, _output_dims(spec, ref), strict=False)),
        "output_dtype": {n: str(o.dtype) for n, o in zip(out_names, ref.outputs[0], strict=False)},
        "created_at": now_iso(),
        "export_config": {**to_jsonable(_public_options(artifact.options)), "batch_size": spec.batch_size,
                          "dynamic": spec.has_dynamic},
        "precision": artifact.precision,
        "modelport_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "plugin": plugin,
        "files": files,
        "validation": validation,
    }
    if spec.has_dynamic:
        md["dynamic_axes"] = {t.name: {str(k): v for k, v in t.dynamic.items()} for t in spec.tensors if t.dynamic}
    if class_names:
        md["class_names"] = list(class_names)
        md["num_classes"] = len(class_names)
    elif task in ("classification", "detection"):
        first = ref.outputs[0][0]
        n = int(first.shape[-1]) if getattr(first, "ndim", 0) else 1
        md["class_names"] = [str(i) for i in range(n)]
        md["num_classes"] = n
    if info.preprocessing:
        md["preprocessing"] = dict(info.preprocessing)
    if info.postprocessing:
        md["postprocessing"] = dict(info.postprocessing)
    for k, v in (info.task_extras or {}).items():
        md[k] = v
    if "quantization" in artifact.details:
        md["quantization"] = artifact.details["quantization"]
    return merge_plugin_fields(md, contributed)


def _validation_summary(status: str, comp: Comparison | None, note: str | None) -> dict[str, Any]:
    return {
        "status": status,
        "max_abs_diff": comp.max_abs_diff if comp else None,
        "min_cosine": comp.min_cosine if comp else None,
        "rule": comp.rule if comp else "",
        "precision": comp.precision if comp else "",
        "batch_sizes": comp.batch_sizes if comp else [],
        "input_sets": comp.input_sets if comp else 0,
        "reason": note if note else (None if not comp or comp.passed else "; ".join(comp.failures)[:500]),
    }


def _environment() -> dict[str, Any]:
    import numpy
    import torch

    return {
        "python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine(),
        "torch": torch.__version__, "numpy": numpy.__version__,
    }


def expand_formats(host: PluginHost, formats: Sequence[str]) -> tuple[list[str], list[str]]:
    """Normalize format names; ``all`` means every format that can export here. Returns (formats, skipped lines)."""
    out: list[str] = []
    skipped: list[str] = []
    for f in formats:
        f = f.strip().lower()
        if not f:
            continue
        if f == "all":
            for row in host.format_statuses():
                if row.kind != "format":
                    continue
                if row.can_export:
                    out.append(row.name)
                elif row.status == "unavailable" or row.status == "broken":
                    skipped.append(f"{row.name}: {row.status}: {row.reason}")
        else:
            out.append(f)
    return list(dict.fromkeys(out)), skipped


@dataclass(frozen=True)
class ExportPlan:
    """What an export will do, decided before torch is imported: formats, their specs and checked options."""

    formats: list[str]
    specs: dict[str, FormatSpec]
    options: dict[str, dict[str, Any]]
    nms: Any = None
    skipped: list[str] = field(default_factory=list)
    per_format_dirs: bool | None = None

    def targets(self, model_name: str, output_dir: str | Path | None, exports_root: str | Path | None,
                force: bool) -> dict[str, Path]:
        """Each format's export folder (see :func:`plan_targets`)."""
        return plan_targets(self.formats, model_name, output_dir, exports_root, force, self.per_format_dirs)


def plan(host: PluginHost, formats: Sequence[str], options: Sequence[str] | Mapping[str, Any] = (),
         config: Mapping[str, Any] | None = None, nms: Any = None) -> ExportPlan:
    """Expand formats, resolve and check every per-format option; no torch import, so a CLI fails fast (exit 2)."""
    from modelport.engine.nms import config_from, split_options

    nms_from_options = None
    if not isinstance(options, Mapping):  # a typed per-format mapping carries no -o nms=... pairs
        nms_from_options, option_list = split_options(list(options))
        options = tuple(option_list)
    every = any(f.strip().lower() == "all" for f in formats)
    fmts, skipped = expand_formats(host, formats)
    if not fmts:
        raise ConfigError("no format given; use -f onnx,pt2 (see `modelport formats`)")
    specs: dict[str, FormatSpec] = {f: host.require_format(f) for f in fmts}
    resolved = resolve_options(specs, options, config)
    return ExportPlan(fmts, specs, resolved, config_from(nms) or nms_from_options, skipped, True if every else None)


def plan_targets(
    formats: Sequence[str],
    model_name: str,
    output_dir: str | Path | None,
    exports_root: str | Path | None,
    force: bool,
    per_format_dirs: bool | None = None,
) -> dict[str, Path]:
    """Where each format's export folder goes; an existing target without ``force`` is exit 3."""
    if output_dir is not None and exports_root is not None:
        raise ConfigError("give either --output-dir or --exports-root, not both")
    targets: dict[str, Path] = {}
    if exports_root is not None:
        root = Path(exports_root)
        if root.exists() and not root.is_dir():
            raise ConfigError(f"--exports-root {root}: exists and is not a directory")
        for f in formats:
            targets[f] = root / new_export_id(model_name, f)
        return targets
    base = Path(output_dir) if output_dir is not None else Path("exports") / model_name
    if base.exists() and not base.is_dir():
        raise ConfigError(f"output {base} exists and is not a directory")
    if per_format_dirs is None:
        per_format_dirs = len(formats) > 1
    if not per_format_dirs:
        targets[formats[0]] = base
    else:
        for f in formats:
            targets[f] = base / f
    from modelport.folder.store import check_replaceable

    for t in targets.values():
        if not force and t.exists() and (t != base or any(t.iterdir())):
            raise ConfigError(f"{t} already exists; pass --force to replace it")
        if force:
            check_replaceable(t)  # --force replaces only a folder modelport wrote, never user files
    return targets


def export(
    model: Any,
    formats: Sequence[str],
    inputs: InputSpec,
    *,
    settings: ExportSettings | None = None,
    host: PluginHost | None = None,
    progress: Progress = _quiet,
    **kwargs: Any,
) -> ExportResult:
    """Export ``model`` to each format, validate, describe and write each export folder atomically.

    Keywords are the fields of :class:`modelport.engine.settings.ExportSettings` (``output_dir``, ``exports_root``,
    ``validate``, ``force``, ``atol``, ``rtol``, ``threads``, ``allow_inconclusive``, ``options``, ``config``,
    ``nms``, ``sample_inputs``, ``extra_batches``, ``per_format_dirs``, ``jobs``, ``executor``) and of :class:`modelport.engine.settings.ModelInfo`
    (``model_name``, ``task``, ``class_names``, ``preprocessing``, ``postprocessing``, ``task_extras``, ``source``,
    ``reference_inputs``); they override ``settings`` when both are given.
    ``nms`` (True, a dict of :class:`modelport.engine.nms.NMSConfig` fields, or ``-o nms=true`` in ``options``) puts
    non-maximum suppression into the graph of a detector (``task="detection"``).
    ``reference_inputs``: real input sets (``{name: ndarray}``) used first as the example and for validation.
    ``jobs``: formats exported at once, in worker processes (None: ``MODELPORT_JOBS`` or auto = min(formats,
    cores / 2); 1: one after another here). ``executor="ray"``: each format a Ray task (``modelport[ray]``).
    """
    import torch

    from modelport.engine.jobs import check_executor

    settings, info = from_keywords(kwargs, settings)
    check_executor(settings.executor)
    host = host or get_plugin_manager()
    the_plan = plan(host, formats, settings.options, settings.config, settings.nms)
    if settings.per_format_dirs is None:
        settings = dataclasses.replace(settings, per_format_dirs=the_plan.per_format_dirs)
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    info = _named(model, info)
    assert info.model_name is not None
    targets = plan_targets(the_plan.formats, info.model_name, settings.output_dir, settings.exports_root,
                           settings.force, settings.per_format_dirs)
    run = start_run(model, inputs, the_plan.nms, settings, info, progress)
    run.format_options = the_plan.options
    # the formats run here in order, or at once in worker processes / as Ray tasks (modelport.engine.executors)
    from modelport.engine.executors import run_formats
    from modelport.engine.jobs import FormatJobs

    jobs = FormatJobs(the_plan.formats, the_plan.options, targets, run, step=export_format, result_type=FormatResult,
                      upstream={f: tuple(u for u in the_plan.specs[f].upstream if u in the_plan.formats)
                                for f in the_plan.formats})
    results, notes = run_formats(host, jobs, n_jobs=settings.jobs, executor=settings.executor, progress=progress)
    return ExportResult(results, notes)


def _named(model: Any, info: ModelInfo) -> ModelInfo:
    """The model info with its name decided (given, or the model class in snake_case) and an empty task as None."""
    name = safe_name(info.model_name or default_model_name(model, (info.source or {}).get("reference")), "model name")
    return dataclasses.replace(info, model_name=name, task=info.task or None)


@dataclass
class ExportRun:
    """What every format of one export shares: settings, model info, the model as formats receive it, the
    inputs and PyTorch's reference outputs (computed once)."""

    settings: ExportSettings
    info: ModelInfo
    prep: ModelPrep
    inputs: InputSpec
    ref: ReferenceSet
    example: tuple[Any, ...]
    sample_sets: list[dict[str, Any]] | None = None
    reference_log: str = ""
    format_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # every format's, for upstream reuse

    @property
    def model_name(self) -> str:
        return self.info.model_name or "model"

    @property
    def classifier(self) -> bool:
        return self.info.task in ("classification", "text-classification")


def start_run(model: Any, inputs: InputSpec, nms_cfg: Any, settings: ExportSettings, info: ModelInfo,
              progress: Progress = _quiet) -> ExportRun:
    """Prepare the model (eval, NMS, input binding, a pristine copy) and run the reference once for every format."""
    import torch

    set_eval(model)
    if nms_cfg is not None:
        model, info = _add_nms(model, inputs, nms_cfg, info)
    inputs, binding = plan_binding(model, inputs)
    pristine, copy_note = pristine_copy(model)  # before anything runs the model: formats export from copies of it
    if settings.threads:
        torch.set_num_threads(settings.threads)
    progress("running the PyTorch model on the example inputs")
    ref, log = reference_run(model, inputs, binding, settings, info.reference_inputs)
    samples = settings.sample_inputs
    return ExportRun(settings, info, ModelPrep(pristine, binding, copy_note), inputs, ref, inputs.to_torch(ref.inputs[0]),
                     batches_from_samples(samples, 1) if samples is not None else None, log)


def reference_run(model: Any, inputs: InputSpec, binding: Binding, settings: ExportSettings,
                  reference_inputs: Sequence[Mapping[str, Any]] | None) -> tuple[ReferenceSet, str]:
    """PyTorch's outputs on the validation input sets, and what the model printed meanwhile (captured)."""
    with capture_fds() as log:  # a model that prints must not reach the terminal or --json stdout
        if settings.validate:
            ref = run_reference(model, inputs, sample_inputs=settings.sample_inputs, extra_batches=settings.extra_batches,
                                binding=binding, reference_inputs=reference_inputs)
        else:  # one set: enough for output names and shapes, and for a later `modelport validate`
            ref = run_reference(model, inputs, sample_inputs=settings.sample_inputs, extra_batches=(), n_random_sets=1,
                                binding=binding, reference_inputs=list(reference_inputs or ())[:1])
    return ref, log.tail(2000)


def _add_nms(model: Any, inputs: InputSpec, cfg: Any, info: ModelInfo) -> tuple[Any, ModelInfo]:
    """Wrap a detector with in-graph NMS; its class count and the thresholds go to metadata.json."""
    import torch

    from modelport.engine.nms import with_nms

    if info.task not in (None, "detection"):
        raise ConfigError(f"-o nms=true is for detectors; it cannot be used with --task {info.task}")
    class_names = info.class_names
    if class_names is None:
        _, raw_binding = plan_binding(model, inputs)
        with torch.no_grad():
            raw = raw_binding.call(model, dict(zip(inputs.names, inputs.make_torch(seed=0), strict=True)))
        from modelport.engine.nms import split_raw

        scores = split_raw(raw, cfg.box_format)[1]
        class_names = [str(i) for i in range(int(scores.shape[-1]))]
    post = {**cfg.postprocessing(), **dict(info.postprocessing or {})}
    return with_nms(model, cfg), dataclasses.replace(info, task="detection", class_names=class_names,
                                                     postprocessing=post)


@dataclass
class ModelPrep:
    """The model as formats receive it: a pristine copy (never run) per export, inputs bound by name."""

    pristine: Any
    binding: Binding
    copy_note: str | None = None

    def fresh(self) -> Any:
        """A copy of the pristine model for one export, wrapped so its inputs reach forward by name."""
        model = self.pristine
        if self.copy_note is None:
            model, _ = pristine_copy(self.pristine)
        return bind_model(model, self.binding)

    def notes(self) -> list[str]:
        if self.copy_note:
            return [f"{self.copy_note}; every format exported from the one instance the reference run used"]
        return []


# ----------------------------------------------------------------------------- one format: export → validate → write


@dataclass
class FormatJob:
    """One format's export in progress: its options, its staging folder, and what it measured so far."""

    host: PluginHost
    fmt: str
    options: dict[str, Any]
    target: Path
    run: ExportRun
    staged: StagedDir
    progress: Progress = _quiet
    export_id: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    upstream_dirs: list[Path] = field(default_factory=list)
    export_log: CapturedOutput | None = None
    produced: Mapping[str, FormatResult] | None = None  # this run's results a format may reuse as its upstream


@dataclass
class Exported:
    """What the export stage produced: the checked artifact, the request it answered and the notes it raised."""

    artifact: Artifact
    request: ExportRequest
    notes: list[str]


@dataclass
class Verdict:
    """What the validation stage decided, and what the runtime printed meanwhile."""

    status: str
    comparison: Comparison | None = None
    run: ValidationRun | None = None
    note: str | None = None
    log: str = ""
    warnings: list[str] = field(default_factory=list)


def export_format(host: PluginHost | None, fmt: str, options: dict[str, Any], target: Path, run: ExportRun,
                  progress: Progress = _quiet, produced: Mapping[str, FormatResult] | None = None) -> FormatResult:
    """Export, validate, describe and write ONE format's folder at ``target``; a failure is an error FormatResult.

    This is the unit a worker process runs: everything it needs is in its arguments (``host`` None: this
    process's plugins); ``produced``: this run's finished formats, an upstream one is reused, not re-exported.
    """
    started = time.perf_counter()
    export_id = target.name if run.settings.exports_root is not None else new_export_id(run.model_name, fmt)
    job = FormatJob(host or get_plugin_manager(), fmt, options, target, run, StagedDir(target, force=run.settings.force),
                    progress, export_id, started=started, produced=produced)
    try:
        exported = export_artifact(job)
        verdict = validate_artifact(job, exported.artifact)
        md, files = write_metadata(job, exported, verdict)
        return write_record(job, exported, verdict, md, files)
    except (OSError, ModelportError) as exc:
        job.staged.discard()
        _reraise_if_interrupted(exc)
        return _error_result(job, exc)
    finally:
        job.staged.discard()
        for d in job.upstream_dirs:
            shutil.rmtree(d, ignore_errors=True)


def _request(job: FormatJob, fmt: str, options: dict[str, Any], workdir: Path) -> ExportRequest:
    """The ExportRequest for ``fmt`` (this job's format or one it exports from) with a fresh copy of the model."""
    run = job.run
    return ExportRequest(
        format=fmt, model=run.prep.fresh(), inputs=run.inputs, example_inputs=run.example, options=options,
        workdir=workdir, output_names=list(run.ref.output_names), task=run.info.task, model_name=run.model_name,
        threads=run.settings.threads, sample_inputs=run.sample_sets, _upstream=functools.partial(_export_upstream, job),
        metadata=run.info.request_metadata(),
    )


def _export_upstream(job: FormatJob, up_fmt: str, **up_options: Any) -> Artifact:
    """Export a format another one converts from (``request.upstream("onnx")``) into a temporary folder."""
    up_spec = job.host.require_format(up_fmt)
    up_opts = resolve_options({up_fmt: up_spec}, (), {up_fmt: up_options} if up_options else None)[up_fmt]
    up_dir = Path(tempfile.mkdtemp(prefix=f".modelport-tmp-upstream-{up_fmt}-", dir=job.staged.path.parent))
    job.upstream_dirs.append(up_dir)
    from modelport.engine.jobs import reuse_upstream  # this run's own export of it, with the same options: reused

    reused = reuse_upstream(job.produced, up_fmt, up_opts, job.run.format_options, up_dir)
    if reused is not None:
        job.progress(f"{job.fmt}: reusing this run's {up_fmt} export")
        return reused
    request = _request(job, up_fmt, up_opts, up_dir)
    job.progress(f"{job.fmt}: exporting upstream {up_fmt}")
    art = call_hook(job.host, up_fmt, "export", request=request)
    if art is None:
        raise PluginContractError(f"no installed plugin exported upstream format {up_fmt!r}")
    art = _check_artifact(art, up_fmt, _plugin_for_format(job.host, up_fmt), up_dir)
    art.options = {**up_opts, **art.options}
    return art


def export_artifact(job: FormatJob) -> Exported:
    """The export stage: the format's plugin writes the artifact into the staging folder (its output captured)."""
    import torch

    fmt, host = job.fmt, job.host
    request = _request(job, fmt, dict(job.options), job.staged.path)
    job.progress(f"{fmt}: exporting")
    t0 = time.perf_counter()
    with capture_fds() as log, _captured_warnings() as caught, torch.no_grad():
        job.export_log = log
        artifact = call_hook(host, fmt, "export", request=request)
    job.timings["export_s"] = round(time.perf_counter() - t0, 4)
    if artifact is None:
        raise PluginContractError(f"no installed plugin exported format {fmt!r} (its plugin returned None)")
    artifact = _check_artifact(artifact, fmt, _plugin_for_format(host, fmt), job.staged.path)
    artifact.options = {**job.options, **artifact.options}
    artifact.options["threads"] = job.run.settings.threads
    notes = list(dict.fromkeys([*job.run.prep.notes(), *request._notes, *artifact.warnings, *caught]))
    return Exported(artifact, request, notes)


def validate_artifact(job: FormatJob, artifact: Artifact) -> Verdict:
    """The validation stage: run the artifact on the reference inputs and compare (skipped with --no-validate)."""
    settings, ref = job.run.settings, job.run.ref
    if not settings.validate:
        return Verdict("not-validated", note="validation disabled (--no-validate)")
    sizes = ", ".join(map(str, sorted(set(ref.batch_sizes))))
    job.progress(f"{job.fmt}: validating on {len(ref.inputs)} input sets (batch {sizes})")
    t0 = time.perf_counter()
    threshold = (job.run.info.postprocessing or {}).get("confidence_threshold")
    with capture_fds() as vlog, _captured_warnings() as vcaught:
        try:
            status, comp, vrun, note = run_validation(
                job.host, artifact, ref, atol=settings.atol, rtol=settings.rtol, classifier=job.run.classifier,
                threads=settings.threads, score_threshold=threshold if isinstance(threshold, (int, float)) else None)
        except ValidationFailed as exc:  # exit 2 means "written and kept": keep it, say why
            status, comp, vrun, note = "failed", None, None, str(exc)
    job.timings["validate_s"] = round(time.perf_counter() - t0, 4)
    return Verdict(status, comp, vrun, note, vlog.tail(), list(vcaught))


def write_metadata(job: FormatJob, exported: Exported, verdict: Verdict) -> tuple[dict[str, Any], dict[str, Any]]:
    """The describe stage: plugins' metadata contributions, the reference data and metadata.json, in staging.

    Returns metadata.json's content and the folder's file table (sha256 and size of every file so far)."""
    exported.notes.extend(w for w in verdict.warnings if w not in exported.notes)
    job.progress(f"{job.fmt}: writing metadata")
    contributed = describe(job.host, exported.artifact, exported.request)
    save_reference(job.staged.path / REFERENCE_FILE, job.run.ref)
    files = file_table(job.staged.path)
    md = build_metadata(job.fmt, exported.artifact, job.run, _plugin_info(job.host, job.fmt),
                        {k: v for k, v in files.items() if k != REFERENCE_FILE},
                        _validation_summary(verdict.status, verdict.comparison, verdict.note), contributed)
    check(md, f"{job.fmt}: metadata.json")
    write_json_atomic(job.staged.path / METADATA_FILE, md)
    return md, files


def write_record(job: FormatJob, exported: Exported, verdict: Verdict, md: dict[str, Any],
                 files: dict[str, Any]) -> FormatResult:
    """The write stage: export.json (sealed), the staging folder renamed into place, the index updated."""
    job.timings["total_s"] = round(time.perf_counter() - job.started, 4)
    exit_code = verdict_exit_code(verdict.status, job.run.settings.allow_inconclusive)
    record = _build_record(job, exported, verdict, md, files, exit_code)
    from modelport.folder.exportdir import write_record as write_record_file

    record = write_record_file(job.staged.path, record)  # schema-checked, sealed (proves modelport wrote it here)
    target, artifact = job.target, exported.artifact
    kept_previous = exit_code == 2 and (target.exists() or target.is_symlink())
    if kept_previous:  # --force never trades a good export for one that failed validation
        job.staged.target = target.with_name(f"{target.name}.failed")
    final = job.staged.commit()
    artifact.path = final / Path(artifact.path).relative_to(job.staged.path)
    root = job.run.settings.exports_root_path
    if root is not None:
        update_index(root, index_entry(record, final.name))
    error = _verdict_error(job.fmt, final, verdict, artifact, exit_code, target if kept_previous else None)
    return FormatResult(job.fmt, verdict.status, final, artifact, verdict.comparison, verdict.note, error, exit_code,
                        record, md)


def _build_record(job: FormatJob, exported: Exported, verdict: Verdict, md: Mapping[str, Any],
                  files: dict[str, Any], exit_code: int) -> dict[str, Any]:
    """export.json's content (before its seal): what was exported from what, how, and how validation went."""
    run, artifact, comp, vrun = job.run, exported.artifact, verdict.comparison, verdict.run
    validation = _validation_summary(verdict.status, comp, verdict.note)
    record: dict[str, Any] = {
        "id": job.export_id,
        "format": job.fmt,
        "status": {"failed": "validation-failed", "inconclusive": "validation-inconclusive"}.get(verdict.status, "ok"),
        "created_at": md["created_at"],
        "model_name": run.model_name,
        "task": run.info.task,
        "source": to_jsonable(dict(run.info.source or {"reference": "python object"})),
        "artifact": artifact.path.name,
        "artifact_files": artifact.files,
        "precision": artifact.precision,
        "inputs": run.inputs.to_dict(),
        "binding": run.prep.binding.describe(),
        "artifact_inputs": artifact.input_names,
        "outputs": run.ref.output_names,
        "artifact_outputs": artifact.output_names,
        "options": to_jsonable(_public_options(artifact.options)),
        "plugin": _plugin_info(job.host, job.fmt),
        "details": to_jsonable(artifact.details),
        "notes": exported.notes,
        "timings": job.timings,
        "sizes": {"total_bytes": sum(v["bytes"] for k, v in files.items() if k != REFERENCE_FILE)},
        "files": files,
        "validation": {
            **validation,
            "tolerance": {"atol": comp.atol, "rtol": comp.rtol} if comp else None,
            "outputs": to_jsonable(comp.outputs) if comp else [],
            "checks": to_jsonable(vrun.checks) if vrun else {},
            "runtime": vrun.runtime if vrun else None,
        },
        "log": _joined_log(("reference run", run.reference_log), ("export", job.export_log.tail() if job.export_log else ""),
                           ("validation", verdict.log)),
        "environment": _environment(),
        "exit_code": exit_code,
    }
    if artifact.input_dtypes:
        record["artifact_input_dtypes"] = artifact.input_dtypes
    return record


def _plugin_info(host: PluginHost, fmt: str) -> dict[str, Any]:
    """The plugin that owns ``fmt``, as recorded: its distribution (or plugin) name and version."""
    plugin_name = host.formats[fmt][1]
    info = host.plugin_of(plugin_name)
    return {"name": info.distribution or info.name if info else plugin_name, "version": info.version if info else None}


def _verdict_error(fmt: str, final: Path, verdict: Verdict, artifact: Artifact, exit_code: int,
                   kept: Path | None) -> str | None:
    """The one line a written export reports when validation failed or was inconclusive (None otherwise)."""
    if verdict.status == "failed":
        comp = verdict.comparison
        why = "; ".join(comp.failures) if comp is not None else (verdict.note or "")
        error = f"{fmt}: exported to {final} but validation failed: {why}"
    elif verdict.status == "inconclusive" and exit_code:
        error = f"{fmt}: exported to {final} but validation was inconclusive: {verdict.note}"
    else:
        return None
    if kept is not None:
        error += f" (the previous export at {kept} was kept)"
    if verdict.status == "failed" and artifact.details.get("validation_hint"):
        error += f" — {artifact.details['validation_hint']}"
    return error


def _error_result(job: FormatJob, exc: OSError | ModelportError) -> FormatResult:
    """Every failure of one format, mapped in one place: a disk error (exit 1) or modelport's own (its exit code;
    2 becomes 1, since nothing was kept). Called inside the ``except`` so the traceback is the failure's."""
    if isinstance(exc, OSError):
        where = exc.filename or job.target.parent
        msg = f"{job.fmt}: cannot write the export near {job.target}: {exc.strerror or exc} ({where})"
        return FormatResult(job.fmt, "error", None, None, None, None, msg, 1, {"debug_traceback": traceback.format_exc()})
    code = 1 if exc.exit_code == 2 else exc.exit_code  # 2 means "written and kept, but validation failed"
    result = FormatResult(job.fmt, "error", None, None, None, None, str(exc), code)
    result.record = {"debug_traceback": getattr(exc, "debug_traceback", None) or traceback.format_exc(),
                     "log": job.export_log.tail() if job.export_log is not None else "",
                     "error_detail": getattr(exc, "detail", None)}
    return result


def verdict_exit_code(status: str, allow_inconclusive: bool = False) -> int:
    """2 for a failed validation, and for an inconclusive one unless allowed; 0 otherwise."""
    if status == "failed" or (status == "inconclusive" and not allow_inconclusive):
        return 2
    return 0


def _joined_log(*parts: tuple[str, str], limit: int = 6000) -> str:
    """The record's log: what each step printed, under its name; empty steps left out."""
    text = "\n".join(f"[{name}]\n{body.strip()}" for name, body in parts if body and body.strip())
    return text[-limit:]


def _reraise_if_interrupted(exc: BaseException) -> None:
    from modelport.folder import store

    if store.INTERRUPTED:
        raise KeyboardInterrupt from exc


def _public_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options as recorded: run-time settings (threads) left out, values made JSON-safe."""
    return {k: v for k, v in options.items() if k not in ("threads",)}


# ----------------------------------------------------------------------------- re-validate an export dir


# Moved to modelport.folder.exportdir (the export folder's one reader); the names stay importable from here.
from modelport.folder.exportdir import OpenedExport, artifact_from_dir, open_export, read_record, verify_files  # noqa: E402, F401


def validate_export(
    export_dir: str | Path,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    threads: int | None = None,
    host: PluginHost | None = None,
    allow_inconclusive: bool = False,
    trust_code: bool = False,
) -> FormatResult:
    """Re-run an export folder's artifact on its recorded inputs and compare with the recorded outputs.

    An artifact that runs code when loaded (TorchScript, a .pt2 with pickled parts) is loaded only when
    modelport sealed the folder on this machine or ``trust_code`` is set (see modelport.folder.trust).
    """
    opened = open_export(export_dir, host=host, trust_code=trust_code)
    export_dir, record, md, host, artifact = opened.export_dir, opened.record, opened.metadata, opened.host, opened.artifact
    fmt = artifact.format
    spec = InputSpec.from_dict(record["inputs"])
    ref = load_reference(export_dir / REFERENCE_FILE, spec.names, len(record.get("outputs") or []))
    ref.output_names = list(record.get("outputs") or [])
    classifier = record.get("task") in ("classification", "text-classification")
    threshold = (md.get("postprocessing") or {}).get("confidence_threshold")
    status, comp, _run, note = run_validation(host, artifact, ref, atol=atol, rtol=rtol, classifier=classifier,
                                              threads=threads,
                                              score_threshold=threshold if isinstance(threshold, (int, float)) else None)
    code = verdict_exit_code(status, allow_inconclusive)
    err = None
    if status == "failed":
        err = f"{fmt}: validation failed: " + ("; ".join(comp.failures) if comp is not None else (note or ""))
    elif code:
        err = f"{fmt}: validation was inconclusive: {note}"
    return FormatResult(fmt, status, export_dir, artifact, comp, note, err, code, record, md)

"""The export pipeline: load → example inputs → reference outputs once → per format: export, validate,
describe, write metadata.json + export.json, rename into place."""

from __future__ import annotations

import contextlib
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

from modelport.binding import Binding, bind_model, plan_binding, pristine_copy
from modelport.compare import Comparison, compare_outputs, profile_for
from modelport.console import CapturedOutput, capture_fds
from modelport.errors import (
    ConfigError,
    ExportFailed,
    ModelLoadError,
    ModelportError,
    PluginContractError,
    ValidationFailed,
)
from modelport.exportdir import METADATA_FILE, RECORD_FILE, REFERENCE_FILE, read_record
from modelport.inputs import InputSpec, batches_from_samples
from modelport.loading import set_eval
from modelport.metadata import SCHEMA_VERSION, Contribution, check, merge_plugin_fields
from modelport.options import resolve_options
from modelport.plugins import PluginHost, get_plugin_manager
from modelport.store import (
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
from modelport.types import Artifact, ExportRequest, FormatSpec, ValidationRun, to_jsonable

_REFERENCE_CAP_BYTES = 16 * 1024 * 1024
DEFAULT_EXTRA_BATCHES = (4, 8)

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

    from modelport.outputs import flatten_outputs, to_numpy

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
                from modelport.converter_errors import CACHE_HINT, mentions_cache

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

    from modelport.limits import check_npz_size

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
    from modelport import store

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
    what it may contribute (:func:`modelport.metadata.admit`).
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
    from modelport.format_objects import unbound

    fn = getattr(call_hook(host, artifact.format, "format_object"), "describe", None)
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

    Detections from in-graph NMS are compared by matching boxes (:func:`modelport.nms.match_detections`).
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
    from modelport.nms import is_nms_output

    if is_nms_output(names):
        return _detection_verdict(ref, run, names, tol, artifact.precision, score_threshold)
    comp = compare_outputs(ref.outputs, run.outputs, names, tol, artifact.precision, classifier=classifier,
                           batch_sizes=sorted(set(ref.batch_sizes)))
    return _verdict(comp, ref, names, run)


def _detection_verdict(ref: ReferenceSet, run: ValidationRun, names: Sequence[str], tol: Any, precision: str,
                       score_threshold: float | None) -> tuple[str, Comparison, ValidationRun, str | None]:
    """Match the artifact's detections with PyTorch's by class and IoU; inconclusive when there are none."""
    from modelport.compare import OutputDiff
    from modelport.nms import match_detections
    from modelport.verdicts import HINT

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
    from modelport.verdicts import INCONCLUSIVE, inconclusive_message, tiny_outputs, vacuous_outputs

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


def build_metadata(
    *,
    fmt: str,
    artifact: Artifact,
    spec: InputSpec,
    ref: ReferenceSet,
    options: Mapping[str, Any],
    model_name: str,
    task: str | None,
    class_names: Sequence[str] | None,
    preprocessing: Mapping[str, Any] | None,
    postprocessing: Mapping[str, Any] | None,
    task_extras: Mapping[str, Any] | None,
    plugin: dict[str, Any],
    files: dict[str, Any],
    validation: dict[str, Any],
    contributed: list[Any],
) -> dict[str, Any]:
    import torch

    from modelport.version import __version__

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
        "model_name": model_name,
        "export_format": fmt,
        "task_type": task or "other",
        "input_shape": input_shape,
        "input_dtype": {n: dtypes.get(n, "float32") for n in in_names},
        "output_shape": dict(zip(out_names, _output_dims(spec, ref), strict=False)),
        "output_dtype": {n: str(o.dtype) for n, o in zip(out_names, ref.outputs[0], strict=False)},
        "created_at": now_iso(),
        "export_config": {**to_jsonable(dict(options)), "batch_size": spec.batch_size,
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
    if preprocessing:
        md["preprocessing"] = dict(preprocessing)
    if postprocessing:
        md["postprocessing"] = dict(postprocessing)
    for k, v in (task_extras or {}).items():
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
    from modelport.nms import config_from, split_options

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
    from modelport.store import check_replaceable

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
    output_dir: str | Path | None = None,
    exports_root: str | Path | None = None,
    model_name: str | None = None,
    task: str | None = None,
    class_names: Sequence[str] | None = None,
    preprocessing: Mapping[str, Any] | None = None,
    postprocessing: Mapping[str, Any] | None = None,
    task_extras: Mapping[str, Any] | None = None,
    options: Sequence[str] | Mapping[str, Any] = (),
    config: Mapping[str, Any] | None = None,
    validate: bool = True,
    force: bool = False,
    atol: float | None = None,
    rtol: float | None = None,
    sample_inputs: Mapping[str, Any] | None = None,
    threads: int | None = None,
    source: Mapping[str, Any] | None = None,
    host: PluginHost | None = None,
    progress: Progress = _quiet,
    extra_batches: Sequence[int] = DEFAULT_EXTRA_BATCHES,
    per_format_dirs: bool | None = None,
    allow_inconclusive: bool = False,
    nms: Any = None,
    reference_inputs: Sequence[Mapping[str, Any]] | None = None,
    jobs: int | None = None,
    executor: str = "local",
) -> ExportResult:
    """Export ``model`` to each format, validate, describe and write each export folder atomically.

    ``jobs``: formats exported at once, in worker processes (None: ``MODELPORT_JOBS`` or auto = min(formats,
    cores); 1: one after another here). ``executor="ray"``: each format a Ray task (``modelport[ray]``).

    ``nms`` (True, a dict of :class:`modelport.nms.NMSConfig` fields, or ``-o nms=true`` in ``options``) puts
    non-maximum suppression into the graph of a detector (``task="detection"``).
    ``reference_inputs``: real input sets (``{name: ndarray}``) used first as the example and for validation.
    """
    import torch

    host = host or get_plugin_manager()
    from modelport.jobs import check_executor

    check_executor(executor)
    the_plan = plan(host, formats, options, config, nms)
    formats, specs, resolved, nms_cfg = the_plan.formats, the_plan.specs, the_plan.options, the_plan.nms
    if per_format_dirs is None:
        per_format_dirs = the_plan.per_format_dirs
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    model_name = safe_name(model_name or default_model_name(model, (source or {}).get("reference")), "model name")
    if task is not None and not task:
        task = None
    targets = plan_targets(formats, model_name, output_dir, exports_root, force, per_format_dirs)
    set_eval(model)
    if nms_cfg is not None:
        model, task, class_names, postprocessing = _add_nms(model, inputs, nms_cfg, task, class_names, postprocessing)
    inputs, binding = plan_binding(model, inputs)
    pristine, copy_note = pristine_copy(model)  # before anything runs the model: formats export from copies of it
    if threads:
        torch.set_num_threads(threads)

    progress("running the PyTorch model on the example inputs")
    with capture_fds() as reference_log:  # a model that prints must not reach the terminal or --json stdout
        if validate:
            ref = run_reference(model, inputs, sample_inputs=sample_inputs, extra_batches=extra_batches, binding=binding,
                                reference_inputs=reference_inputs)
        else:  # one set: enough for output names and shapes, and for a later `modelport validate`
            ref = run_reference(model, inputs, sample_inputs=sample_inputs, extra_batches=(), n_random_sets=1,
                                binding=binding, reference_inputs=list(reference_inputs or ())[:1])
    sample_sets = batches_from_samples(sample_inputs, 1) if sample_inputs is not None else None
    classifier = task in ("classification", "text-classification")

    prep = ModelPrep(pristine, binding, copy_note)
    # ---- the formats run here in order, or concurrently in workers / on Ray (modelport.executors) ----
    from modelport.executors import run_formats
    from modelport.jobs import FormatJobs

    format_jobs = FormatJobs(
        formats, resolved, targets, prep, inputs, ref, step=_export_one, result_type=FormatResult,
        upstream={f: tuple(u for u in specs[f].upstream if u in formats) for f in formats},
        common={
            "model_name": model_name, "task": task, "class_names": class_names, "preprocessing": preprocessing,
            "postprocessing": postprocessing, "task_extras": task_extras, "validate": validate, "force": force,
            "atol": atol, "rtol": rtol, "threads": threads, "source": source, "classifier": classifier,
            "sample_sets": sample_sets, "exports_root": Path(exports_root) if exports_root is not None else None,
            "resolved_all": resolved, "allow_inconclusive": allow_inconclusive,
            "reference_log": reference_log.tail(2000),
        })
    results, notes = run_formats(host, format_jobs, n_jobs=jobs, executor=executor, progress=progress)
    return ExportResult(results, notes)


def _add_nms(model: Any, inputs: InputSpec, cfg: Any, task: str | None, class_names: Sequence[str] | None,
             postprocessing: Mapping[str, Any] | None) -> tuple[Any, str, Sequence[str] | None, dict[str, Any]]:
    """Wrap a detector with in-graph NMS; its class count and the thresholds go to metadata.json."""
    import torch

    from modelport.nms import with_nms

    if task not in (None, "detection"):
        raise ConfigError(f"-o nms=true is for detectors; it cannot be used with --task {task}")
    if class_names is None:
        _, raw_binding = plan_binding(model, inputs)
        with torch.no_grad():
            raw = raw_binding.call(model, dict(zip(inputs.names, inputs.make_torch(seed=0), strict=True)))
        from modelport.nms import split_raw

        try:
            scores = split_raw(raw, cfg.box_format)[1]
        except ConfigError:
            raise
        class_names = [str(i) for i in range(int(scores.shape[-1]))]
    post = {**cfg.postprocessing(), **dict(postprocessing or {})}
    return with_nms(model, cfg), "detection", class_names, post


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


def _export_one(
    host: PluginHost, fmt: str, spec: FormatSpec, opts: dict[str, Any], prep: ModelPrep, inputs: InputSpec,
    example: tuple[Any, ...], ref: ReferenceSet, target: Path, *, model_name: str, task: str | None,
    class_names: Sequence[str] | None, preprocessing: Mapping[str, Any] | None,
    postprocessing: Mapping[str, Any] | None, task_extras: Mapping[str, Any] | None, validate: bool,
    force: bool, atol: float | None, rtol: float | None, threads: int | None, source: Mapping[str, Any] | None,
    progress: Progress, classifier: bool, sample_sets: list[dict[str, Any]] | None, exports_root: Path | None,
    resolved_all: Mapping[str, dict[str, Any]], allow_inconclusive: bool = False, reference_log: str = "",
    produced: Mapping[str, FormatResult] | None = None,
) -> FormatResult:
    import torch

    plugin_name = host.formats[fmt][1]
    info = host.plugin_of(plugin_name)
    plugin = {"name": info.distribution or info.name if info else plugin_name, "version": info.version if info else None}
    export_id = target.name if exports_root is not None else new_export_id(model_name, fmt)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    staged = StagedDir(target, force=force)
    upstream_dirs: list[Path] = []
    request_metadata = {k: v for k, v in {
        "model_name": model_name, "task_type": task or "other",
        "class_names": list(class_names) if class_names else None,
        "preprocessing": dict(preprocessing) if preprocessing else None,
        "postprocessing": dict(postprocessing) if postprocessing else None,
        "source": to_jsonable(dict(source)) if source else None,
    }.items() if v is not None}
    try:
        def upstream(up_fmt: str, **up_options: Any) -> Artifact:
            up_spec = host.require_format(up_fmt)
            up_opts = resolve_options({up_fmt: up_spec}, (), {up_fmt: up_options} if up_options else None)[up_fmt]
            up_dir = Path(tempfile.mkdtemp(prefix=f".modelport-tmp-upstream-{up_fmt}-", dir=staged.path.parent))
            upstream_dirs.append(up_dir)
            from modelport.jobs import reuse_upstream  # this run's own export of it, same options: reused

            reused = reuse_upstream(produced, up_fmt, up_opts, resolved_all, up_dir)
            if reused is not None:
                progress(f"{fmt}: reusing this run's {up_fmt} export")
                return reused
            up_req = ExportRequest(
                format=up_fmt, model=prep.fresh(), inputs=inputs, example_inputs=example, options=up_opts, workdir=up_dir,
                output_names=list(ref.output_names), task=task, model_name=model_name, threads=threads,
                sample_inputs=sample_sets, _upstream=upstream, metadata=dict(request_metadata),
            )
            progress(f"{fmt}: exporting upstream {up_fmt}")
            art = call_hook(host, up_fmt, "export", request=up_req)
            if art is None:
                raise PluginContractError(f"no installed plugin exported upstream format {up_fmt!r}")
            art = _check_artifact(art, up_fmt, _plugin_for_format(host, up_fmt), up_dir)
            art.options = {**up_opts, **art.options}
            return art

        request = ExportRequest(
            format=fmt, model=prep.fresh(), inputs=inputs, example_inputs=example, options=dict(opts),
            workdir=staged.path, output_names=list(ref.output_names), task=task, model_name=model_name,
            threads=threads, sample_inputs=sample_sets, _upstream=upstream,
            metadata=request_metadata,
        )
        progress(f"{fmt}: exporting")
        t0 = time.perf_counter()
        with capture_fds() as log, _captured_warnings() as caught, torch.no_grad():
            artifact = call_hook(host, fmt, "export", request=request)
        timings["export_s"] = round(time.perf_counter() - t0, 4)
        if artifact is None:
            raise PluginContractError(f"no installed plugin exported format {fmt!r} (its plugin returned None)")
        artifact = _check_artifact(artifact, fmt, _plugin_for_format(host, fmt), staged.path)
        artifact.options = {**opts, **artifact.options}
        artifact.options["threads"] = threads
        notes = list(dict.fromkeys([*prep.notes(), *request._notes, *artifact.warnings, *caught]))

        note: str | None
        status, comp, run, note = "not-validated", None, None, "validation disabled (--no-validate)"
        vlog = CapturedOutput()
        if validate:
            progress(f"{fmt}: validating on {len(ref.inputs)} input sets (batch {', '.join(map(str, sorted(set(ref.batch_sizes))))})")
            t0 = time.perf_counter()
            with capture_fds() as vlog, _captured_warnings() as vcaught:
                threshold = (postprocessing or {}).get("confidence_threshold")
                try:
                    status, comp, run, note = run_validation(host, artifact, ref, atol=atol, rtol=rtol,
                                                             classifier=classifier, threads=threads,
                                                             score_threshold=threshold if isinstance(
                                                                 threshold, (int, float)) else None)
                except ValidationFailed as exc:  # exit 2 means "written and kept": keep it, say why
                    status, comp, run, note = "failed", None, None, str(exc)
            notes.extend(w for w in vcaught if w not in notes)
            timings["validate_s"] = round(time.perf_counter() - t0, 4)
        validation = _validation_summary(status, comp, note)

        progress(f"{fmt}: writing metadata")
        contributed = describe(host, artifact, request)
        save_reference(staged.path / REFERENCE_FILE, ref)
        files = file_table(staged.path)
        artifact_files = {k: v for k, v in files.items() if k != REFERENCE_FILE}
        md = build_metadata(
            fmt=fmt, artifact=artifact, spec=inputs, ref=ref, options=_public_options(artifact.options),
            model_name=model_name, task=task, class_names=class_names, preprocessing=preprocessing,
            postprocessing=postprocessing, task_extras=task_extras, plugin=plugin, files=artifact_files,
            validation=validation, contributed=contributed,
        )
        check(md, f"{fmt}: metadata.json")
        write_json_atomic(staged.path / METADATA_FILE, md)
        timings["total_s"] = round(time.perf_counter() - t_start, 4)
        exit_code = verdict_exit_code(status, allow_inconclusive)
        record = {
            "id": export_id,
            "format": fmt,
            "status": {"failed": "validation-failed", "inconclusive": "validation-inconclusive"}.get(status, "ok"),
            "created_at": md["created_at"],
            "model_name": model_name,
            "task": task,
            "source": to_jsonable(dict(source or {"reference": "python object"})),
            "artifact": artifact.path.name,
            "artifact_files": artifact.files,
            "precision": artifact.precision,
            "inputs": inputs.to_dict(),
            "binding": prep.binding.describe(),
            "artifact_inputs": artifact.input_names,
            "outputs": ref.output_names,
            "artifact_outputs": artifact.output_names,
            "options": to_jsonable(_public_options(artifact.options)),
            "plugin": plugin,
            "details": to_jsonable(artifact.details),
            "notes": notes,
            "timings": timings,
            "sizes": {"total_bytes": sum(v["bytes"] for v in artifact_files.values())},
            "files": files,
            "validation": {
                **validation,
                "tolerance": {"atol": comp.atol, "rtol": comp.rtol} if comp else None,
                "outputs": to_jsonable(comp.outputs) if comp else [],
                "checks": to_jsonable(run.checks) if run else {},
                "runtime": run.runtime if run else None,
            },
            "log": _joined_log(("reference run", reference_log), ("export", log.tail()),
                               ("validation", vlog.tail() if validate else "")),
            "environment": _environment(),
            "exit_code": exit_code,
        }
        if artifact.input_dtypes:
            record["artifact_input_dtypes"] = artifact.input_dtypes
        from modelport.trust import SEAL_KEY, seal

        record[SEAL_KEY] = seal(record, staged.path)  # proves later that modelport wrote this folder here
        write_json_atomic(staged.path / RECORD_FILE, record)
        kept_previous = exit_code == 2 and (target.exists() or target.is_symlink())
        if kept_previous:  # --force never trades a good export for one that failed validation
            staged.target = target.with_name(f"{target.name}.failed")
        final = staged.commit()
        artifact.path = final / Path(artifact.path).relative_to(staged.path)
        if exports_root is not None:
            update_index(exports_root, index_entry(record, final.name))
        error = None
        if status == "failed":
            why = "; ".join(comp.failures) if comp is not None else (note or "")
            error = f"{fmt}: exported to {final} but validation failed: {why}"
            if kept_previous:
                error += f" (the previous export at {target} was kept)"
            if artifact.details.get("validation_hint"):
                error += f" — {artifact.details['validation_hint']}"
        elif status == "inconclusive" and exit_code:
            error = f"{fmt}: exported to {final} but validation was inconclusive: {note}"
            if kept_previous:
                error += f" (the previous export at {target} was kept)"
        return FormatResult(fmt, status, final, artifact, comp, note, error, exit_code, record, md)
    except OSError as exc:
        staged.discard()
        _reraise_if_interrupted(exc)
        where = exc.filename or target.parent
        msg = f"{fmt}: cannot write the export near {target}: {exc.strerror or exc} ({where})"
        return FormatResult(fmt, "error", None, None, None, None, msg, 1, {"debug_traceback": traceback.format_exc()})
    except ModelportError as exc:
        staged.discard()
        _reraise_if_interrupted(exc)
        code = exc.exit_code
        if code == 2:  # exit 2 means "written and kept, but validation failed"; nothing was kept here
            code = 1
        result = FormatResult(fmt, "error", None, None, None, None, str(exc), code)
        captured = locals().get("log")
        result.record = {"debug_traceback": getattr(exc, "debug_traceback", None) or traceback.format_exc(),
                         "log": captured.tail() if isinstance(captured, CapturedOutput) else "",
                         "error_detail": getattr(exc, "detail", None)}
        return result
    finally:
        staged.discard()
        for d in upstream_dirs:
            shutil.rmtree(d, ignore_errors=True)


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
    from modelport import store

    if store.INTERRUPTED:
        raise KeyboardInterrupt from exc


def _public_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options as recorded: run-time settings (threads) left out, values made JSON-safe."""
    return {k: v for k, v in options.items() if k not in ("threads",)}


# ----------------------------------------------------------------------------- re-validate an export dir


def artifact_from_dir(export_dir: Path, record: Mapping[str, Any] | None = None) -> Artifact:
    """Rebuild the Artifact of an existing export folder from its export.json."""
    record = record or read_record(export_dir)
    main = safe_relpath(str(record["artifact"]), "artifact name in export.json")
    files = [safe_relpath(str(f), "file name in export.json") for f in record.get("artifact_files") or [main]]
    return Artifact(
        format=str(record["format"]), path=export_dir / main, files=files,
        precision=str(record.get("precision", "fp32")), details=dict(record.get("details") or {}),
        input_names=record.get("artifact_inputs"), output_names=record.get("artifact_outputs"),
        input_dtypes=record.get("artifact_input_dtypes"), options=dict(record.get("options") or {}),
    )


def verify_files(export_dir: Path, files: Mapping[str, Any]) -> list[str]:
    """Names whose sha256 or size differ from the table (or are missing)."""
    from modelport.store import sha256_file

    bad = []
    for rel, meta in files.items():
        p = export_dir / safe_relpath(rel)
        if not p.is_file():
            bad.append(f"{rel} (missing)")
        elif p.stat().st_size != meta.get("bytes") or sha256_file(p) != meta.get("sha256"):
            bad.append(f"{rel} (sha256 mismatch)")
    return bad


@dataclass
class OpenedExport:
    """An export folder whose files match their recorded sha256 and whose artifact may be loaded here."""

    export_dir: Path
    record: dict[str, Any]
    metadata: dict[str, Any]
    host: PluginHost
    artifact: Artifact


def open_export(export_dir: str | Path, *, host: PluginHost | None = None, trust_code: bool = False,
                changed: type[ModelportError] = ValidationFailed) -> OpenedExport:
    """Read an export folder for re-running its artifact (validate, debug): the record, metadata.json, every
    file checked against its sha256 (``changed`` is raised when one differs), and the trust rules applied —
    an artifact that runs code when loaded needs a folder sealed here or ``trust_code`` (see modelport.trust)."""
    from modelport.metadata import load_metadata
    from modelport.trust import check_export

    export_dir = Path(export_dir)
    record = read_record(export_dir)
    md = load_metadata(export_dir / METADATA_FILE)
    host = host or get_plugin_manager()
    host.require_format(str(record["format"]))
    bad = verify_files(export_dir, {**(record.get("files") or {}), **(md.get("files") or {})})
    if bad:
        raise changed(f"{export_dir}: files changed since export: {', '.join(bad)}")
    artifact = artifact_from_dir(export_dir, record)
    check_export(export_dir, record, artifact.files, trust_code=trust_code, verified=True)
    return OpenedExport(export_dir, record, md, host, artifact)


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
    modelport sealed the folder on this machine or ``trust_code`` is set (see modelport.trust).
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

"""The ``pytorch`` format object: write the state dict with safetensors, rebuild the model from its factory to run it.

Where the factory reference comes from, first match wins:

1. ``-o factory=path/to/file.py:function`` (with ``-o factory_kwargs='{"num_classes": 10}'``);
2. the model reference the export was given (``modelport export models.py:build --model-kwargs ...``), which the
   core passes in ``request.metadata["source"]``;
3. the model's own class, when it lives in an importable module and builds with no arguments.

With none of them (an ``nn.Module`` handed to the Python API whose class cannot be rebuilt by name) the weights are
still written, and validation says in one line why it cannot rebuild the model and what to pass.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport import Artifact, ConfigError, ExportFailed, ExportRequest, ValidationRun
from modelport.engine.outputs import flatten_outputs, to_numpy
from modelport.folder.trust import FACTORY_KEY, read_safetensors_header

from modelport_pytorch import FORMAT, MODEL_FILE

KEY_KWARGS = "modelport.factory_kwargs"
KEY_CALL = "modelport.call"
NO_FACTORY = (f"{FORMAT}: cannot validate by rebuilding the model: it was given as an object with no factory "
              "reference{why}; pass -o factory=path/to/file.py:function (and -o factory_kwargs='{{...}}') to validate it")


# ----------------------------------------------------------------------------- factory references


def _class_reference(model: Any) -> str | None:
    """``module:Class`` for a model whose class can be imported by name, else None."""
    cls = type(model)
    module, qualname = cls.__module__, cls.__qualname__
    if module in ("__main__", "builtins") or module.startswith("_") or "<locals>" in qualname:
        return None
    try:
        if importlib.util.find_spec(module) is None:
            return None
    except (ImportError, ValueError):
        return None
    return f"{module}:{qualname}"


def _is_file_reference(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def _split(reference: str) -> tuple[str, str]:
    target, sep, attr = reference.rpartition(":")
    if not sep or not target or not attr:
        raise ConfigError(f"{FORMAT}: factory {reference!r} is not like path/to/file.py:function or package.module:function")
    return target, attr


def factory_reference(request: ExportRequest) -> tuple[str | None, str | None, dict[str, Any], bool]:
    """(reference as given, reference with an absolute path, kwargs, explicit) — (None, None, {}, False) if unknown."""
    ref = request.options.get("factory")
    kwargs = request.options.get("factory_kwargs")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ConfigError(f"{FORMAT}: factory_kwargs must be a JSON object")
    explicit = bool(ref)
    source = request.metadata.get("source") if isinstance(request.metadata.get("source"), Mapping) else {}
    if not ref and source.get("kind") == "factory" and source.get("reference"):
        ref = str(source["reference"])
        kwargs = kwargs if kwargs is not None else dict(source.get("model_kwargs") or {})
        explicit = True
    if not ref:
        ref = _class_reference(request.model)
    if not ref:
        return None, None, {}, False
    target, attr = _split(ref)
    resolved = ref
    if _is_file_reference(target):
        path = Path(target)
        if not path.is_file():
            raise ConfigError(f"{FORMAT}: factory file {target} does not exist")
        resolved = f"{path.resolve()}:{attr}"
    return ref, resolved, dict(kwargs or {}), explicit


def build_model(reference: str, kwargs: Mapping[str, Any], *, search: tuple[Path, ...] = ()) -> Any:
    """Import the factory named by ``reference`` and call it with ``kwargs`` (the core's loader: a relative file is
    also looked for in ``search``); the nn.Module in eval mode."""
    import torch
    from modelport.models.loading import load_factory

    model = load_factory(reference, kwargs, search=search)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"factory {reference} returned {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def _shapes(model: Any) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _mismatch(want: dict[str, tuple[int, ...]], got: dict[str, tuple[int, ...]]) -> str:
    """``missing: a, b; different shape: c`` for two state-dict shape tables ('' when they agree)."""
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    shape = sorted(k for k in set(want) & set(got) if want[k] != got[k])
    return "; ".join(f"{label}: {', '.join(keys[:3])}" for label, keys in
                     (("missing", missing), ("unexpected", extra), ("different shape", shape)) if keys)


def _checked_factory(request: ExportRequest) -> tuple[str | None, str | None, dict[str, Any], str]:
    """The factory reference, checked by rebuilding the model now (the user's own code, in this run).

    An explicit reference that does not rebuild this model fails the export; a guessed one (the model's class)
    is dropped with the reason, which validation then reports.
    """
    ref, resolved, kwargs, explicit = factory_reference(request)
    if ref is None or resolved is None:
        return None, None, {}, ""
    try:
        fresh = build_model(resolved, kwargs)
        diff = _mismatch(_shapes(request.model), _shapes(fresh))
    except Exception as exc:
        if explicit:
            raise ExportFailed(f"{FORMAT}: factory {ref} cannot rebuild the model: {type(exc).__name__}: {exc}"[:500]) from exc
        return None, None, {}, f" ({ref}() cannot rebuild it: {type(exc).__name__})"
    if diff:
        if explicit:
            raise ExportFailed(f"{FORMAT}: factory {ref} builds a model whose tensors do not match the weights "
                               f"({diff}); check -o factory / -o factory_kwargs")
        return None, None, {}, f" ({ref}() builds other tensors: {diff})"
    return ref, resolved, kwargs, ""


def _call_plan(request: ExportRequest) -> dict[str, list[str]]:
    """How the rebuilt model is called: input names by position and by keyword (a keyword-bound forward)."""
    binding = request.binding
    if binding is None:
        return {"positional": list(request.input_names), "keyword": []}
    return {"positional": list(binding.positional), "keyword": list(binding.keyword)}


def export(request: ExportRequest) -> Artifact:
    """Write the weights with safetensors and the factory reference in its header (never a pickle)."""
    import safetensors
    import safetensors.torch
    from modelport.publishers.publishing import public_path

    ref, resolved, kwargs, why = _checked_factory(request)
    # the artifact and metadata.json get published: an absolute factory path keeps only its file name there, and
    # the full local path stays in export.json's details (reduced the same way when published)
    public = str(public_path(ref)) if ref else None
    path = request.workdir / MODEL_FILE
    header = {"modelport.model_name": request.model_name, KEY_CALL: json.dumps(_call_plan(request))}
    if public:
        header.update({FACTORY_KEY: public, KEY_KWARGS: json.dumps(kwargs, sort_keys=True)})
    safetensors.torch.save_model(request.model, str(path), metadata=header)
    details = {"factory": public, "factory_local": resolved, "factory_kwargs": kwargs if ref else None,
               "state_dict_keys": len(request.model.state_dict()),
               "safetensors": getattr(safetensors, "__version__", None)}
    if not ref:
        details["no_factory"] = NO_FACTORY.format(why=why)
    return Artifact(format=FORMAT, path=path, files=[MODEL_FILE], precision="fp32", details=details)


# ----------------------------------------------------------------------------- running it


class PyTorchRunner:
    """A fresh model from the recorded factory with the saved weights loaded: built once, called many times."""

    def __init__(self, path: Path, threads: int | None, local: str | None = None) -> None:
        import importlib.metadata

        import safetensors.torch
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        meta = read_safetensors_header(path).get("__metadata__") or {}
        if FACTORY_KEY not in meta:
            raise ConfigError(NO_FACTORY.format(why=""))
        kwargs = json.loads(meta.get(KEY_KWARGS) or "{}")
        self.call = json.loads(meta.get(KEY_CALL) or "null")
        # the local path recorded at export time (export.json) while it exists, else the published reference,
        # looked for from here and beside the export
        target = _split(local)[0] if local else ""
        use_local = bool(local) and (not _is_file_reference(target) or Path(target).is_file())
        self.model = build_model(local if use_local and local else meta[FACTORY_KEY], kwargs,
                                 search=(Path.cwd(), path.parent))
        safetensors.torch.load_model(self.model, str(path), strict=True)
        self.model.eval()
        self.runtime = f"safetensors {importlib.metadata.version('safetensors')} + torch {torch.__version__.split('+')[0]}"

    def __call__(self, inputs: Mapping[str, Any]) -> list[Any]:
        import torch

        tensors = {k: torch.from_numpy(v if v.flags.writeable else v.copy()) for k, v in inputs.items()}
        plan = self.call or {"positional": list(tensors), "keyword": []}
        with torch.no_grad():
            out = self.model(*[tensors[n] for n in plan["positional"]], **{n: tensors[n] for n in plan["keyword"]})
        return [to_numpy(t) for _, t in flatten_outputs(out)]


class PyTorchFormat:
    """The ``pytorch`` format object: the core calls these methods for this format only."""

    export = staticmethod(export)

    def load_runner(self, artifact: Artifact, options: Mapping[str, Any]) -> Any:
        """Rebuild the model from its factory and load the weights. The core refuses a folder it did not write
        here before this runs (modelport.folder.trust.check_export), unless --trust-code."""
        local = artifact.details.get("factory_local")
        return PyTorchRunner(Path(artifact.path), options.get("threads"), local if isinstance(local, str) else None)

    def validate(self, artifact: Artifact, inputs: Sequence[Mapping[str, Any]]) -> ValidationRun | None:
        """Structure-only with the reason when no factory was recorded; otherwise the default (load_runner)."""
        header = read_safetensors_header(Path(artifact.path))
        if FACTORY_KEY in (header.get("__metadata__") or {}):
            return None
        tensors = len([k for k in header if k != "__metadata__"])
        reason = artifact.details.get("no_factory") or NO_FACTORY.format(why="")
        return ValidationRun(outputs=None, checks={"safetensors header": f"ok, {tensors} tensors"}, skipped=reason)

    def describe(self, artifact: Artifact, request: ExportRequest | None) -> dict[str, Any]:
        """The factory reference (what rebuilds the model) and the tensor count, under extra_metadata.pytorch."""
        meta = read_safetensors_header(Path(artifact.path)).get("__metadata__") or {}
        return {"extra_metadata": {FORMAT: {
            "factory": meta.get(FACTORY_KEY), "factory_kwargs": json.loads(meta.get(KEY_KWARGS) or "{}"),
            "state_dict_keys": artifact.details.get("state_dict_keys"),
            "load": "model = factory(**factory_kwargs); safetensors.torch.load_model(model, 'model.safetensors')",
        }}}

    def inspect(self, path: Path, options: Mapping[str, Any]) -> dict[str, Any]:
        """Tensor names, dtypes and shapes and the factory, from the header (nothing is imported or run)."""
        header = read_safetensors_header(Path(path))
        meta = header.pop("__metadata__", {}) or {}
        tensors = [{"name": k, "dtype": v["dtype"], "shape": v["shape"]} for k, v in header.items()]
        elements = 0
        for t in tensors:
            n = 1
            for d in t["shape"]:
                n *= d
            elements += n
        return {"format": FORMAT, "path": str(path), "bytes": Path(path).stat().st_size,
                "factory": meta.get(FACTORY_KEY), "factory_kwargs": json.loads(meta.get(KEY_KWARGS) or "{}"),
                "tensors": len(tensors), "elements": elements, "weights": tensors}

"""A third-party modelport plugin built only on modelport's public API: the ``safetensors`` format.

The export is the model's weights in ``model.safetensors`` — no pickle, no code — plus, in the file's own header
metadata, the *factory reference* that rebuilds the architecture (``path/to/models.py:build`` or
``package.module:build``, with keyword arguments). Validation rebuilds a fresh model from that reference, loads the
weights into it (``strict``: every tensor must fit) and lets the core compare its outputs with the original model's.

Where the factory reference comes from, first match wins:

1. ``-o factory=path/to/file.py:function`` (and ``-o factory_kwargs='{"num_classes": 10}'``);
2. the export's recorded source, when the core passes it in ``request.metadata["source"]``;
3. the model's own class, when it lives in an importable module and builds with no arguments
   (``mypkg.models:Net``) — a model loaded from a ``file.py`` is not importable by name, so give ``-o factory``.

The export checks the reference at once: the rebuilt model must have exactly the same tensor names and shapes,
or the export fails with the differences. Note that validating (or loading) such an export imports the factory's
code: only validate exports whose factory you trust.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelport import Artifact, ConfigError, ExportFailed, ExportRequest, FormatSpec, OptionSpec, hookimpl, requires
from modelport.engine.outputs import flatten_outputs, to_numpy

__version__ = "0.1.0"

FORMAT = "safetensors"
MODEL_FILE = "model.safetensors"
FIX = "pip install modelport-export-safetensors"
KEY_FACTORY = "modelport.factory"
KEY_RESOLVED = "modelport.factory_resolved"
KEY_KWARGS = "modelport.factory_kwargs"
KEY_CALL = "modelport.call"

OPTIONS = (
    OptionSpec("factory", "str", None, "how to rebuild the model: path/to/file.py:function or package.module:function "
               "(default: the recorded source, or the model's class when it is importable)"),
    OptionSpec("factory_kwargs", "json", None, "keyword arguments for the factory, as a JSON object"),
)


@hookimpl
def register_formats(register: Any) -> None:
    """Declare ``safetensors``: one file, two options, available when the safetensors package is installed."""
    register(FormatSpec(
        name=FORMAT,
        display_name="safetensors weights + factory",
        files=(MODEL_FILE,),
        options=OPTIONS,
        availability=requires("safetensors", fix=FIX),
        description="model.safetensors with the factory reference in its header; rebuilt and reloaded to validate",
        implementation=SafetensorsFormat,
        suffixes=(".safetensors",),
    ))


# ----------------------------------------------------------------------------- factory references


def _class_reference(model: Any) -> str | None:
    """``module:Class`` for a model whose class can be imported by name, else None."""
    import importlib.util

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


def factory_reference(request: ExportRequest) -> tuple[str, str, dict[str, Any]]:
    """(reference as given, reference with an absolute path, kwargs) for the request's model."""
    ref = request.options.get("factory")
    kwargs = request.options.get("factory_kwargs")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ConfigError(f"{FORMAT}: factory_kwargs must be a JSON object")
    source = request.metadata.get("source") if isinstance(request.metadata.get("source"), Mapping) else {}
    if not ref and source.get("kind") == "factory" and source.get("reference"):
        ref = str(source["reference"])
        kwargs = kwargs if kwargs is not None else dict(source.get("model_kwargs") or {})
    if not ref:
        ref = _class_reference(request.model)
    if not ref:
        raise ConfigError(f"{FORMAT}: cannot tell how to rebuild this model ({type(request.model).__name__} is not "
                          "importable by name); pass -o factory=path/to/file.py:function")
    target, attr = _split(ref)
    resolved = ref
    if _is_file_reference(target):
        path = Path(target)
        if not path.is_file():
            raise ConfigError(f"{FORMAT}: factory file {target} does not exist")
        resolved = f"{path.resolve()}:{attr}"
    return ref, resolved, dict(kwargs or {})


def build_model(reference: str, kwargs: Mapping[str, Any], *, search: tuple[Path, ...] = ()) -> Any:
    """Import the factory named by ``reference`` and call it with ``kwargs``; returns the nn.Module in eval mode."""
    import importlib
    import importlib.util
    import sys

    import torch

    target, attr = _split(reference)
    if _is_file_reference(target):
        candidates = [Path(target)] + [base / target for base in search if not Path(target).is_absolute()]
        file = next((c for c in candidates if c.is_file()), None)
        if file is None:
            raise FileNotFoundError(f"factory file {target} not found (looked in {', '.join(str(c) for c in candidates)})")
        name = f"_modelport_safetensors_{abs(hash(str(file.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str(file.resolve().parent))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.pop(0)
    else:
        module = importlib.import_module(target)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    model = obj(**dict(kwargs))
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"factory {reference} returned {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def _shapes(model: Any) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------- the format object


def export(request: ExportRequest) -> Artifact:
    """Write the weights and the factory reference; check at once that the reference rebuilds this model."""
    import safetensors
    import safetensors.torch

    ref, resolved, kwargs = factory_reference(request)
    try:
        fresh = build_model(resolved, kwargs)
    except Exception as exc:
        raise ExportFailed(f"{FORMAT}: factory {ref} cannot rebuild the model: {type(exc).__name__}: {exc}"[:500]) from exc
    want, got = _shapes(request.model), _shapes(fresh)
    if want != got:
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        shape = sorted(k for k in set(want) & set(got) if want[k] != got[k])
        parts = [f"{label}: {', '.join(keys[:3])}" for label, keys in
                 (("missing", missing), ("unexpected", extra), ("different shape", shape)) if keys]
        raise ExportFailed(f"{FORMAT}: factory {ref} builds a model whose tensors do not match the weights "
                           f"({'; '.join(parts)}); check -o factory / -o factory_kwargs")
    path = request.workdir / MODEL_FILE
    safetensors.torch.save_model(request.model, str(path), metadata={
        KEY_FACTORY: ref, KEY_RESOLVED: resolved, KEY_KWARGS: json.dumps(kwargs, sort_keys=True),
        "modelport.model_name": request.model_name, KEY_CALL: json.dumps(_call_plan(request)),
    })
    return Artifact(
        format=FORMAT, path=path, files=[MODEL_FILE], precision="fp32",
        details={"factory": ref, "factory_resolved": resolved, "factory_kwargs": kwargs, "state_dict_keys": len(want),
                 "safetensors": getattr(safetensors, "__version__", None)},
    )


def _call_plan(request: ExportRequest) -> dict[str, list[str]]:
    """How the rebuilt model is called: input names by position and by keyword (a keyword-bound forward)."""
    binding = request.binding
    if binding is None:
        return {"positional": list(request.input_names), "keyword": []}
    return {"positional": list(binding.positional), "keyword": list(binding.keyword)}


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header of a .safetensors file (tensor names, dtypes, shapes, metadata) — no torch needed."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: too short to be a safetensors file")
        (size,) = struct.unpack("<Q", raw)
        if size > 100 * 1024 * 1024:
            raise ValueError(f"{path}: implausible safetensors header size {size}")
        return json.loads(f.read(size))


class SafetensorsRunner:
    """A fresh model from the recorded factory with the saved weights loaded: built once, called many times."""

    def __init__(self, path: Path, threads: int | None) -> None:
        import importlib.metadata

        import safetensors.torch
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        meta = read_header(path).get("__metadata__") or {}
        if KEY_FACTORY not in meta:
            raise ExportFailed(f"{FORMAT}: {path.name} records no factory reference; re-export it with this plugin")
        kwargs = json.loads(meta.get(KEY_KWARGS) or "{}")
        self.call = json.loads(meta.get(KEY_CALL) or "null")
        try:  # the absolute path recorded at export time, else the reference as given, from here or the export
            self.model = build_model(meta.get(KEY_RESOLVED) or meta[KEY_FACTORY], kwargs)
        except FileNotFoundError:
            self.model = build_model(meta[KEY_FACTORY], kwargs, search=(Path.cwd(), path.parent))
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


class SafetensorsFormat:
    """The ``safetensors`` format object: the core calls these methods for this format only (no format guards)."""

    export = staticmethod(export)

    def load_runner(self, artifact: Artifact, options: Mapping[str, Any]) -> Any:
        """Rebuild the model from its factory and load the weights (the core validates and benchmarks with it)."""
        return SafetensorsRunner(Path(artifact.path), options.get("threads"))


    def describe(self, artifact: Artifact, request: ExportRequest | None) -> dict[str, Any]:
        """The factory reference and tensor count, under extra_metadata.safetensors."""
        return describe(artifact)

    def inspect(self, path: Path, options: Mapping[str, Any]) -> dict[str, Any]:
        """Tensor names, dtypes and shapes from the header, for ``modelport inspect model.safetensors``."""
        return inspect(Path(path))


def describe(artifact: Artifact) -> dict[str, Any]:
    """The factory reference and tensor count, under extra_metadata.safetensors."""
    meta = read_header(Path(artifact.path)).get("__metadata__") or {}
    return {"extra_metadata": {FORMAT: {
        "factory": meta.get(KEY_FACTORY), "factory_kwargs": json.loads(meta.get(KEY_KWARGS) or "{}"),
        "state_dict_keys": artifact.details.get("state_dict_keys"),
        "load": "safetensors.torch.load_model(factory(**factory_kwargs), 'model.safetensors')",
    }}}


def inspect(path: Path) -> dict[str, Any]:
    """Tensor names, dtypes and shapes from the header, for ``modelport inspect model.safetensors``."""
    header = read_header(path)
    meta = header.pop("__metadata__", {}) or {}
    tensors = [{"name": k, "dtype": v["dtype"], "shape": v["shape"]} for k, v in header.items()]
    count = 0
    for t in tensors:
        n = 1
        for d in t["shape"]:
            n *= d
        count += n
    return {"format": FORMAT, "path": str(path), "bytes": path.stat().st_size, "factory": meta.get(KEY_FACTORY),
            "factory_kwargs": json.loads(meta.get(KEY_KWARGS) or "{}"), "tensors": len(tensors),
            "elements": count, "weights": tensors}

"""Format objects: a plugin's ``FormatSpec(implementation=...)`` that the core calls directly, no per-hook guards.

:class:`FormatDispatch` is a core plugin registered in every host: it answers the per-format hooks (``export``,
``load_runner``, ``validate``, ``inspect_artifact``, ``load_intermediates``) by calling the owning format object.
Because dispatch still runs through the hooks, hook wrappers around ``export`` (examples/modelport-onnx-stamp)
keep wrapping format objects, and old-style hook plugins answer their formats as before.
"""

from __future__ import annotations

import dataclasses
import importlib
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from modelport.plugins.host import PluginHost
    from modelport.plugins.types import Artifact, ExportRequest

#: The methods a format object may define; ``export`` and ``load_runner`` are required.
REQUIRED_METHODS = ("export", "load_runner")
OPTIONAL_METHODS = ("validate", "describe", "inspect", "load_intermediates")


def resolve(implementation: Any) -> Any:
    """The format object for a spec's ``implementation``: imports a ``"module:Attr"`` reference, builds a class."""
    obj = implementation
    if isinstance(obj, str):
        module, sep, attr = obj.partition(":")
        if not sep or not module or not attr:
            raise ValueError(f"implementation {obj!r} is not like 'package.module:Class'")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    return obj() if isinstance(obj, type) else obj


class FormatDispatch:
    """Answers the per-format hooks for formats registered with an implementation."""

    def __init__(self, host: PluginHost) -> None:
        self._host = weakref.ref(host)

    def _method(self, fmt: str, name: str) -> Any:
        host = self._host()
        obj = host.format_object(fmt) if host is not None else None
        fn = getattr(obj, name, None) if obj is not None else None
        if fn is not None and host is not None:
            trace_method(host, fmt, obj, name)
        return fn

    @hookimpl
    def export(self, request: ExportRequest) -> Artifact | None:
        fn = self._method(request.format, "export")
        return fn(unbound(request)) if fn else None

    @hookimpl
    def load_runner(self, artifact: Artifact, options: Mapping[str, Any]) -> Any:
        fn = self._method(artifact.format, "load_runner")
        return fn(artifact, options) if fn else None

    @hookimpl
    def validate(self, artifact: Artifact, inputs: Sequence[Mapping[str, Any]]) -> Any:
        fn = self._method(artifact.format, "validate")
        return fn(artifact, inputs) if fn else None

    @hookimpl
    def load_intermediates(self, artifact: Artifact, options: Mapping[str, Any]) -> Any:
        fn = self._method(artifact.format, "load_intermediates")
        return fn(artifact, options) if fn else None

    @hookimpl
    def inspect_artifact(self, path: Path, options: Mapping[str, Any]) -> dict[str, Any] | None:
        host = self._host()
        if host is None:
            return None
        suffix = Path(path).suffix.lower()  # model.ONNX is an ONNX file too
        for name, (spec, _) in host.formats.items():
            if spec.implementation is not None and suffix and suffix in {s.lower() for s in spec.suffixes}:
                fn = self._method(name, "inspect")
                result = fn(Path(path), options) if fn else None
                if result is not None:
                    return dict(result)
        return None


def trace_method(host: PluginHost, fmt: str, obj: Any, name: str) -> None:
    """With ``MODELPORT_TRACE_PLUGINS``, name the format object method about to be called (under its hook's line)."""
    if host.tracer is not None:
        cls = type(obj)
        print(f"modelport trace:   {fmt}: format object {cls.__module__}:{cls.__qualname__}.{name}",
              file=host.tracer.out, flush=True)


def unbound(request: ExportRequest) -> ExportRequest:
    """The request with the user's own module in ``model``: a keyword-bound model arrives wrapped for hooks."""
    model = request.model
    binding = getattr(model, "_modelport_binding", None)
    if binding is None:
        return request
    return dataclasses.replace(request, model=model.model, binding=binding, _positional=model)


def missing_methods(obj: Any) -> list[str]:
    """The required format-object methods ``obj`` lacks (the conformance kit checks this)."""
    return [m for m in REQUIRED_METHODS if not callable(getattr(obj, m, None))]

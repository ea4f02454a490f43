"""modelport: turn a trained PyTorch model into deployable artifacts, each proven equal to the model.

Plugin authors need only this namespace::

    import modelport

    @modelport.hookimpl
    def register_formats(register):
        register(modelport.FormatSpec(name="myfmt", display_name="My format", files=("model.my",)))

Heavy things (torch, the pipeline) load on first use, so importing modelport is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelport import aliases
from modelport.engine.inputs import InputSpec, TensorSpec, text, vision
from modelport.errors import (
    ConfigError,
    ExportFailed,
    ModelLoadError,
    ModelportError,
    PluginContractError,
    PublishError,
    ValidationFailed,
)
from modelport.models.sources import ResolvedModel, SourceRequest, SourceSpec
from modelport.plugins.catalog import install_hint
from modelport.plugins.hookspecs import NAME, hookimpl, hookspec
from modelport.plugins.types import (
    Artifact,
    Availability,
    ExportRequest,
    FormatSpec,
    GraphNode,
    IntermediateRunner,
    ModelEntry,
    OptionSpec,
    PublishedExport,
    PublisherSpec,
    PublishResult,
    PullResult,
    Runner,
    Target,
    ValidationRun,
    missing_modules,
    requires,
)
from modelport.version import __version__

aliases.install()  # wave 1's flat module names answer with the moved modules (see modelport.aliases)

__all__ = [
    "NAME", "Artifact", "Availability", "ConfigError", "ExportFailed", "ExportRequest", "FormatSpec", "GraphNode", "InputSpec",
    "IntermediateRunner", "ModelEntry", "ModelLoadError", "ModelportError", "NMSConfig", "OptionSpec", "PluginContractError",
    "PublishError", "PublishResult", "PublishedExport", "PublisherSpec", "PullResult", "ResolvedModel", "Runner", "SourceRequest", "SourceSpec", "Target", "TensorSpec",
    "ValidationFailed", "ValidationRun", "__version__", "debug", "export", "flatten_outputs", "formats", "get_plugin_manager",
    "hookimpl", "hookspec", "install_hint", "missing_modules", "publish", "pull", "requires", "resolve", "text", "to_numpy", "validate",
    "vision",
]

if TYPE_CHECKING:  # pragma: no cover
    from modelport.api import debug, export, formats, publish, pull, resolve, validate
    from modelport.engine.nms import NMSConfig
    from modelport.engine.outputs import flatten_outputs, to_numpy
    from modelport.plugins.host import get_plugin_manager

_LAZY = {
    "export": "modelport.api", "validate": "modelport.api", "publish": "modelport.api", "pull": "modelport.api",
    "formats": "modelport.api", "get_plugin_manager": "modelport.plugins", "debug": "modelport.api",
    "resolve": "modelport.api",
    "flatten_outputs": "modelport.engine.outputs", "to_numpy": "modelport.engine.outputs", "NMSConfig": "modelport.engine.nms",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'modelport' has no attribute {name!r}")

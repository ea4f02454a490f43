"""modelport plugin for ONNX: export with torch.onnx (dynamo exporter first), simplify with onnxslim, optionally
convert to fp16 or quantize to int8, keep each node's PyTorch module path, and run the result in onnxruntime.

This module imports nothing heavy: torch, onnx, onnxruntime and onnxslim are imported inside the hooks, so
``modelport formats`` stays fast. The work lives in ``export.py`` (writing), ``runtime.py`` (running and
checking), ``describe.py`` (metadata.json and ``modelport inspect``) and ``hierarchy.py`` (module paths).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport import (
    Artifact,
    Availability,
    ExportRequest,
    FormatSpec,
    OptionSpec,
    ValidationRun,
    hookimpl,
    install_hint,
    missing_modules,
)

__version__ = "0.1.0"

FORMAT = "onnx"
MODEL_FILE = "model.onnx"
DATA_FILE = "model.onnx.data"
# The protobuf limit is 2 GiB for the whole serialized model; weights above this leave room for the graph.
DEFAULT_EXTERNAL_DATA_THRESHOLD = 2_000_000_000
FIX = install_hint("modelport-export-onnx")

OPTIONS = (
    OptionSpec("exporter", "choice", "auto", "torch.onnx exporter: dynamo (torch.export based), legacy (TorchScript "
               "tracer), or auto (dynamo, falling back to legacy when dynamo refuses the model; recorded)",
               choices=("auto", "dynamo", "legacy")),
    OptionSpec("opset", "int", None, "ONNX opset to write (default: the exporter's own; the opset written is recorded)"),
    OptionSpec("simplify", "bool", True, "simplify with onnxslim; a failure warns and keeps the unsimplified model"),
    OptionSpec("external_data", "choice", "auto", "auto: one model.onnx.data beside model.onnx when the weights exceed "
               "external_data_threshold, a single file otherwise; always / never force it",
               choices=("auto", "always", "never")),
    OptionSpec("external_data_threshold", "int", DEFAULT_EXTERNAL_DATA_THRESHOLD,
               "weight bytes above which external_data=auto writes model.onnx.data (protobuf caps a file at 2 GiB)"),
    OptionSpec("fp16", "bool", False, "float16 weights and compute, float32 inputs and outputs kept"),
    OptionSpec("quantize", "choice", "none", "int8 with onnxruntime.quantization: dynamic (weights only, no data "
               "needed) or static (QDQ, calibrated on --sample-inputs)", choices=("none", "dynamic", "static"),
               tune=("none", "dynamic", "static")),
    OptionSpec("int8", "bool", False, "shorthand of the export convention: quantize=static when --sample-inputs "
               "are given, quantize=dynamic otherwise"),
    OptionSpec("hierarchy", "bool", True, "keep each node's PyTorch module path in its metadata_props "
               "(pkg.modelport.module), through simplification and quantization"),
    OptionSpec("embed_metadata", "bool", True, "copy the model's metadata (name, task, class names, preprocessing) "
               "into the ONNX metadata_props"),
)


def availability() -> Availability:
    """Export needs onnx + onnxscript (+ onnxslim); running the artifact needs onnxruntime — found without importing."""
    missing = missing_modules("onnx", "onnxscript", "onnxslim")
    if missing:
        return Availability.unavailable(f"missing Python module(s): {', '.join(missing)}", fix=FIX)
    if missing_modules("onnxruntime"):
        return Availability(export=True, validate=False, validate_reason="onnxruntime is not installed", fix=FIX)
    return Availability.ok()


@hookimpl
def register_formats(register: Any) -> None:
    register(FormatSpec(
        name=FORMAT,
        display_name="ONNX",
        files=(MODEL_FILE, DATA_FILE + "?"),
        options=OPTIONS,
        availability=availability,
        description="ONNX model run with onnxruntime; model.onnx (+ model.onnx.data over the 2 GB protobuf limit)",
        config_aliases={"opset_version": "opset", "half": "fp16"},
    ))


@hookimpl
def export(request: ExportRequest) -> Artifact | None:
    if request.format != FORMAT:
        return None
    from modelport_onnx.export import export_onnx

    return export_onnx(request)


@hookimpl
def load_runner(artifact: Artifact, options: Mapping[str, Any]) -> Any:
    if artifact.format != FORMAT:
        return None
    from modelport_onnx.runtime import OnnxRunner

    return OnnxRunner(artifact.path, threads=options.get("threads"))


@hookimpl
def load_intermediates(artifact: Artifact, options: Mapping[str, Any]) -> Any:
    """Module-boundary tensors for ``modelport debug``, found through each node's module path."""
    if artifact.format != FORMAT:
        return None
    from modelport_onnx.intermediates import load

    return load(artifact, options)


@hookimpl
def validate(artifact: Artifact, inputs: Sequence[Mapping[str, Any]]) -> ValidationRun | None:
    if artifact.format != FORMAT:
        return None
    from modelport_onnx.runtime import validate_artifact

    return validate_artifact(artifact, inputs)


@hookimpl
def describe_metadata(artifact: Artifact, request: ExportRequest | None) -> dict[str, Any] | None:
    if artifact.format != FORMAT:
        return None
    from modelport_onnx.describe import describe_for_metadata

    return describe_for_metadata(artifact)


@hookimpl
def inspect_artifact(path: Path, options: Mapping[str, Any]) -> dict[str, Any] | None:
    if Path(path).suffix.lower() != ".onnx":
        return None
    from modelport_onnx.describe import inspect_file

    return inspect_file(Path(path), by_module=bool(options.get("by_module")), module=options.get("module"), options=options)

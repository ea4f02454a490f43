"""modelport plugin for ONNX: export with torch.onnx (dynamo exporter first), simplify with onnxslim, optionally
convert to fp16 or quantize to int8, keep each node's PyTorch module path, and run the result in onnxruntime.

This module only declares the format; the core imports the format object (``format.py``: ``OnnxFormat``) on first
use, and it imports torch, onnx, onnxruntime and onnxslim inside its methods, so ``modelport formats`` stays fast.
The work lives in ``export.py`` (writing), ``runtime.py`` (running and checking), ``describe.py`` (metadata.json
and ``modelport inspect``) and ``hierarchy.py`` (module paths).
"""

from __future__ import annotations

from typing import Any

from modelport import Availability, FormatSpec, OptionSpec, hookimpl, install_hint, missing_modules

__version__ = "0.1.0"

FORMAT = "onnx"
MODEL_FILE = "model.onnx"
DATA_FILE = "model.onnx.data"
# The protobuf limit is 2 GiB for the whole serialized model; weights above this leave room for the graph.
DEFAULT_EXTERNAL_DATA_THRESHOLD = 2_000_000_000
FIX = install_hint("modelport-export-onnx")
# for model cards: runs {path} on a numpy dict `inputs`
USAGE = ('import onnxruntime as ort\n\nsession = ort.InferenceSession("{path}")\n'
         "outputs = session.run(None, inputs)")

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
    OptionSpec("calibration_size", "int", None, "quantize=static calibrates on at most this many --sample-inputs items "
               "(default: all of them)", tune=(32, 128, 512), tune_when={"quantize": ("static",)}, calibration=True),
    OptionSpec("graph_opt", "choice", "all", "onnxruntime graph optimization level the session is created with "
               "(recorded: validate and bench reload it the same way)", choices=("disable", "basic", "extended", "all"),
               tune=("extended", "all"), runtime=True),  # `all` adds NCHWc layout changes: faster or not per model
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
    """Declare ``onnx``; its format object loads on first use."""
    register(FormatSpec(
        name=FORMAT,
        display_name="ONNX",
        files=(MODEL_FILE, DATA_FILE + "?"),
        options=OPTIONS,
        availability=availability,
        description="ONNX model run with onnxruntime; model.onnx (+ model.onnx.data over the 2 GiB protobuf limit)",
        config_aliases={"opset_version": "opset", "half": "fp16"},
        implementation="modelport_onnx.format:OnnxFormat",
        suffixes=(".onnx",),
        usage=USAGE,
        runtime_library="onnxruntime",
        hub_library="onnx",
    ))

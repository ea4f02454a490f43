"""modelport plugin for TensorRT: build an engine from the ONNX artifact the core exports, run it on the GPU.

The engine is built from ``request.upstream("onnx", ...)`` — the ONNX plugin's artifact, never its code — with
TensorRT's ONNX parser and builder (fp16, int8 calibrated on ``--sample-inputs``, shape profiles from the input
spec, workspace, optimization level, timing cache, device). ``model.engine`` holds exactly the bytes TensorRT
serialized: metadata goes to metadata.json only, so ``trtexec --loadEngine`` and any TensorRT runtime load it.

TensorRT is the ``[runtime]`` extra (its wheels come from NVIDIA's index); without it, or without a CUDA device,
the format is listed as unavailable with the reason. This module only declares the format and imports nothing
heavy: the availability check imports TensorRT in a subprocess (cached), the format object (``format.py``:
``TensorRTFormat``) loads on first use, and the work lives in ``export.py`` (options, upstream ONNX),
``build.py`` (parser, builder, calibrator), ``runtime.py`` (runner, metadata, inspect) and ``profiles.py``
(shape profiles, pure).
"""

from __future__ import annotations

from typing import Any

from modelport import Availability, FormatSpec, OptionSpec, hookimpl

__version__ = "0.1.0"

FORMAT = "tensorrt"
ENGINE_FILE = "model.engine"
CALIBRATION_FILE = "calibration.cache"
DEFAULT_OPSET = 18
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
# for model cards: loads {path} (a numpy dict `inputs` is defined before it)
USAGE = ('import tensorrt as trt\n\nruntime = trt.Runtime(trt.Logger(trt.Logger.WARNING))\n'
         'with open("{path}", "rb") as f:\n    engine = runtime.deserialize_cuda_engine(f.read())'
         "  # same GPU model and TensorRT version only")

OPTIONS = (
    OptionSpec("fp16", "bool", False, "let TensorRT pick fp16 kernels (validated with the fp16 tolerance profile)"),
    OptionSpec("int8", "bool", False, "int8 post-training quantization calibrated on --sample-inputs "
               "(IInt8EntropyCalibrator2; the calibration cache is written as calibration.cache next to the engine)"),
    OptionSpec("calibration_cache", "path", None, "reuse an int8 calibration cache instead of calibrating "
               "(then --sample-inputs is not needed)"),
    OptionSpec("workspace", "float", None, "builder workspace limit in GiB (default: TensorRT's, the device memory)"),
    OptionSpec("max_batch", "int", None, "largest batch of a dynamic batch axis (default 32, or the example batch "
               "when larger)"),
    OptionSpec("min_shape", "str", None, "smallest shape per dynamic input, e.g. input:1x3x32x32[,other:1x16] "
               "(default: 1 on every dynamic axis)"),
    OptionSpec("opt_shape", "str", None, "shape TensorRT tunes for, per dynamic input (default: the example shape)"),
    OptionSpec("max_shape", "str", None, "largest shape per dynamic input (default: max_batch on the batch axis, "
               "the example size on other dynamic axes)"),
    OptionSpec("builder_optimization_level", "int", None, "0 (fast build) .. 5 (longest search); TensorRT's "
               "default is 3"),
    OptionSpec("timing_cache", "path", None, "timing cache file: read when it exists, written back after the "
               "build (speeds up rebuilds on the same GPU)"),
    OptionSpec("device", "int", 0, "CUDA device index to build on (engines are specific to that GPU model)"),
    OptionSpec("opset", "int", DEFAULT_OPSET, "ONNX opset of the upstream ONNX export (18 is the lowest the dynamo "
               "exporter writes and every TensorRT 10 release parses)"),
    OptionSpec("simplify", "bool", True, "simplify the upstream ONNX with onnxslim before parsing"),
    OptionSpec("exporter", "choice", "auto", "torch.onnx exporter for the upstream ONNX: auto, dynamo or legacy",
               choices=("auto", "dynamo", "legacy")),
)


def availability() -> Availability:
    """TensorRT importable (checked in a cached subprocess), a CUDA device present, torch able to use it."""
    from modelport_tensorrt.probe import tensorrt_availability

    return tensorrt_availability()


@hookimpl
def register_formats(register: Any) -> None:
    """Declare ``tensorrt`` (built from ``onnx``); its format object loads on first use."""
    register(FormatSpec(
        name=FORMAT,
        display_name="TensorRT",
        files=(ENGINE_FILE, CALIBRATION_FILE + "?"),
        options=OPTIONS,
        availability=availability,
        upstream=("onnx",),
        needs_gpu=True,
        description="TensorRT engine built from the ONNX export; runs only on the GPU model and TensorRT version "
                    "that built it",
        config_aliases={"opset_version": "opset", "half": "fp16", "workspace_size": "workspace", "batch": "max_batch"},
        implementation="modelport_tensorrt.format:TensorRTFormat",
        suffixes=ENGINE_SUFFIXES,
        usage=USAGE,
        runtime_library="tensorrt",
    ))

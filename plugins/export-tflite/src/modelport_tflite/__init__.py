"""modelport format ``tflite``: a LiteRT (TFLite) flatbuffer converted by litert-torch, run in ai-edge-litert.

This module only declares the format; the format object (``format.py``: ``TFLiteFormat``) loads on first use.
litert-torch (which loads torch, JAX and the LiteRT converter) is imported inside the export, ai-edge-litert inside
the runner, so ``modelport formats`` stays fast.
"""

from __future__ import annotations

from typing import Any

from modelport import (
    Availability,
    FormatSpec,
    OptionSpec,
    hookimpl,
    install_hint,
    missing_modules,
)

FORMAT = "tflite"
FILE = "model.tflite"
FIX = install_hint("modelport-export-tflite")
# for model cards: runs {path} on a numpy dict `inputs`
USAGE = ("from ai_edge_litert.interpreter import Interpreter\n\n"
         'interpreter = Interpreter(model_path="{path}")\nrunner = interpreter.get_signature_runner()\n'
         "outputs = runner(**inputs)")

LAYOUTS = ("nchw", "nhwc")
QUANTIZE = ("none", "dynamic_int8", "fp16")
PRECISION = {"none": "fp32", "dynamic_int8": "int8", "fp16": "fp16"}


def availability() -> Availability:
    """Export needs litert-torch and ai-edge-litert; found with find_spec, never imported here."""
    missing = missing_modules("litert_torch", "ai_edge_litert")
    if not missing:
        return Availability.ok()
    if "ai_edge_litert" not in missing:
        return Availability(export=False, validate=True, reason="missing Python module(s): litert_torch", fix=FIX)
    return Availability.unavailable(f"missing Python module(s): {', '.join(missing)}", fix=FIX)


@hookimpl
def register_formats(register: Any) -> None:
    """Declare ``tflite``; its format object loads on first use."""
    register(FormatSpec(
        name=FORMAT,
        display_name="TFLite (LiteRT)",
        files=(FILE,),
        options=(
            OptionSpec("layout", "choice", "nchw", "layout of 4-D float inputs in the flatbuffer: nchw as in PyTorch, "
                       "or nhwc (channels last, what most TFLite image pipelines feed)", choices=LAYOUTS),
            OptionSpec("quantize", "choice", "none", "none (fp32), dynamic_int8 (int8 weights, activations quantized "
                       "at run time) or fp16 (fp16 weights, fp32 compute)", choices=QUANTIZE),
        ),
        availability=availability,
        description="LiteRT flatbuffer from litert-torch (no TensorFlow); fixed shapes; validated in ai-edge-litert",
        config_aliases={"quantization": "quantize", "data_format": "layout"},
        implementation="modelport_tflite.format:TFLiteFormat",
        suffixes=(".tflite",),
        usage=USAGE,
        runtime_library="ai-edge-litert",
        hub_library="tflite",
    ))

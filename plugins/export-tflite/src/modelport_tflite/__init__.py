"""modelport format ``tflite``: a LiteRT (TFLite) flatbuffer converted by litert-torch, run in ai-edge-litert.

This module imports nothing heavy: litert-torch (which loads torch, JAX and the LiteRT converter) is imported
inside the export hook, ai-edge-litert inside the runner, so ``modelport formats`` stays fast.
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
    ValidationFailed,
    ValidationRun,
    hookimpl,
    install_hint,
    missing_modules,
)

FORMAT = "tflite"
FILE = "model.tflite"
FIX = install_hint("modelport-export-tflite")

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
    ))


@hookimpl
def export(request: ExportRequest) -> Artifact | None:
    if request.format != FORMAT:
        return None
    from modelport_tflite.convert import export_tflite

    return export_tflite(request)


@hookimpl
def load_runner(artifact: Artifact, options: Mapping[str, Any]) -> Any:
    if artifact.format != FORMAT:
        return None
    from modelport_tflite.runtime import TFLiteRunner

    return TFLiteRunner(artifact.path, artifact.details, options.get("threads"))


@hookimpl
def load_intermediates(artifact: Artifact, options: Mapping[str, Any]) -> Any:
    """Module-boundary tensors of a ``tflite`` flatbuffer for ``modelport debug`` (preserve-all-tensors mode)."""
    if artifact.format != FORMAT:
        return None
    from modelport_tflite.intermediates import TFLiteIntermediates

    return TFLiteIntermediates(artifact.path, artifact.details, options.get("modules") or {}, options.get("threads"))


@hookimpl
def validate(artifact: Artifact, inputs: Sequence[Mapping[str, Any]]) -> ValidationRun | None:
    """Run every input set in the interpreter and record how batches other than the flatbuffer's were run."""
    if artifact.format != FORMAT:
        return None
    from modelport_tflite.runtime import TFLiteRunner

    runner = TFLiteRunner(artifact.path, artifact.details, artifact.options.get("threads"))
    try:
        outputs = [list(runner(dict(s))) for s in inputs]
    except (ValueError, RuntimeError) as exc:
        raise ValidationFailed(f"tflite: the flatbuffer failed to run: {exc}"[:800]) from exc
    return ValidationRun(outputs=outputs, checks=runner.checks(), runtime=runner.runtime)


@hookimpl
def describe_metadata(artifact: Artifact, request: ExportRequest | None) -> dict[str, Any] | None:
    if artifact.format != FORMAT:
        return None
    d = artifact.details
    inputs = d.get("inputs") or {}
    out: dict[str, Any] = {}
    if inputs:
        # the flatbuffer's real, fixed shapes (channels-last where layout=nhwc): what a consumer must feed
        out["input_shape"] = {n: list(v["shape"]) for n, v in inputs.items()}
    out["extra_metadata"] = {"tflite": {
        "converter": d.get("converter"),
        "layout": d.get("layout"),
        "quantize": d.get("quantize"),
        "signature": d.get("signature"),
        "inputs": d.get("inputs"),
        "outputs": d.get("outputs"),
        "batch": d.get("batch"),
    }}
    return out


@hookimpl
def inspect_artifact(path: Path, options: Mapping[str, Any]) -> dict[str, Any] | None:
    if path.suffix != ".tflite" or not path.is_file():
        return None
    from modelport_tflite.runtime import describe_flatbuffer

    return describe_flatbuffer(path)

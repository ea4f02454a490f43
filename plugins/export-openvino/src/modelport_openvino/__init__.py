"""modelport plugin: OpenVINO IR (``model.xml`` + ``model.bin``) converted straight from the ``nn.Module``.

Format ``openvino``. The model goes through ``openvino.convert_model`` with the example inputs (under
``torch.no_grad()``) and the core's input spec: every axis the spec marks dynamic becomes ``-1`` in the IR.

Precision is two separate things in OpenVINO, and both are recorded:

* ``precision=fp32|fp16|bf16`` is the *inference precision hint* the runtime is compiled with. On CPUs with
  AVX512-BF16/AMX OpenVINO picks bf16 by default, which moves logits by ~1e-2 and would fail an fp32 check, so
  an fp32 export is always run with ``INFERENCE_PRECISION_HINT=f32``; a bf16/fp16 export is validated against the
  core's bf16/fp16 tolerance.
* ``compress_weights=fp16|none`` is how the weights are stored in ``model.bin``. ``openvino.save_model``
  compresses to fp16 unless told not to; here the default (``auto``) stores what the user asked for: none for
  fp32, fp16 for fp16/bf16.

``int8=true`` runs NNCF post-training quantization calibrated on the user's ``--sample-inputs``. Calibrating
on random data is refused (exit 3) unless ``allow_random_calibration=true``, because int8 accuracy measured
after random calibration means nothing.

This module only declares the format; the format object (``format.py``: ``OpenVINOFormat``) loads on first use
and imports openvino, nncf and torch inside its functions, so ``modelport formats`` stays fast.
"""

from __future__ import annotations

from typing import Any

from modelport import FormatSpec, OptionSpec, hookimpl, install_hint, requires

FORMAT = "openvino"
XML = "model.xml"
BIN = "model.bin"
PRECISIONS = ("fp32", "fp16", "bf16")
HINTS = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}
COMPRESSION = ("auto", "fp16", "none")
MODEL_TYPES = ("auto", "cnn", "transformer")
PERFORMANCE_HINTS = ("latency", "throughput")
INSTALL = install_hint("modelport-export-openvino")
RT_KEY = "modelport"

RANDOM_CALIBRATION_REFUSED = (
    "openvino: int8=true calibrates on real inputs and none were given: pass --sample-inputs FILE.npz "
    "(a few hundred real samples, one array per input), or -o allow_random_calibration=true to calibrate on "
    "random data (int8 accuracy after random calibration means nothing)"
)
# for model cards: runs {path} on a numpy dict `inputs`
USAGE = ('import openvino as ov\n\nmodel = ov.Core().compile_model("{path}", "CPU")\n'
         "outputs = model(inputs)")


@hookimpl
def register_formats(register: Any) -> None:
    """Declare the ``openvino`` format; available when the openvino package is installed."""
    register(FormatSpec(
        name=FORMAT,
        display_name="OpenVINO IR",
        files=(XML, BIN),
        options=(
            OptionSpec("precision", "choice", "fp32", "inference precision hint the runtime compiles with "
                       "(fp32 → f32: exact; bf16/fp16: faster on CPUs that have them)", choices=PRECISIONS,
                       tune=("fp32", "bf16")),
            OptionSpec("compress_weights", "choice", "auto", "weights in model.bin: fp16 or none (float32); "
                       "auto = none for fp32, fp16 for fp16/bf16", choices=COMPRESSION),
            OptionSpec("int8", "bool", False, "NNCF post-training int8 quantization, calibrated on --sample-inputs",
                       tune=(False, True)),  # issue 18: the fastest CPU artifact, so `modelport optimize` tries it
            OptionSpec("calibration_size", "int", 300, "at most this many samples are used for int8 calibration",
                       tune=(32, 128, 512), tune_when={"int8": (True,)}, calibration=True),  # optimize: only with int8
            OptionSpec("allow_random_calibration", "bool", False,
                       "let int8 calibrate on random inputs when no --sample-inputs are given (accuracy unknown)"),
            OptionSpec("int8_model_type", "choice", "auto", "NNCF model type: transformer keeps attention "
                       "more precise; auto = transformer when the graph has Softmax", choices=MODEL_TYPES),
            OptionSpec("performance_hint", "choice", "latency", "OpenVINO PERFORMANCE_HINT the IR is compiled with: "
                       "latency (one request at a time) or throughput (parallel streams); recorded, so validate and "
                       "bench compile it the same way", choices=PERFORMANCE_HINTS, tune=PERFORMANCE_HINTS, runtime=True),
            OptionSpec("device", "str", "CPU", "OpenVINO device to validate and run on (CPU, GPU, NPU, AUTO...)"),
        ),
        availability=requires("openvino", fix=INSTALL),
        description="OpenVINO IR; run with openvino.Core().compile_model('model.xml', 'CPU')",
        implementation="modelport_openvino.format:OpenVINOFormat",
        suffixes=(".xml",),  # inspect: only an IR (<net ...>), not any XML file
        usage=USAGE,
        runtime_library="openvino",
        hub_library="openvino",
    ))

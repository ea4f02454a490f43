"""modelport format ``coreml``: a Core ML ML Program package (``model.mlpackage/``) converted by coremltools.

Core ML runs models only on Apple platforms ("Model prediction is only supported on macOS"). On Linux this
plugin exports, and its validate hook checks the package's structure (reload, input/output names, shapes and
dtypes against the export request, op histogram, compute precision); on macOS the same hook runs ``predict`` and
hands the outputs to the core's numeric comparison. This module only declares the format; the format object
(``format.py``: ``CoreMLFormat``) loads on first use, and coremltools (which imports torch) inside its methods only.
"""

from __future__ import annotations

import sys
from typing import Any

from modelport import (
    Availability,
    FormatSpec,
    OptionSpec,
    hookimpl,
    install_hint,
    missing_modules,
)

FORMAT = "coreml"
PACKAGE = "model.mlpackage"
FIX = install_hint("modelport-export-coreml")
STRUCTURE_ONLY = "structure checked; numeric check needs macOS"
# for model cards: runs {path} on a numpy dict `inputs`
USAGE = ('import coremltools as ct\n\nmodel = ct.models.MLModel("{path}")\n'
         "outputs = model.predict(inputs)  # macOS only")

PRECISIONS = ("fp32", "fp16")
# ML Program needs iOS 15 / macOS 12 / watchOS 8 / tvOS 15 or later. The core matches choices in lower case;
# these map them back to coremltools' spelling (ct.target.iOS15, ct.ComputeUnit.CPU_ONLY).
TARGET_NAMES = (
    "iOS15", "iOS16", "iOS17", "iOS18", "iOS26",
    "macOS12", "macOS13", "macOS14", "macOS15", "macOS26",
    "watchOS8", "watchOS9", "watchOS10", "watchOS11", "watchOS26",
    "tvOS15", "tvOS16", "tvOS17", "tvOS18", "tvOS26",
)
COMPUTE_UNIT_NAMES = ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")
TARGETS = {n.lower(): n for n in TARGET_NAMES}
COMPUTE_UNITS = {n.lower(): n for n in COMPUTE_UNIT_NAMES}


def is_macos() -> bool:
    return sys.platform == "darwin"


def availability() -> Availability:
    """coremltools converts anywhere; Core ML runs models only on macOS. Found with find_spec, never imported."""
    missing = missing_modules("coremltools")
    if missing:
        return Availability.unavailable("missing Python module(s): coremltools", fix=FIX)
    if is_macos():
        return Availability.ok()
    return Availability.export_only(STRUCTURE_ONLY)


@hookimpl
def register_formats(register: Any) -> None:
    """Declare ``coreml``; its format object loads on first use."""
    register(FormatSpec(
        name=FORMAT,
        display_name="Core ML",
        files=(PACKAGE + "/",),
        options=(
            OptionSpec("precision", "choice", "fp32", "compute precision of the ML Program; coremltools would pick "
                       "fp16 unless told, modelport defaults to fp32", choices=PRECISIONS),
            OptionSpec("minimum_deployment_target", "choice", "ios15", "oldest OS the package must run on (ML Program "
                       "needs ios15 / macos12 or later; case does not matter)", choices=tuple(TARGETS)),
            OptionSpec("compute_units", "choice", "all", "Core ML compute units to load the model with: all, cpu_only, "
                       "cpu_and_gpu, cpu_and_ne (recorded in metadata; used by the macOS numeric check)",
                       choices=tuple(COMPUTE_UNITS)),
        ),
        availability=availability,
        description="Core ML ML Program from torch.export via coremltools; prediction (numeric check) needs macOS",
        config_aliases={"compute_precision": "precision", "deployment_target": "minimum_deployment_target"},
        implementation="modelport_coreml.format:CoreMLFormat",
        suffixes=(".mlpackage",),
        usage=USAGE,
        runtime_library="coremltools",
        hub_library="coreml",
    ))

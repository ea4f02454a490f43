"""modelport format ``coreml``: a Core ML ML Program package (``model.mlpackage/``) converted by coremltools.

Core ML runs models only on Apple platforms ("Model prediction is only supported on macOS"). On Linux this
plugin exports, and its validate hook checks the package's structure (reload, input/output names, shapes and
dtypes against the export request, op histogram, compute precision); on macOS the same hook runs ``predict`` and
hands the outputs to the core's numeric comparison. coremltools (which imports torch) loads inside hook bodies only.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport import (
    Artifact,
    Availability,
    ConfigError,
    ExportRequest,
    FormatSpec,
    OptionSpec,
    ValidationFailed,
    ValidationRun,
    hookimpl,
    install_hint,
    missing_modules,
)

FORMAT = "coreml"
PACKAGE = "model.mlpackage"
FIX = install_hint("modelport-export-coreml")
STRUCTURE_ONLY = "structure checked; numeric check needs macOS"

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
    ))


@hookimpl
def export(request: ExportRequest) -> Artifact | None:
    if request.format != FORMAT:
        return None
    from modelport_coreml.convert import export_coreml

    return export_coreml(request)


@hookimpl
def load_runner(artifact: Artifact, options: Mapping[str, Any]) -> Any:
    if artifact.format != FORMAT:
        return None
    if not is_macos():
        raise ConfigError(f"coreml: Core ML prediction needs macOS; this machine runs {sys.platform} "
                          f"(`modelport validate` still checks the package's structure)")
    from modelport_coreml.package import CoreMLRunner

    return CoreMLRunner(artifact.path, artifact.details, options.get("compute_units"))


@hookimpl
def load_intermediates(artifact: Artifact, options: Mapping[str, Any]) -> Any:
    """Per-module sub-programs for ``modelport debug`` (prediction needs macOS)."""
    if artifact.format != FORMAT:
        return None
    from modelport_coreml.intermediates import CoreMLSubprograms

    return CoreMLSubprograms(artifact, options.get("model"), options.get("modules") or {})


@hookimpl
def validate(artifact: Artifact, inputs: Sequence[Mapping[str, Any]]) -> ValidationRun | None:
    """Check the package's structure against the request; on macOS also predict every input set."""
    if artifact.format != FORMAT:
        return None
    from modelport_coreml.package import CoreMLRunner, check_package, failed_checks

    checks, runtime = check_package(artifact.path, artifact.details, inputs)
    bad = failed_checks(checks)
    if bad:
        raise ValidationFailed(f"coreml: the package does not match the export request: {'; '.join(bad)}"[:800])
    if not is_macos():
        return ValidationRun(outputs=None, checks=checks, skipped=STRUCTURE_ONLY, runtime=runtime)
    # macOS: written for Apple machines, not run on the Linux machines this plugin was built on (see README)
    runner = CoreMLRunner(artifact.path, artifact.details, None)
    try:
        outputs = [list(runner(dict(s))) for s in inputs]
    except Exception as exc:
        raise ValidationFailed(f"coreml: Core ML prediction failed: {type(exc).__name__}: {exc}"[:800]) from exc
    return ValidationRun(outputs=outputs, checks=checks, runtime=runner.runtime)


@hookimpl
def describe_metadata(artifact: Artifact, request: ExportRequest | None) -> dict[str, Any] | None:
    if artifact.format != FORMAT:
        return None
    d = artifact.details
    return {"extra_metadata": {"coreml": {
        "converter": d.get("converter"),
        "model_type": "mlProgram",
        "compute_precision": d.get("compute_precision"),
        "minimum_deployment_target": d.get("minimum_deployment_target"),
        "specification_version": d.get("specification_version"),
        "compute_units": d.get("compute_units"),
        "inputs": d.get("inputs"),
        "outputs": d.get("outputs"),
        "ops": d.get("ops"),
        "prediction": "macOS only",
    }}}


@hookimpl
def inspect_artifact(path: Path, options: Mapping[str, Any]) -> dict[str, Any] | None:
    if path.suffix != ".mlpackage" or not path.is_dir():
        return None
    from modelport_coreml.package import describe_package

    return describe_package(path)

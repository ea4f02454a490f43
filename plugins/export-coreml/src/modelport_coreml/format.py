"""The ``coreml`` format object: what the core calls for ``model.mlpackage`` (registered lazily in ``__init__.py``).

coremltools (which imports torch) loads inside ``convert.py``, ``package.py`` and ``intermediates.py`` only.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport import Artifact, ConfigError, ExportRequest, ValidationFailed, ValidationRun
from modelport.plugins.format_base import FormatObject

import modelport_coreml as plugin


class CoreMLFormat(FormatObject):
    """A Core ML ML Program: exported anywhere, structure-checked anywhere, predicted on macOS only."""

    name = plugin.FORMAT

    def export(self, request: ExportRequest) -> Artifact:
        """torch.export the model (called positionally) and convert it with coremltools."""
        from modelport_coreml.convert import export_coreml

        return export_coreml(self.positional(request))

    def load_runner(self, artifact: Artifact, options: Mapping[str, Any]) -> Any:
        """The package loaded for prediction; on another OS, one line saying it needs macOS."""
        if not plugin.is_macos():
            raise ConfigError(f"coreml: Core ML prediction needs macOS; this machine runs {sys.platform} "
                              f"(`modelport validate` still checks the package's structure)")
        from modelport_coreml.package import CoreMLRunner

        return CoreMLRunner(artifact.path, artifact.details, options.get("compute_units"))

    def load_intermediates(self, artifact: Artifact, options: Mapping[str, Any]) -> Any:
        """Per-module sub-programs for ``modelport debug`` (prediction needs macOS)."""
        from modelport_coreml.intermediates import CoreMLSubprograms

        return CoreMLSubprograms(artifact, options.get("model"), options.get("modules") or {})

    def validate(self, artifact: Artifact, inputs: Sequence[Mapping[str, Any]]) -> ValidationRun:
        """Check the package's structure against the request; on macOS also predict every input set."""
        from modelport_coreml.package import CoreMLRunner, check_package, failed_checks

        checks, runtime = check_package(artifact.path, artifact.details, inputs)
        bad = failed_checks(checks)
        if bad:
            raise ValidationFailed(f"coreml: the package does not match the export request: {'; '.join(bad)}"[:800])
        if not plugin.is_macos():
            return ValidationRun(outputs=None, checks=checks, skipped=plugin.STRUCTURE_ONLY, runtime=runtime)
        # macOS: written for Apple machines, not run on the Linux machines this plugin was built on (see README)
        runner = CoreMLRunner(artifact.path, artifact.details, None)
        try:
            outputs = [list(runner(dict(s))) for s in inputs]
        except Exception as exc:
            raise ValidationFailed(f"coreml: Core ML prediction failed: {type(exc).__name__}: {exc}"[:800]) from exc
        return ValidationRun(outputs=outputs, checks=checks, runtime=runner.runtime)

    def describe(self, artifact: Artifact, request: ExportRequest | None) -> dict[str, Any]:
        """Converter, precision, deployment target, compute units, IO and ops, for metadata.json."""
        d = artifact.details
        return {"extra_metadata": {"coreml": {
            "converter": d.get("converter"), "model_type": "mlProgram", "compute_precision": d.get("compute_precision"),
            "minimum_deployment_target": d.get("minimum_deployment_target"),
            "specification_version": d.get("specification_version"), "compute_units": d.get("compute_units"),
            "inputs": d.get("inputs"), "outputs": d.get("outputs"), "ops": d.get("ops"), "prediction": "macOS only",
        }}}

    def inspect(self, path: Path, options: Mapping[str, Any]) -> dict[str, Any] | None:
        """``modelport inspect model.mlpackage`` (a package is a folder)."""
        if not Path(path).is_dir():
            return None
        from modelport_coreml.package import describe_package

        return describe_package(Path(path))

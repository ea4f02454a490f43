"""The ``executorch`` format object: what the core calls for ``.pte`` programs (registered lazily in ``__init__.py``).

executorch (several seconds to import) loads inside ``convert.py``, ``runtime.py`` and ``intermediates.py`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelport import Artifact, ExportRequest
from modelport.plugins.format_base import FormatObject, RunnerValidation


class ExecuTorchFormat(RunnerValidation, FormatObject):
    """An ExecuTorch program, XNNPACK-delegated by default; validated by running it in executorch.runtime."""

    name = "executorch"
    failure = "the program failed to run"

    def export(self, request: ExportRequest) -> Artifact:
        """Lower the model (torch.export, called positionally) to ``model.pte``; record delegation and capacity."""
        from modelport_executorch.convert import export_executorch

        return export_executorch(self.positional(request))

    def load_runner(self, artifact: Artifact, options: Mapping[str, Any]) -> Any:
        """The program's forward method, loaded once; it records the planned capacity and delegation."""
        from modelport_executorch.runtime import ExecuTorchRunner

        return ExecuTorchRunner(artifact.path, artifact.details, options.get("threads"))

    def load_intermediates(self, artifact: Artifact, options: Mapping[str, Any]) -> Any:
        """Per-module sub-programs for ``modelport debug`` (the .pte itself keeps no module boundaries)."""
        from modelport_executorch.intermediates import ExecuTorchSubprograms

        return ExecuTorchSubprograms(artifact, options.get("model"), options.get("modules") or {})

    def describe(self, artifact: Artifact, request: ExportRequest | None) -> dict[str, Any]:
        """ExecuTorch version, backend, delegation and IO, for metadata.json."""
        d = artifact.details
        return {"extra_metadata": {"executorch": {
            "executorch_version": d.get("executorch"), "backend": d.get("backend"), "delegation": d.get("delegation"),
            "inputs": d.get("inputs"), "outputs": d.get("outputs"), "batch": d.get("batch"),
        }}}

    def inspect(self, path: Path, options: Mapping[str, Any]) -> dict[str, Any] | None:
        """``modelport inspect model.pte``."""
        if not Path(path).is_file():
            return None
        from modelport_executorch.runtime import describe_program

        return describe_program(Path(path))

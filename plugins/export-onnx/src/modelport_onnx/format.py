"""The ``onnx`` format object: what the core calls for ONNX artifacts (registered lazily in ``__init__.py``).

torch, onnx, onnxruntime and onnxslim are imported inside the methods, from the modules that do the work:
``export.py`` (writing), ``runtime.py`` (running and checking), ``describe.py`` (metadata.json and
``modelport inspect``) and ``intermediates.py`` (``modelport debug``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport import Artifact, ExportRequest, ValidationRun
from modelport.plugins.format_base import FormatObject


class OnnxFormat(FormatObject):
    """ONNX through torch.onnx, run in onnxruntime; the core calls it for ``onnx`` only."""

    name = "onnx"

    def export(self, request: ExportRequest) -> Artifact:
        """Write model.onnx (+ model.onnx.data): export, simplify, convert or quantize, keep module paths."""
        from modelport_onnx.export import export_onnx

        return export_onnx(self.positional(request))

    def load_runner(self, artifact: Artifact, options: Mapping[str, Any]) -> Any:
        """An onnxruntime session, created once (validation and ``modelport bench`` call it); ``graph_opt`` from
        ``options`` (``modelport optimize`` trying a level) else as recorded at export."""
        from modelport_onnx.runtime import OnnxRunner

        return OnnxRunner(artifact.path, threads=options.get("threads"),
                          graph_opt=options.get("graph_opt") or artifact.options.get("graph_opt"))

    def validate(self, artifact: Artifact, inputs: Sequence[Mapping[str, Any]]) -> ValidationRun:
        """onnx.checker, then onnxruntime on every input set (the core compares the outputs)."""
        from modelport_onnx.runtime import validate_artifact

        return validate_artifact(artifact, inputs)

    def describe(self, artifact: Artifact, request: ExportRequest | None) -> dict[str, Any]:
        """Opset, IR version, IO, ops, simplification and quantization, for metadata.json."""
        from modelport_onnx.describe import describe_for_metadata

        return describe_for_metadata(artifact)

    def inspect(self, path: Path, options: Mapping[str, Any]) -> dict[str, Any]:
        """``modelport inspect model.onnx`` (``--by-module``, ``--module``)."""
        from modelport_onnx.describe import inspect_file

        return inspect_file(Path(path), by_module=bool(options.get("by_module")), module=options.get("module"),
                            options=options)

    def load_intermediates(self, artifact: Artifact, options: Mapping[str, Any]) -> Any:
        """Module-boundary tensors for ``modelport debug``, found through each node's module path."""
        from modelport_onnx.intermediates import load

        return load(artifact, options)

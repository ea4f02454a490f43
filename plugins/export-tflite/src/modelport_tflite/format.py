"""The ``tflite`` format object: what the core calls for LiteRT flatbuffers (registered lazily in ``__init__.py``).

litert-torch (torch, JAX and the LiteRT converter) is imported inside ``convert.py``, ai-edge-litert inside the
runner (``runtime.py``), so loading this class is cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelport import Artifact, ExportRequest
from modelport.plugins.format_base import FormatObject, RunnerValidation


class TFLiteFormat(RunnerValidation, FormatObject):
    """A LiteRT flatbuffer from litert-torch, run in ai-edge-litert; validated by running every input set."""

    name = "tflite"
    failure = "the flatbuffer failed to run"

    def export(self, request: ExportRequest) -> Artifact:
        """Convert the model (called positionally) to ``model.tflite`` and describe what it really expects."""
        from modelport_tflite.convert import export_tflite

        return export_tflite(self.positional(request))

    def load_runner(self, artifact: Artifact, options: Mapping[str, Any]) -> Any:
        """The interpreter, loaded once; it records how batches other than the flatbuffer's were run."""
        from modelport_tflite.runtime import TFLiteRunner

        return TFLiteRunner(artifact.path, artifact.details, options.get("threads"))

    def load_intermediates(self, artifact: Artifact, options: Mapping[str, Any]) -> Any:
        """Module-boundary tensors for ``modelport debug`` (preserve-all-tensors mode)."""
        from modelport_tflite.intermediates import TFLiteIntermediates

        return TFLiteIntermediates(artifact.path, artifact.details, options.get("modules") or {}, options.get("threads"))

    def describe(self, artifact: Artifact, request: ExportRequest | None) -> dict[str, Any]:
        """The flatbuffer's real, fixed input shapes and its converter settings, for metadata.json."""
        d = artifact.details
        inputs = d.get("inputs") or {}
        out: dict[str, Any] = {}
        if inputs:
            # channels-last where layout=nhwc: what a consumer must feed
            out["input_shape"] = {n: list(v["shape"]) for n, v in inputs.items()}
        out["extra_metadata"] = {"tflite": {
            key: d.get(key) for key in ("converter", "layout", "quantize", "signature", "inputs", "outputs", "batch")
        }}
        return out

    def inspect(self, path: Path, options: Mapping[str, Any]) -> dict[str, Any] | None:
        """``modelport inspect model.tflite``."""
        if not Path(path).is_file():
            return None
        from modelport_tflite.runtime import describe_flatbuffer

        return describe_flatbuffer(Path(path))

"""The ``tensorrt`` format object: what the core calls for TensorRT engines (registered lazily in ``__init__.py``).

TensorRT, CUDA and onnx are imported inside ``export.py``, ``build.py``, ``runtime.py`` and ``intermediates.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport import Artifact, ExportRequest, ValidationRun
from modelport.plugins.format_base import FormatObject

import modelport_tensorrt as plugin


class TensorRTFormat(FormatObject):
    """A TensorRT engine built from the upstream ONNX artifact; runs only where TensorRT and a CUDA device are."""

    name = plugin.FORMAT

    def export(self, request: ExportRequest) -> Artifact:
        """Build ``model.engine`` from ``request.upstream("onnx", ...)`` (the ONNX plugin's artifact, not its code)."""
        from modelport_tensorrt.export import export_engine

        return export_engine(request)

    def load_runner(self, artifact: Artifact, options: Mapping[str, Any]) -> Any:
        """The engine deserialized once on its device."""
        from modelport_tensorrt.runtime import TensorRTRunner

        return TensorRTRunner.for_artifact(artifact, options)

    def load_intermediates(self, artifact: Artifact, options: Mapping[str, Any]) -> Any:
        """Per-module engines for ``modelport debug`` (needs TensorRT and a CUDA device to run)."""
        from modelport_tensorrt.intermediates import TensorRTSubengines

        return TensorRTSubengines(artifact, options.get("model"), options.get("modules") or {})

    def validate(self, artifact: Artifact, inputs: Sequence[Mapping[str, Any]]) -> ValidationRun | None:
        """Say why the engine cannot run here (no TensorRT / GPU); None: the core's runner-based check runs."""
        avail = plugin.availability()
        if avail.export:
            return None
        return ValidationRun(outputs=None, skipped=f"a TensorRT engine runs only with TensorRT on an NVIDIA GPU: "
                                                   f"{avail.reason}", runtime=None)

    def describe(self, artifact: Artifact, request: ExportRequest | None) -> dict[str, Any]:
        """TensorRT version, precision, profiles, IO and device, for metadata.json."""
        from modelport_tensorrt.runtime import describe_for_metadata

        return describe_for_metadata(artifact)

    def inspect(self, path: Path, options: Mapping[str, Any]) -> dict[str, Any]:
        """``modelport inspect model.engine`` (.engine, .plan, .trt)."""
        from modelport_tensorrt.runtime import inspect_engine

        return inspect_engine(Path(path))

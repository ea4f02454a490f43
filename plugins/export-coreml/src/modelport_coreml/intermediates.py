"""``modelport debug`` for Core ML: each module converted alone, with the artifact's settings, and predicted.

An ML Program keeps no PyTorch module boundaries that can be read back, so each module the core asks about is
exported with torch.export on the inputs PyTorch gave it and converted with the artifact's recorded compute
precision and deployment target. Prediction needs macOS: elsewhere the conversion runs (so a module coremltools
refuses is named) and the prediction call says why it cannot run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from modelport import Artifact, ConfigError
from modelport.plugins.format_base import PerModuleIntermediates


class CoreMLSubprograms(PerModuleIntermediates):
    """Per-module mode: one converted ML Program per module, predicted on PyTorch's inputs to it (macOS only)."""

    format = "coreml"
    redo = "converts each module again"
    refusal = "coremltools cannot convert it alone"

    def configure(self, artifact: Artifact) -> None:
        self.precision = str(artifact.details.get("compute_precision") or artifact.precision or "fp32")
        self.target = str(artifact.details.get("minimum_deployment_target") or "iOS15")
        self.notes = [f"coreml: each module was converted on its own ({self.precision}, {self.target}) and "
                      "predicted on the inputs PyTorch gave it"]
        self.runtime = "coremltools"

    def tap(self, module: str) -> str:
        return f"{module} (converted alone, {self.precision}, {self.target})"

    def convert(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], folder: Path | None = None) -> Any:
        """The module ``name`` as an ML Program (``skip_model_load``: loading is prediction's job, macOS only)."""
        import torch

        from modelport_coreml.convert import import_coremltools, quiet_coremltools

        ct = import_coremltools()
        with quiet_coremltools():
            ep = torch.export.export(self.model.get_submodule(name), args, kwargs, strict=False)
            ep = ep.run_decompositions({})
            return ct.convert(ep, convert_to="mlprogram", skip_model_load=True,
                              compute_precision=ct.precision.FLOAT32 if self.precision == "fp32" else ct.precision.FLOAT16,
                              minimum_deployment_target=getattr(ct.target, self.target))

    def predict(self, mlmodel: Any, args: tuple[Any, ...]) -> Any:
        """Run one converted module: the runtime call, which Core ML allows on macOS only."""
        if sys.platform != "darwin":
            raise ConfigError(f"coreml: Core ML prediction needs macOS; this machine runs {sys.platform} "
                              "(each module's sub-program converted; nothing could be predicted)")
        import numpy as np

        names = [f.name for f in mlmodel.get_spec().description.input]
        loaded = type(mlmodel)(mlmodel.get_spec(), weights_dir=mlmodel.weights_dir)
        out = loaded.predict({n: np.asarray(a) for n, a in zip(names, args, strict=False)})
        return np.asarray(next(iter(out.values())))

    def execute(self, converted: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self.predict(converted, tuple(a.numpy() for a in args))

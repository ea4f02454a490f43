"""``modelport debug`` for ExecuTorch: each module lowered as its own sub-program and run in the ExecuTorch runtime.

A ``.pte`` program keeps no module boundaries an outside tool can read, and a backend (XNNPACK) runs its
delegated part as one opaque call — ExecuTorch's own Inspector sees a delegated block as one op. So each module
the core asks about is exported from the PyTorch model with torch.export on the inputs PyTorch gave it, lowered
with the artifact's recorded backend and settings, and run in ``executorch.runtime``: the row shows what this
export path computes for that module. What it does not show: the bytes of the ``.pte`` itself (a lowering that is
not deterministic would differ), which the ordinary validation checks end to end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelport import Artifact
from modelport.plugins.format_base import PerModuleIntermediates


class ExecuTorchSubprograms(PerModuleIntermediates):
    """Per-module mode: one lowered sub-program per module, run on PyTorch's inputs to that module."""

    format = "executorch"
    redo = "lowers each module again"
    refusal = "could not be lowered alone"

    def configure(self, artifact: Artifact) -> None:
        import importlib.metadata

        self.backend = str(artifact.details.get("backend") or artifact.options.get("backend") or "xnnpack")
        self.notes = [f"executorch: each module was lowered on its own with backend={self.backend} and run in "
                      "executorch.runtime on the inputs PyTorch gave it (the .pte keeps no module boundaries)"]
        self.runtime = f"executorch {importlib.metadata.version('executorch')} (executorch.runtime, CPU)"

    def tap(self, module: str) -> str:
        return f"{module} (lowered alone, backend {self.backend})"

    def _lower(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        import torch
        from executorch.exir import to_edge_transform_and_lower

        from modelport_executorch.convert import quiet

        partitioner: list[Any] = []
        if self.backend == "xnnpack":
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

            partitioner = [XnnpackPartitioner()]
        with quiet():
            ep = torch.export.export(module, args, kwargs, strict=False)
            return bytes(to_edge_transform_and_lower(ep, partitioner=partitioner).to_executorch().buffer)

    def convert(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], folder: Path) -> Any:
        """Lower module ``name`` alone and run it: a module the runtime refuses is a row too, so both are here."""
        import warnings

        import torch
        from executorch.runtime import Runtime, Verification
        from torch.utils._pytree import tree_leaves

        buffer = self._lower(self.model.get_submodule(name), args, kwargs)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="This API is experimental")
            program = Runtime.get().load_program(buffer, verification=Verification.Minimal)
        method = program.load_method("forward")
        flat = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        out = method.execute(flat)
        first = next((o for o in out if isinstance(o, torch.Tensor)), None)
        return first.detach().numpy().copy() if first is not None else None

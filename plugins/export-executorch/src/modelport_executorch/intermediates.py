"""``modelport debug`` for ExecuTorch: each module lowered as its own sub-program and run in the ExecuTorch runtime.

A ``.pte`` program keeps no module boundaries an outside tool can read, and a backend (XNNPACK) runs its
delegated part as one opaque call — ExecuTorch's own Inspector sees a delegated block as one op. So each module
the core asks about is exported from the PyTorch model with torch.export on the inputs PyTorch gave it, lowered
with the artifact's recorded backend and settings, and run in ``executorch.runtime``: the row shows what this
export path computes for that module. What it does not show: the bytes of the ``.pte`` itself (a lowering that is
not deterministic would differ), which the ordinary validation checks end to end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelport import Artifact, ConfigError


class ExecuTorchSubprograms:
    """Per-module mode: one lowered sub-program per module, run on PyTorch's inputs to that module."""

    mode = "per-module"

    def __init__(self, artifact: Artifact, model: Any, modules: Mapping[str, str]) -> None:
        import importlib.metadata

        if model is None:
            raise ConfigError("executorch: debugging lowers each module again and needs the PyTorch model")
        self.model = model
        self.backend = str(artifact.details.get("backend") or artifact.options.get("backend") or "xnnpack")
        self.taps = {m: f"{m} (lowered alone, backend {self.backend})" for m in modules if m}
        self.unavailable: dict[str, str] = {}
        self.notes = [f"executorch: each module was lowered on its own with backend={self.backend} and run in "
                      "executorch.runtime on the inputs PyTorch gave it (the .pte keeps no module boundaries)"]
        self.runtime = f"executorch {importlib.metadata.version('executorch')} (executorch.runtime, CPU)"

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

    def run(self, inputs: Mapping[str, Any], modules: Sequence[str], module_inputs: Any = None) -> dict[str, Any]:
        import warnings

        import torch
        from executorch.runtime import Runtime, Verification
        from torch.utils._pytree import tree_leaves

        found: dict[str, Any] = {}
        for name in modules:
            given = (module_inputs or {}).get(name)
            if given is None:
                continue
            args, kwargs = given
            try:
                buffer = self._lower(self.model.get_submodule(name), args, kwargs)
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="This API is experimental")
                    program = Runtime.get().load_program(buffer, verification=Verification.Minimal)
                method = program.load_method("forward")
                flat = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
                out = method.execute(flat)
            except Exception as exc: # one module that does not lower is a row, not a crash
                text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                self.unavailable[name] = f"could not be lowered alone: {type(exc).__name__}: {text}"[:300]
                continue
            first = next((o for o in out if isinstance(o, torch.Tensor)), None)
            if first is not None:
                found[name] = first.detach().numpy().copy()
        return found

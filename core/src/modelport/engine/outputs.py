"""Flatten whatever a model returns — tensor, tuple, dict, dataclass-like output — into named arrays."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


def flatten_outputs(out: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(name, tensor) pairs in a stable order: ``output``, ``output.0``, ``logits``, ``hidden_states.0``..."""
    import torch

    if isinstance(out, torch.Tensor):
        return [(prefix or "output", out)]
    items: list[tuple[str, Any]]
    if hasattr(out, "to_tuple") and hasattr(out, "keys"):  # transformers.ModelOutput
        items = [(str(k), out[k]) for k in out.keys()]  # noqa: SIM118 - ModelOutput iterates keys only via keys()
    elif dataclasses.is_dataclass(out) and not isinstance(out, type):
        items = [(f.name, getattr(out, f.name)) for f in dataclasses.fields(out)]
    elif isinstance(out, Mapping):
        items = [(str(k), v) for k, v in out.items()]
    elif isinstance(out, (list, tuple)):
        fields = getattr(out, "_fields", None)  # namedtuple
        names = list(fields) if fields else [str(i) for i in range(len(out))]
        if not prefix and not fields:
            names = [f"output.{n}" for n in names]
        items = list(zip(names, out, strict=True))
    elif out is None:
        return []
    else:
        raise TypeError(f"model returned {type(out).__name__}; expected tensors, tuples, dicts or dataclasses")
    flat: list[tuple[str, Any]] = []
    for name, value in items:
        if value is None:
            continue
        flat.extend(flatten_outputs(value, f"{prefix}.{name}" if prefix else name))
    return flat


def to_numpy(tensor: Any) -> Any:
    import numpy as np
    import torch

    if isinstance(tensor, torch.Tensor):
        t = tensor.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.numpy()
    return np.asarray(tensor)

"""PyTorch weights for publishing beside the exports: a state dict as safetensors, never a pickle.

Publishers call :func:`to_safetensors` for ``-o checkpoint=FILE``: a ``.safetensors`` file is checked (its header
must parse) and used as it is; a PyTorch checkpoint (``.pt``, ``.pth``, ``.ckpt``, ``.bin``) is read with
``torch.load(weights_only=True)`` — which refuses pickled code — its state dict found as ``--checkpoint`` finds it
(plain, or under ``state_dict`` / ``model_state_dict`` / ``model``...), and written with ``safetensors``.
"""

from __future__ import annotations

import json
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from modelport.errors import ConfigError, ModelLoadError

WEIGHTS_FILE = "model.safetensors"


@dataclass
class Weights:
    """A safetensors file ready to publish: where it is, how many tensors it holds, its size."""

    path: Path
    tensors: int
    bytes: int
    converted_from: str | None


def _safetensors_count(path: Path) -> int:
    """Tensors in a safetensors file, from its JSON header (nothing executed, nothing loaded)."""
    try:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > 100 << 20 or size > path.stat().st_size:
                raise ValueError("header size")
            header = json.loads(f.read(size))
    except (OSError, ValueError, struct.error, UnicodeDecodeError):
        raise ConfigError(f"checkpoint {path}: not a valid safetensors file") from None
    if not isinstance(header, dict):
        raise ConfigError(f"checkpoint {path}: not a valid safetensors file")
    return len([k for k in header if k != "__metadata__"])


def to_safetensors(source: str | Path, workdir: Path) -> Weights:
    """``source`` as ``workdir/model.safetensors``: copied when it already is safetensors, else converted."""
    src = Path(source)
    if not src.is_file() or src.is_symlink():
        raise ConfigError(f"checkpoint {src}: no such file")
    dest = Path(workdir) / WEIGHTS_FILE
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix == ".safetensors":
        count = _safetensors_count(src)
        shutil.copyfile(src, dest)
        return Weights(dest, count, dest.stat().st_size, None)
    from safetensors.torch import save_file

    from modelport.models.loading import PickledObject, extract_state_dict, torch_load_weights

    try:
        obj = torch_load_weights(src)
        state = extract_state_dict(obj, f"checkpoint {src}")
    except PickledObject:
        raise ConfigError(f"checkpoint {src}: holds pickled Python objects that weights_only loading refuses; "
                          "publish a plain state dict (torch.save(model.state_dict(), ...)) or a .safetensors file") from None
    except ModelLoadError as exc:
        raise ConfigError(str(exc)) from None
    # safetensors refuses tensors that share memory (tied weights): each gets its own contiguous copy
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in sorted(state.items())}
    # one metadata key only: safetensors writes the metadata map in no fixed order, and a re-publish of the same
    # weights must give the same bytes (publishers skip files whose sha256 is already there)
    save_file(tensors, str(dest), metadata={"format": "pt"})
    return Weights(dest, len(tensors), dest.stat().st_size, src.name)

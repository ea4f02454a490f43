"""modelport plugin: the ``pytorch`` format — the state dict as ``model.safetensors`` plus the factory reference.

The artifact holds weights only (safetensors: no pickle, no code). The *factory reference* (``path/to/file.py:fn``
or ``package.module:fn`` and its keyword arguments) is recorded in the file's header and in metadata.json;
validation rebuilds a fresh model from it, loads the weights (``strict``) and lets the core compare outputs.
Rebuilding imports the factory, so a folder modelport did not write on this machine needs ``--trust-code``
(docs/security.md). This module imports nothing heavy: the format object lives in :mod:`modelport_pytorch.format`.
"""

from __future__ import annotations

from typing import Any

from modelport import FormatSpec, OptionSpec, hookimpl, requires

__version__ = "0.1.0"

FORMAT = "pytorch"
MODEL_FILE = "model.safetensors"
FIX = "pip install modelport-export-pytorch"

OPTIONS = (
    OptionSpec("factory", "str", None, "how to rebuild the model: path/to/file.py:function or package.module:function "
               "(default: the model reference given to export, or the model's class when it is importable)"),
    OptionSpec("factory_kwargs", "json", None, "keyword arguments for the factory, as a JSON object "
               "(default: --model-kwargs)"),
)


@hookimpl
def register_formats(register: Any) -> None:
    """Declare ``pytorch``: one safetensors file, validated by rebuilding the model from its factory."""
    register(FormatSpec(
        name=FORMAT,
        display_name="PyTorch state dict (safetensors)",
        files=(MODEL_FILE,),
        options=OPTIONS,
        availability=requires("safetensors", fix=FIX),
        description="model.safetensors (weights only) + the factory reference; validated by rebuilding the model",
        implementation="modelport_pytorch.format:PyTorchFormat",
        suffixes=(".safetensors",),
    ))

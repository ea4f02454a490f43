"""modelport-source-hf: export Hugging Face transformers checkpoints with no code — ``modelport export hf:PATH_OR_ID``.

Registers the model source ``hf``. ``hf:./folder`` is a ``save_pretrained`` folder; ``hf:org/name[@revision]``
is a hub id, taken from the local Hugging Face cache, or downloaded when online. The task comes from the config
(``--task`` overrides it, with Optimum's names: ``text-classification``, ``text-generation-with-past``...), and
with it the inputs, class names (``id2label``) and preprocessing. Only safetensors weights are loaded; a model
that ships its own code (``auto_map``) needs ``--trust-code``.

Nothing heavy is imported here: transformers loads inside ``resolve``.
"""

from __future__ import annotations

from typing import Any

from modelport import SourceRequest, SourceSpec, hookimpl, requires

__all__ = ["register_sources"]


def _resolve(request: SourceRequest) -> Any:
    from modelport_hf.source import resolve

    return resolve(request)


@hookimpl
def register_sources(register: Any) -> None:
    from modelport.terminal.redaction import register_token_env

    register_token_env(("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"))  # downloads may use it: never printed
    register(SourceSpec(
        name="hf",
        display_name="Hugging Face transformers",
        resolve=_resolve,
        availability=requires("transformers", "safetensors", "huggingface_hub",
                              fix="pip install modelport-source-hf"),
        description="a save_pretrained folder or a hub id (local cache first); task, inputs, labels and "
                    "preprocessing come from its config",
        examples=("hf:./my-bert", "hf:distilbert-base-uncased", "hf:gpt2 --task text-generation-with-past"),
    ))

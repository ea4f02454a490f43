"""The model zoo's Python API: browse a registry, read a model's card, load a verified model in one call.

::

    from modelport import zoo

    zoo.print_zoo_summary("hf://alice")                       # a table of every model alice published
    entry = zoo.get_model_info("hf://alice/cnn")              # metadata, signature, validation, bench
    model = zoo.load_pretrained("hf://alice/cnn")             # downloaded once, every file sha256-checked
    outputs = model({"image": batch})                         # a list of numpy arrays

The public names of :mod:`modelport.commands.zoo` (where the work is done), so user code does not depend on where
the core keeps its commands. Nothing downloaded runs code without ``trust_code=True`` (docs/security.md).
"""

from __future__ import annotations

from modelport.commands.zoo import (
    CODE_FORMATS,
    PREFERENCE,
    PretrainedModel,
    cache_dir,
    download_model,
    entry_json,
    get_model_info,
    list_models,
    load_pretrained,
    parse_ref,
    print_model_info,
    print_zoo_summary,
)

__all__ = [
    "CODE_FORMATS", "PREFERENCE", "PretrainedModel", "cache_dir", "download_model", "entry_json", "get_model_info",
    "list_models", "load_pretrained", "parse_ref", "print_model_info", "print_zoo_summary",
]

"""What a checkpoint folder says about its inputs: preprocessing (image/audio processor) and tokenizer facts.

Read from the JSON files ``save_pretrained`` writes (``preprocessor_config.json``, ``tokenizer_config.json``,
``special_tokens_map.json``) — plain JSON, nothing executed — plus the loaded tokenizer when there is one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or {} when it is missing or not an object."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def processor_config(folder: Path) -> dict[str, Any]:
    """The image/audio processor config (``preprocessor_config.json``), or {}."""
    return read_json(folder / "preprocessor_config.json")


def image_size(proc: dict[str, Any], config: Any) -> tuple[int, int]:
    """(height, width) the processor resizes/crops to, else the config's ``image_size``, else 224."""
    for key in ("crop_size", "size"):
        size = proc.get(key)
        if isinstance(size, int):
            return size, size
        if isinstance(size, dict):
            if "height" in size and "width" in size:
                return int(size["height"]), int(size["width"])
            if "shortest_edge" in size:
                return int(size["shortest_edge"]), int(size["shortest_edge"])
    vision = getattr(config, "vision_config", None) or config
    size = getattr(vision, "image_size", 224)
    if isinstance(size, (list, tuple)):
        return int(size[0]), int(size[1])
    return int(size), int(size)


def image_preprocessing(proc: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    """metadata.json ``preprocessing`` for an image model, from its processor config."""
    out: dict[str, Any] = {"color_space": "RGB", "input_size": list(size)}
    if proc.get("image_mean") is not None:
        out["mean"] = [float(x) for x in proc["image_mean"]]
    if proc.get("image_std") is not None:
        out["std"] = [float(x) for x in proc["image_std"]]
    if "do_normalize" in proc:
        out["normalize"] = bool(proc["do_normalize"])
    if "do_resize" in proc:
        out["resize_mode"] = "resize" + ("+center_crop" if proc.get("do_center_crop") else "")
    if proc.get("rescale_factor") is not None:
        out["rescale_factor"] = float(proc["rescale_factor"])
    if proc.get("resample") is not None:
        out["resample"] = proc["resample"]
    if proc.get("image_processor_type"):
        out["processor"] = proc["image_processor_type"]
    return out


def audio_preprocessing(proc: dict[str, Any]) -> dict[str, Any]:
    """metadata.json ``preprocessing`` for an audio model: sampling rate, feature sizes, normalisation."""
    out: dict[str, Any] = {}
    for key in ("sampling_rate", "feature_size", "n_fft", "hop_length", "chunk_length", "padding_value",
                "do_normalize", "return_attention_mask", "feature_extractor_type"):
        if key in proc:
            out[key] = proc[key]
    if "do_normalize" in out:
        out["normalize"] = bool(out.pop("do_normalize"))
    return out


def load_tokenizer(folder: Path, trust_code: bool) -> Any:
    """The saved tokenizer, or None when the folder has none."""
    names = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model", "tokenizer.model")
    if not any((folder / n).is_file() for n in names):
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=trust_code)


def tokenizer_facts(tokenizer: Any) -> dict[str, Any]:
    """What a client needs to tokenize like the model was trained: class, vocab, special tokens, max length."""
    if tokenizer is None:
        return {}
    out: dict[str, Any] = {
        "tokenizer_class": type(tokenizer).__name__,
        "vocab_size": len(tokenizer),
        "padding_side": getattr(tokenizer, "padding_side", None),
        "truncation_side": getattr(tokenizer, "truncation_side", None),
    }
    max_len = getattr(tokenizer, "model_max_length", None)
    if isinstance(max_len, int) and max_len < 10**9:
        out["model_max_length"] = max_len
    lower = getattr(tokenizer, "do_lower_case", None)
    if lower is not None:
        out["do_lower_case"] = bool(lower)
    special = {}
    for name in ("bos_token", "eos_token", "pad_token", "unk_token", "cls_token", "sep_token", "mask_token"):
        tok = getattr(tokenizer, name, None)
        if tok is not None:
            special[name] = {"token": str(tok), "id": tokenizer.convert_tokens_to_ids(str(tok))}
    if special:
        out["special_tokens"] = special
    return {k: v for k, v in out.items() if v is not None}

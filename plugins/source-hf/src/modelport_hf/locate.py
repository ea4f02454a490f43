"""Find the checkpoint folder for ``hf:REF`` and check it is safe to load, before transformers touches it.

``REF`` is a ``save_pretrained`` folder, or a hub id ``org/name[@revision]`` looked up in the local Hugging Face
cache first and downloaded only when that misses (and ``HF_HUB_OFFLINE`` is not set). Only the files a safe load
needs are fetched: configs, tokenizer/processor files and ``*.safetensors`` — never pickles or code, unless the
user trusts the model's code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport import ConfigError, ModelLoadError

_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.\-]*/)?[A-Za-z0-9][A-Za-z0-9_.\-]*$")
SAFE_PATTERNS = ("*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "merges.txt", "vocab.*")
CODE_PATTERNS = ("*.py",)
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack",
                  "model.ckpt.index", "pytorch_model.pt")


@dataclass
class Checkpoint:
    """A local folder holding config.json and safetensors weights, and where it came from."""

    folder: Path
    reference: str
    repo_id: str | None = None
    revision: str | None = None
    from_cache: bool = False
    config: dict[str, Any] | None = None

    @property
    def needs_code(self) -> bool:
        """True when the config maps Auto classes to code shipped with the model (trust_remote_code)."""
        return bool((self.config or {}).get("auto_map"))

    def facts(self) -> dict[str, Any]:
        """For export.json: where the checkpoint came from (paths and ids, no file contents)."""
        out: dict[str, Any] = {"kind": "hf", "folder": str(self.folder)}
        if self.repo_id:
            out.update(repo_id=self.repo_id, revision=self.revision, from_cache=self.from_cache)
            commit = self.folder.name if self.folder.parent.name == "snapshots" else None
            if commit:
                out["commit"] = commit
        return out


def locate(reference: str, trust_code: bool) -> Checkpoint:
    """The checkpoint folder for ``reference``; ConfigError/ModelLoadError (one line) when it cannot be used."""
    path = Path(reference).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"hf:{reference}: is a file; give the folder save_pretrained wrote (with config.json)")
        ckpt = Checkpoint(path, reference)
    else:
        ckpt = _from_hub(reference, trust_code)
    ckpt.config = _read_config(ckpt.folder, reference)
    check_weights(ckpt.folder, reference)
    if ckpt.needs_code and not trust_code:
        targets = ", ".join(sorted(str(v) for v in (ckpt.config or {}).get("auto_map", {}).values()))[:200]
        raise ConfigError(
            f"hf:{reference}: the model ships its own Python code (auto_map: {targets}); loading it runs that code. "
            "Pass --trust-code if you trust it"
        )
    return ckpt


def _read_config(folder: Path, reference: str) -> dict[str, Any]:
    cfg = folder / "config.json"
    if not cfg.is_file():
        raise ConfigError(f"hf:{reference}: no config.json in {folder} (is it a save_pretrained folder?)")
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"hf:{reference}: config.json is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"hf:{reference}: config.json is not a JSON object")
    return data


def check_weights(folder: Path, reference: str) -> list[str]:
    """The safetensors weight files; refuses folders whose weights exist only as pickles."""
    safetensors = sorted(p.name for p in folder.glob("*.safetensors"))
    if safetensors:
        return safetensors
    pickles = sorted(p.name for p in folder.iterdir() if p.name in PICKLE_WEIGHTS or p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
    if pickles:
        raise ModelLoadError(
            f"hf:{reference}: the weights are only in {', '.join(pickles)} (pickle: loading it can run code); "
            "modelport loads safetensors only — convert it (model.save_pretrained(dir, safe_serialization=True) "
            "in a trusted environment)"
        )
    raise ModelLoadError(f"hf:{reference}: no *.safetensors weights in {folder}")


def _from_hub(reference: str, trust_code: bool) -> Checkpoint:
    repo_id, _, revision = reference.partition("@")
    if not _REPO_ID.match(repo_id) or ".." in repo_id:
        raise ConfigError(f"hf:{reference}: no such folder, and not a hub id like org/name[@revision]")
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    patterns = [*SAFE_PATTERNS, *(CODE_PATTERNS if trust_code else ())]
    kwargs: dict[str, Any] = {"repo_id": repo_id, "revision": revision or None, "allow_patterns": patterns}
    try:
        folder = huggingface_hub.snapshot_download(local_files_only=True, **kwargs)
        return Checkpoint(Path(folder), reference, repo_id, revision or None, from_cache=True)
    except LocalEntryNotFoundError:
        pass
    except Exception as exc:  # a corrupt cache entry: say so, do not download over it blindly
        raise ModelLoadError(f"hf:{reference}: the local cache entry is unusable ({type(exc).__name__}: "
                             f"{_first_line(exc)})") from None
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise ModelLoadError(f"hf:{reference}: not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) "
                             "and HF_HUB_OFFLINE is set; download it or give a save_pretrained folder")
    try:
        folder = huggingface_hub.snapshot_download(**kwargs)
    except Exception as exc:
        raise ModelLoadError(f"hf:{reference}: not in the local cache and the download failed "
                             f"({type(exc).__name__}: {_first_line(exc)})") from None
    return Checkpoint(Path(folder), reference, repo_id, revision or None, from_cache=False)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:300]

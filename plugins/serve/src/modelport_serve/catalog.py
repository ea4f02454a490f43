"""The models the server may load: a folder the operator configures, never a path or import from a request.

Layout (one sub-folder per model)::

    models/
      tiny-cnn/
        modelport.toml          factory = "model.py:build", inputs = ["input:1x3x32x32"], task, class_names...
        model.py                the factory (operator code: trusted like the server itself)
        checkpoints/best.pt     state dicts, loaded weights-only (best, last, any other name)
        checkpoints/last.pt

A request names a model by its folder name and a checkpoint by its stem (``best``, ``last``); the server
resolves both here. Uploaded checkpoints are untrusted and only ever loaded weights-only into such a model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib
from modelport.errors import ConfigError

CONFIG_FILE = "modelport.toml"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_KEYS = {"name", "factory", "model_kwargs", "inputs", "dynamic_batch", "task", "class_names", "preprocessing",
         "checkpoint_prefix", "description"}


@dataclass
class ModelEntry:
    """One servable model: its factory, default inputs and named checkpoints."""

    name: str
    folder: Path
    factory: str = ""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    dynamic_batch: bool = False
    task: str | None = None
    class_names: list[str] | None = None
    preprocessing: dict[str, Any] | None = None
    checkpoint_prefix: str | None = None
    description: str = ""
    checkpoints: dict[str, Path] = field(default_factory=dict)
    error: str | None = None

    @property
    def factory_ref(self) -> str:
        """The factory as modelport's loader takes it: an absolute ``file.py:function`` inside the folder."""
        file, _, attr = self.factory.rpartition(":")
        return f"{(self.folder / file).resolve()}:{attr}"

    def public(self) -> dict[str, Any]:
        """What the API shows: names, inputs and checkpoints — never the server's file system paths."""
        return {
            "name": self.name, "description": self.description, "task": self.task, "inputs": self.inputs,
            "dynamic_batch": self.dynamic_batch, "class_names": self.class_names,
            "checkpoints": [{"name": n, "bytes": p.stat().st_size} for n, p in self.checkpoints.items() if p.is_file()],
            "error": self.error,
        }


def _checkpoints(folder: Path) -> dict[str, Path]:
    found = {}
    ckpt_dir = folder / "checkpoints"
    if ckpt_dir.is_dir():
        for p in sorted(ckpt_dir.iterdir()):
            if p.is_file() and not p.is_symlink() and p.suffix in CHECKPOINT_SUFFIXES and _NAME.match(p.stem):
                found[p.stem] = p
    order = {"best": 0, "last": 1}
    return dict(sorted(found.items(), key=lambda kv: (order.get(kv[0], 2), kv[0])))


def load_entry(folder: Path) -> ModelEntry:
    """Read one model folder; a malformed one comes back with ``error`` set (listed, never served)."""
    entry = ModelEntry(name=folder.name, folder=folder)
    try:
        data = tomllib.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise ConfigError(f"unknown key(s) {', '.join(unknown)}")
        factory = data.get("factory")
        if not isinstance(factory, str) or ":" not in factory:
            raise ConfigError('factory must be "file.py:function" (a file inside the model folder)')
        file = (folder / factory.rpartition(":")[0]).resolve()
        if folder.resolve() not in file.parents or not file.is_file():
            raise ConfigError(f"factory file {factory.rpartition(':')[0]!r} is not a file inside the model folder")
        entry.factory = factory
        entry.model_kwargs = dict(data.get("model_kwargs") or {})
        entry.inputs = [str(s) for s in data.get("inputs") or []]
        if not entry.inputs:
            raise ConfigError('inputs must list the model inputs, e.g. ["input:1x3x224x224:float32"]')
        from modelport.engine.inputs import parse_input

        for s in entry.inputs:
            parse_input(s)
        entry.dynamic_batch = bool(data.get("dynamic_batch", False))
        entry.task = data.get("task")
        entry.class_names = list(data["class_names"]) if data.get("class_names") else None
        entry.preprocessing = dict(data["preprocessing"]) if data.get("preprocessing") else None
        entry.checkpoint_prefix = data.get("checkpoint_prefix")
        entry.description = str(data.get("description", ""))
        if data.get("name"):
            entry.name = str(data["name"])
        if not _NAME.match(entry.name):
            raise ConfigError(f"model name {entry.name!r} must be letters, digits, '.', '_' or '-'")
    except (OSError, ValueError, ConfigError, TypeError) as exc:
        entry.error = f"{CONFIG_FILE}: {exc}"
    entry.checkpoints = _checkpoints(folder)
    return entry


class ModelCatalog:
    """The configured models folder, re-read on each lookup so new checkpoints show up without a restart."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def entries(self) -> list[ModelEntry]:
        if not self.root.is_dir():
            return []
        return [load_entry(d) for d in sorted(self.root.iterdir())
                if d.is_dir() and not d.name.startswith(".") and (d / CONFIG_FILE).is_file()]

    def get(self, name: str) -> ModelEntry:
        """The model called ``name``, or a ConfigError naming the known ones."""
        entries = self.entries()
        for e in entries:
            if e.name == name:
                if e.error:
                    raise ConfigError(f"model {name!r} is misconfigured on the server: {e.error}")
                return e
        known = ", ".join(e.name for e in entries if not e.error) or "none"
        raise ConfigError(f"unknown model {name!r}; this server serves: {known}")


def bundled_models() -> Path:
    """The example models folder shipped with modelport-serve (a tiny CNN with best/last checkpoints)."""
    return Path(__file__).resolve().parent / "example_models"

"""What a publisher needs to list its registry for ``modelport list`` / ``info`` and :mod:`modelport.zoo`.

A publisher plugin answers the ``list_models`` hook with :class:`~modelport.ModelEntry` records. This module
writes that hook for a publisher whose work lives in another module (loaded on first use, as
:func:`modelport.publishers.publishing.publisher_hooks` does for publish and pull), and reads the metadata.json a lister
downloaded into a :class:`~modelport.PublishedExport` — as data: nothing in it is executed. Standard library only.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from modelport.errors import PublishError
from modelport.plugins.hookspecs import hookimpl
from modelport.plugins.types import ModelEntry, PublishedExport, Target

#: Largest metadata.json / bench.json a lister reads (a hostile registry could serve gigabytes).
MAX_JSON_BYTES = 8 << 20


def listing_hook(scheme: str, module: str) -> Callable[..., list[ModelEntry] | None]:
    """The ``list_models`` hook of a publisher whose ``module`` defines ``list_models(target, options)``.

    ``module`` is imported on the first listing of ``scheme``, so importing the plugin stays cheap. In the
    plugin's ``__init__.py``, beside ``publisher_hooks``::

        list_models = listing_hook("s3", "modelport_s3.listing")
    """

    @hookimpl
    def list_models(target: Target, options: Mapping[str, Any]) -> list[ModelEntry] | None:
        if target.scheme != scheme:
            return None
        entries: list[ModelEntry] = importlib.import_module(module).list_models(target, options)
        return entries

    list_models.__doc__ = f"List the models of a {scheme}:// target with {module}.list_models; None for other schemes."
    return list_models


def parse_json_bytes(data: bytes, where: str) -> dict[str, Any]:
    """A JSON object from bytes a registry served; a PublishError naming ``where`` for anything else."""
    if len(data) > MAX_JSON_BYTES:
        raise PublishError(f"{where}: larger than {MAX_JSON_BYTES >> 20} MiB; refusing to read it")
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise PublishError(f"{where}: not valid JSON") from None
    if not isinstance(value, dict):
        raise PublishError(f"{where}: not a JSON object")
    return value


def published_export(metadata_bytes: bytes, *, folder: str, pull_target: str, where: str,
                     pull_options: Mapping[str, Any] | None = None, bench_bytes: bytes | None = None) -> PublishedExport:
    """One listed export from the bytes of its metadata.json (and bench.json): format, metadata, sha256 key."""
    metadata = parse_json_bytes(metadata_bytes, where)
    if not isinstance(metadata.get("files"), dict):
        raise PublishError(f"{where}: not a modelport metadata.json (no files table)")
    bench = None
    if bench_bytes is not None:
        try:
            bench = parse_json_bytes(bench_bytes, where.replace("metadata.json", "bench.json"))
        except PublishError:
            bench = None  # a broken bench.json loses the numbers, not the model
    return PublishedExport(
        format=str(metadata.get("export_format") or "?"), folder=folder, pull_target=pull_target,
        metadata=metadata, metadata_sha256=hashlib.sha256(metadata_bytes).hexdigest(),
        pull_options=dict(pull_options or {}), bench=bench,
    )


def version_key(version: str) -> tuple[Any, ...]:
    """Natural order of version names: v2 < v10, 1.9 < 1.10."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", version) if p)


def latest(entries: Iterable[ModelEntry]) -> ModelEntry | None:
    """The newest entry: latest publication time, then the highest version name."""
    items = list(entries)
    if not items:
        return None
    return max(items, key=lambda e: (e.published_at or "", version_key(e.version)))


def wanted(entry_name: str, entry_version: str, options: Mapping[str, Any]) -> bool:
    """Whether an entry passes the ``name`` / ``version`` filters in a lister's options."""
    name, version = options.get("name"), options.get("version")
    return (not name or entry_name == name) and (not version or entry_version == version)


def read_small(path: Path, where: str) -> bytes:
    """A local file's bytes, refusing a symbolic link or one larger than :data:`MAX_JSON_BYTES`."""
    if path.is_symlink() or not path.is_file():
        raise PublishError(f"{where}: not a plain file")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise PublishError(f"{where}: larger than {MAX_JSON_BYTES >> 20} MiB; refusing to read it")
    return path.read_bytes()

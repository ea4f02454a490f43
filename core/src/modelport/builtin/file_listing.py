"""Listing a ``file://DIR`` registry for ``modelport list`` / ``info``: ``DIR/<model>/<version>/metadata.json``
(or ``<version>/<format>/metadata.json``, one per export, when several were published together).

The folders are the truth (the index may lag after a crash); ``index.json`` only adds publication times.
Symbolic links and hidden folders are skipped; a version whose metadata.json cannot be read is reported on
stderr and left out, so one damaged folder does not hide the rest of the registry.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelport.builtin.file_publisher import export_folders, location_path
from modelport.commands.listing import published_export, read_small, wanted
from modelport.errors import PublishError
from modelport.folder.exportdir import BENCH_FILE, METADATA_FILE
from modelport.plugins.types import ModelEntry, Target


def _published_times(root: Path) -> dict[tuple[str, str], str]:
    try:
        data = json.loads(read_small(root / "index.json", "index.json").decode("utf-8"))
        rows = data.get("exports") if isinstance(data, dict) else None
    except (PublishError, OSError, ValueError, UnicodeDecodeError):
        return {}
    return {(str(e.get("model_name")), str(e.get("version"))): str(e["published_at"])
            for e in rows or [] if isinstance(e, dict) and e.get("published_at")}


def _dirs(parent: Path) -> list[Path]:
    return [p for p in sorted(parent.iterdir()) if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]


def list_models(target: Target, options: Mapping[str, Any]) -> list[ModelEntry]:
    """Every ``<model>/<version>`` folder of the registry that holds a metadata.json."""
    from modelport.publishers.publishing import say

    root = location_path(target)
    if not root.is_dir():
        raise PublishError(f"{target.raw}: no such registry folder")
    times = _published_times(root)
    base = target.raw.rstrip("/")
    entries: list[ModelEntry] = []
    for model_dir in _dirs(root):
        if options.get("name") and model_dir.name != options["name"]:
            continue
        for version_dir in _dirs(model_dir):
            folders = export_folders(version_dir)
            if not wanted(model_dir.name, version_dir.name, options) or not folders:
                continue
            exports = []
            for folder, export_dir in folders:  # the version itself, or one <format>/ folder per export
                where = f"{base}/{model_dir.name}/{version_dir.name}/" + (f"{folder}/" if folder else "") + METADATA_FILE
                bench = export_dir / BENCH_FILE
                try:
                    exports.append(published_export(
                        read_small(export_dir / METADATA_FILE, where), folder=folder,
                        pull_target=f"file://{export_dir.resolve()}", where=where,
                        bench_bytes=read_small(bench, where) if bench.is_file() else None))
                except PublishError as exc:
                    say(f"warning: {exc}; left out of the listing")
            if not exports:
                continue
            md_path = folders[0][1] / METADATA_FILE
            when = times.get((model_dir.name, version_dir.name)) or _dt.datetime.fromtimestamp(
                md_path.stat().st_mtime, _dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
            entries.append(ModelEntry(name=model_dir.name, version=version_dir.name, target=base, exports=exports,
                                      published_at=when, url=f"file://{version_dir.resolve()}"))
    return entries

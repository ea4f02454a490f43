"""Built-in publisher ``file://DIR``: a local model registry folder with checksums and an index.

Layout: ``DIR/<model_name>/<version>/`` holds a copy of the export folder; ``DIR/index.json`` lists
every published version. Files are verified by sha256 after copying; nothing is overwritten unless
``force`` is set.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError, PublishError
from modelport.hookspecs import hookimpl
from modelport.listing import listing_hook
from modelport.types import OptionSpec, PublisherSpec, PublishResult, PullResult, Target


@hookimpl
def register_publishers(register: Any) -> None:
    register(PublisherSpec(
        scheme="file",
        display_name="Local registry folder",
        options=(OptionSpec("version", "str", None, "version folder name (default: next vN)"),),
        can_pull=True,
        can_list=True,
        description="file://DIR copies the export to DIR/<model_name>/<version>/ and updates DIR/index.json",
    ))


def location_path(target: Target) -> Path:
    """``file:///abs/path`` → /abs/path; ``file://rel/path`` → rel/path."""
    loc = target.location
    if loc.startswith("localhost/"):
        loc = loc[len("localhost"):]
    return Path(loc)


def _next_version(model_dir: Path) -> str:
    numbers = [int(m.group(1)) for p in model_dir.glob("v*") if (m := re.fullmatch(r"v(\d+)", p.name))]
    return f"v{max(numbers, default=0) + 1}"


@hookimpl
def publish(export_dir: Path, target: Target, options: Mapping[str, Any]) -> PublishResult | None:
    if target.scheme != "file":
        return None
    from modelport.metadata import load_metadata
    from modelport.pipeline import verify_files
    from modelport.store import (
        StagedDir,
        file_lock,
        now_iso,
        read_index,
        safe_name,
        write_json_atomic,
    )

    root = location_path(target)
    md = load_metadata(export_dir / "metadata.json")
    model_name = safe_name(str(md["model_name"]), "model name in metadata.json")
    bad = verify_files(export_dir, md.get("files") or {})
    if bad:
        raise PublishError(f"{export_dir}: files changed since export, refusing to publish: {', '.join(bad)}")
    version = options.get("version")
    if options.get("dry_run"):
        stage = Path(options["stage_dir"])
        shutil.copytree(export_dir, stage / model_name / (version or "vN"), dirs_exist_ok=True)
        return PublishResult(url=f"file://{root}/{model_name}/{version or 'vN'}", files=sorted(md.get("files") or {}),
                             message="dry run: nothing written to the registry")
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / ".index.lock"):
        model_dir = root / model_name
        version = safe_name(str(version), "version") if version else _next_version(model_dir)
        dest = model_dir / version
        if dest.exists() and not options.get("force"):
            raise ConfigError(f"{dest} already exists in the registry; pass --force to overwrite it")
        staged = StagedDir(dest, force=bool(options.get("force")))
        try:
            shutil.copytree(export_dir, staged.path, dirs_exist_ok=True)
            bad = verify_files(staged.path, md.get("files") or {})
            if bad:
                raise PublishError(f"copy to {dest} is corrupt: {', '.join(bad)}")
            staged.commit()
        finally:
            staged.discard()
        index = read_index(root)
        index["exports"] = [e for e in index["exports"] if not (e.get("model_name") == model_name and e.get("version") == version)]
        index["exports"].append({
            "id": f"{model_name}/{version}", "model_name": model_name, "version": version,
            "format": md.get("export_format"), "path": f"{model_name}/{version}", "published_at": now_iso(),
            "files": md.get("files"),
        })
        index["updated_at"] = now_iso()
        write_json_atomic(root / "index.json", index)
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    return PublishResult(url=f"file://{dest.resolve()}", revision=version, files=files)


@hookimpl
def pull(target: Target, dest: Path, options: Mapping[str, Any]) -> PullResult | None:
    if target.scheme != "file":
        return None
    src = location_path(target)
    if not src.is_dir():
        raise PublishError(f"{target.raw}: no such export folder")
    if not (src / "metadata.json").is_file():
        raise PublishError(f"{target.raw}: no metadata.json there (point at DIR/<model_name>/<version>)")
    copied = []
    for p in sorted(src.rglob("*")):
        if p.is_symlink():
            raise PublishError(f"{target.raw}: refusing symbolic link {p.name}")
        rel = p.relative_to(src)
        if p.is_dir():
            (dest / rel).mkdir(parents=True, exist_ok=True)
        elif p.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dest / rel)
            copied.append(rel.as_posix())
    return PullResult(source=str(src.resolve()), files=copied)


# `modelport list file://DIR` and `info`: modelport.builtin.file_listing reads DIR/<model>/<version>/metadata.json
list_models = listing_hook("file", "modelport.builtin.file_listing")

"""Built-in publisher ``file://DIR``: a local model registry folder with checksums and an index.

Layout: ``DIR/<model_name>/<version>/`` holds a copy of the export folder — or, when several export folders of
one model are published together, ``DIR/<model_name>/<version>/<format>/`` one each; ``DIR/index.json`` lists
every published export. Files are verified by sha256 after copying; nothing is overwritten unless
``force`` is set.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelport.commands.listing import listing_hook
from modelport.errors import ConfigError, PublishError
from modelport.folder.exportdir import METADATA_FILE, RECORD_FILE
from modelport.folder.store import sha256_file
from modelport.plugins.hookspecs import hookimpl
from modelport.plugins.types import OptionSpec, PublisherSpec, PublishResult, PullResult, Target


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


def _copy_bundle(bundle: Any, dest: Path) -> list[str]:
    """Copy exactly the files the export lists (already checked: no symlinks, sha256 as recorded) to its folder
    under ``dest``; the names returned are relative to ``dest``."""
    import json

    from modelport.publishers.publishing import public_record

    copied = []
    for f in bundle.files:
        rel = f"{bundle.folder}/{f.rel}" if bundle.folder else f.rel
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if f.rel == RECORD_FILE:
            out.write_text(json.dumps(public_record(bundle.record), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        else:
            shutil.copyfile(f.path, out)
            if sha256_file(out) != f.sha256:
                raise PublishError(f"copy of {rel} is corrupt")
        copied.append(rel)
    return sorted(copied)


def export_folders(version_dir: Path) -> list[tuple[str, Path]]:
    """The exports a version folder holds: itself (folder ``""``) when it has a metadata.json, else each
    ``<format>/`` subfolder that has one (several export folders published together)."""
    if (version_dir / METADATA_FILE).is_file():
        return [("", version_dir)]
    return [(p.name, p) for p in sorted(version_dir.iterdir())
            if p.is_dir() and not p.is_symlink() and not p.name.startswith(".") and (p / METADATA_FILE).is_file()]


def registry_index(root: Path, previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The registry's index rebuilt from its ``<model>/<version>/metadata.json`` folders (the folders are the truth).

    Publication times are kept from ``previous`` where it has them; a version a killed publish left unindexed
    appears, and a corrupt index.json is replaced.
    """
    import datetime as _dt
    import json

    from modelport.folder.store import TMP_PREFIX, now_iso

    known = {e.get("id"): e for e in (previous or {}).get("exports", []) if isinstance(e, dict)}
    exports = []
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for vdir in sorted(p for p in model_dir.iterdir() if p.is_dir() and not p.name.startswith((".", TMP_PREFIX))):
            if vdir.is_symlink():
                continue
            for folder, export in export_folders(vdir):
                md_path = export / METADATA_FILE
                try:
                    md = json.loads(md_path.read_text(encoding="utf-8"))
                except (OSError, ValueError, UnicodeDecodeError):
                    continue
                if not isinstance(md, dict):
                    continue
                vid = f"{model_dir.name}/{vdir.name}" + (f"/{folder}" if folder else "")
                stamp = (known.get(vid) or {}).get("published_at") or _dt.datetime.fromtimestamp(
                    md_path.stat().st_mtime, _dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
                exports.append({"id": vid, "model_name": model_dir.name, "version": vdir.name,
                                "format": md.get("export_format"), "path": vid, "published_at": stamp,
                                "files": md.get("files")})
    return {"schema_version": 1, "exports": exports, "updated_at": now_iso()}


def _read_previous_index(root: Path) -> dict[str, Any] | None:
    from modelport.errors import ModelportError
    from modelport.folder.store import read_index

    try:
        return read_index(root)
    except ModelportError:
        return None  # corrupt: rebuilt from the folders


@hookimpl
def publish(export_dir: Path, target: Target, options: Mapping[str, Any]) -> PublishResult | None:
    if target.scheme != "file":
        return None
    from modelport.folder.store import StagedDir, check_replaceable, file_lock, safe_name, write_json_atomic
    from modelport.publishers.publishing import collect_bundles

    root = location_path(target)
    dirs = [Path(d) for d in (options.get("export_dirs") or [export_dir])]
    # exactly the listed files; symlinks and changed files refused; several exports get a <format>/ folder each
    bundles = collect_bundles(dirs)
    model_name = safe_name(str(bundles[0].metadata.get("model_name")), "model name in metadata.json")
    version = options.get("version")
    if options.get("dry_run"):
        stage = Path(options["stage_dir"]) / model_name / (version or "vN")
        return PublishResult(url=f"file://{root}/{model_name}/{version or 'vN'}",
                             files=[f for b in bundles for f in _copy_bundle(b, stage)],
                             message="dry run: nothing written to the registry")
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / ".index.lock"):
        model_dir = root / model_name
        version = safe_name(str(version), "version") if version else _next_version(model_dir)
        dest = model_dir / version
        if dest.exists() and not options.get("force"):
            raise ConfigError(f"{dest} already exists in the registry; pass --force to overwrite it")
        if dest.exists():
            check_replaceable(dest)
            inside = [d for d in dirs if d.resolve() == dest.resolve() or dest.resolve() in d.resolve().parents]
            if inside:
                raise ConfigError(f"{dest} holds the export being published; publish it to another version")
        with StagedDir(dest, force=bool(options.get("force"))) as staged:
            try:
                files = [f for b in bundles for f in _copy_bundle(b, staged.path)]
            except PublishError as exc:
                raise PublishError(f"{dest}: {exc}") from None
            staged.commit()
        write_json_atomic(root / "index.json", registry_index(root, _read_previous_index(root)))
    return PublishResult(url=f"file://{dest.resolve()}", revision=version, files=files)


@hookimpl
def pull(target: Target, dest: Path, options: Mapping[str, Any]) -> PullResult | None:
    if target.scheme != "file":
        return None
    src = location_path(target)
    if not src.is_dir():
        raise PublishError(f"{target.raw}: no such export folder")
    if not (src / METADATA_FILE).is_file():
        several = [name for name, _ in export_folders(src)]
        if several:
            raise PublishError(f"{target.raw}: holds {len(several)} exports ({', '.join(several)}); pull one of them: "
                               f"{target.raw.rstrip('/')}/{several[0]}")
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

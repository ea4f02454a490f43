"""``modelport list hf://OWNER`` and ``info hf://OWNER/REPO[@REVISION]``: the Hub repositories that carry a modelport card.

A repository counts when the Hub lists it under the ``modelport`` tag (the model card's front matter sets it)
and it holds a metadata.json (at its root, or one per export folder). Every metadata.json and bench.json is
downloaded and read as JSON — nothing else is fetched, nothing is executed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelport import ConfigError, ModelEntry, PublishError, Target
from modelport.commands.listing import published_export, read_small

from modelport_publish_hf.hub import _NAME, HfTarget, _Hub

MAX_REPOS = 500  # an owner with more modelport repositories is listed in part, and says so


def _owner(target: Target) -> tuple[str, str | None]:
    """``hf://OWNER`` or ``hf://OWNER/REPO`` → (OWNER, REPO or None)."""
    parts = target.location.partition("@")[0].strip("/").split("/")
    if not 1 <= len(parts) <= 2 or not all(_NAME.fullmatch(p) for p in parts):
        raise ConfigError(f"{target.raw}: list takes hf://OWNER (or hf://OWNER/REPO)")
    return parts[0], parts[1] if len(parts) == 2 else None


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text.replace("+00:00", "Z")


def list_models(target: Target, options: Mapping[str, Any]) -> list[ModelEntry]:
    """One entry per repository (at ``options['version']``, else the default branch) with one export per metadata.json."""
    owner, repo = _owner(target)
    name = options.get("name") or repo
    revision = options.get("version") or None
    hub = _Hub(HfTarget(owner, "", None), options, need_token=False)
    if name:
        repos: list[tuple[str, Any]] = [(f"{owner}/{name}", None)]
    else:
        found = hub.call("list repositories", lambda: list(hub.api.list_models(author=owner, filter="modelport",
                                                                              limit=MAX_REPOS)))
        repos = [(str(m.id), m) for m in found if str(m.id).startswith(f"{owner}/")]
        if len(found) >= MAX_REPOS:
            from modelport.publishers.publishing import say

            say(f"warning: {target.raw}: listing the first {MAX_REPOS} repositories only")
    scratch = Path(tempfile.mkdtemp(prefix="modelport-hf-list-"))
    try:
        entries = []
        for repo_id, info in repos:
            entry = _entry(hub, owner, repo_id, revision, info, scratch, explicit=bool(name))
            if entry is not None:
                entries.append(entry)
        return entries
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _fetch(hub: _Hub, repo_id: str, name: str, revision: str | None, scratch: Path, where: str) -> bytes:
    """The bytes of one small file of the repository (downloaded into ``scratch``, read with a size cap)."""
    got = hub.call(f"download {name}", lambda: hub.api.hf_hub_download(
        repo_id, name, revision=revision, local_dir=scratch / repo_id.replace("/", "--")))
    return read_small(Path(got), where)


def _entry(hub: _Hub, owner: str, repo_id: str, revision: str | None, info: Any, scratch: Path,
           explicit: bool) -> ModelEntry | None:
    """The entry of one repository; None when it holds no metadata.json (not a modelport export)."""
    t = HfTarget(repo_id, "", revision)
    try:
        details = hub.call(f"read {repo_id}", lambda: hub.api.model_info(repo_id, revision=revision))
        listing = hub.call(f"list files of {repo_id}", lambda: list(hub.api.list_repo_tree(
            repo_id, recursive=True, revision=revision)))
    except PublishError as exc:
        if explicit or "HTTP 404" not in str(exc):
            raise
        return None  # deleted between the search and now
    files = {e.path for e in listing if hasattr(e, "blob_id")}
    folders = sorted(p.rsplit("/", 1)[0] if "/" in p else "" for p in files
                     if p == "metadata.json" or p.endswith("/metadata.json"))
    if not folders:
        return None
    exports = []
    for folder in folders:
        prefix = f"{folder}/" if folder else ""
        where = f"{t.raw(folder)}: metadata.json"

        bench = _fetch(hub, repo_id, f"{prefix}bench.json", revision, scratch, where) \
            if f"{prefix}bench.json" in files else None
        metadata = _fetch(hub, repo_id, f"{prefix}metadata.json", revision, scratch, where)
        exports.append(published_export(metadata, folder=folder, pull_target=t.raw(folder), where=where,
                                        bench_bytes=bench))
    when = getattr(details, "last_modified", None) or getattr(info, "last_modified", None)
    return ModelEntry(name=repo_id.split("/", 1)[1], version=revision or "main", target=f"hf://{owner}",
                      exports=exports, published_at=_iso(when), url=t.url(hub.endpoint),
                      revision=getattr(details, "sha", None))

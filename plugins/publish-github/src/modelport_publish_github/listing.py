"""``modelport list github://OWNER/REPO`` and ``info github://OWNER/REPO/MODEL[@TAG]``: the releases that carry exports.

A release counts when it has a ``metadata.json`` asset (one export) or ``LEAF.metadata.json`` assets (several,
each beside its ``MODEL-LEAF.zip``), as this plugin publishes them. Only those small JSON assets are downloaded
and read — as data; the model is one entry per (model name, tag).
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from modelport import ConfigError, ModelEntry, PublishedExport, PublishError, Target
from modelport.commands.listing import MAX_JSON_BYTES, published_export, read_small

from modelport_publish_github.releases import _NAME, _TAG, GhTarget, GitHub

METADATA = "metadata.json"


@dataclass(frozen=True)
class _Repo:
    """A repository without a tag: what :class:`GitHub` needs for its calls and messages."""

    owner: str
    repo: str
    tag: str = ""

    @property
    def full(self) -> str:
        return f"{self.owner}/{self.repo}"

    @property
    def raw(self) -> str:
        return f"github://{self.full}" + (f"@{self.tag}" if self.tag else "")


def _repo(target: Target) -> _Repo:
    parts = target.location.partition("@")[0].strip("/").split("/")
    if len(parts) != 2 or not all(_NAME.fullmatch(p) for p in parts) or "@" in target.location:
        raise ConfigError(f"{target.raw}: list takes github://OWNER/REPO")
    return _Repo(parts[0], parts[1])


def _releases(gh: GitHub, repo: _Repo, tag: str | None) -> list[dict[str, Any]]:
    if tag:
        if not _TAG.fullmatch(tag):
            raise ConfigError(f"{repo.raw}@{tag}: {tag!r} is not a valid tag name")
        gh.target = cast(GhTarget, _Repo(repo.owner, repo.repo, tag))
        release = gh.find_release()
        return [release] if release else []
    if not gh.repo_exists():
        raise PublishError(f"{repo.raw}: no such repository on {gh.api}, or the token cannot see it (HTTP 404)")
    return gh.paged("list releases", f"/repos/{repo.full}/releases", limit_pages=10)


def list_models(target: Target, options: Mapping[str, Any]) -> list[ModelEntry]:
    """One entry per model name and release tag, one export per metadata asset of the release."""
    repo = _repo(target)
    gh = GitHub(cast(GhTarget, repo), options, need_token=False)
    scratch = Path(tempfile.mkdtemp(prefix="modelport-gh-list-"))
    try:
        entries: dict[tuple[str, str], ModelEntry] = {}
        for release in _releases(gh, repo, options.get("version")):
            tag = str(release.get("tag_name") or "")
            assets = release.get("assets")
            if not isinstance(assets, list):
                assets = gh.assets(release)
            metas = [a for a in assets if isinstance(a, dict) and
                     (a.get("name") == METADATA or str(a.get("name", "")).endswith(f".{METADATA}"))]
            for asset in metas:
                export = _export(gh, repo, tag, asset, several=len(metas) > 1, scratch=scratch)
                name = str(export.metadata.get("model_name") or "model")
                if options.get("name") and name != options["name"]:
                    continue
                entry = entries.setdefault((name, tag), ModelEntry(
                    name=name, version=tag, target=f"github://{repo.full}",
                    published_at=release.get("published_at") or release.get("created_at"),
                    url=release.get("html_url")))
                entry.exports.append(export)
        return list(entries.values())
    finally:
        gh.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _export(gh: GitHub, repo: _Repo, tag: str, asset: Mapping[str, Any], *, several: bool,
            scratch: Path) -> PublishedExport:
    name = str(asset["name"])
    leaf = name[: -len(f".{METADATA}")] if name != METADATA else ""
    where = f"{repo.raw}@{tag}: {name}"
    if int(asset.get("size") or 0) > MAX_JSON_BYTES:
        raise PublishError(f"{where}: larger than {MAX_JSON_BYTES >> 20} MiB; refusing to read it")
    local = scratch / f"{asset.get('id')}.json"
    gh.download(asset, local, f"download {name}")
    pull_options = {"folder": leaf} if several and leaf else {}
    return published_export(read_small(local, where), folder=leaf, where=where, pull_options=pull_options,
                            pull_target=f"github://{repo.full}@{urllib.parse.unquote(tag)}")

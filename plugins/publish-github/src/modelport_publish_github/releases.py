"""Publish export folders as assets of a GitHub release, and pull one back — the REST API over httpx.

Endpoints (API version 2022-11-28): ``GET /repos/{o}/{r}``, ``GET /repos/{o}/{r}/releases/tags/{tag}``,
``GET /repos/{o}/{r}/releases`` (drafts are not found by tag), ``POST``/``PATCH /repos/{o}/{r}/releases``,
``GET /repos/{o}/{r}/releases/{id}/assets``, ``DELETE /repos/{o}/{r}/releases/assets/{id}``, ``POST`` to the
release's ``upload_url``, and ``GET /repos/{o}/{r}/releases/assets/{id}`` with ``Accept: application/octet-stream``
(a redirect to storage, followed without the token).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
import tempfile
import time
import urllib.parse
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from modelport import ConfigError, PublishError, PublishResult, PullResult, Target
from modelport.folder.exportdir import BENCH_FILE, RECORD_FILE, REFERENCE_FILE
from modelport.publishers.publishing import (
    ExportBundle,
    RetryPolicy,
    base_url,
    collect_bundles,
    human_size,
    one_line,
    parse_retry_after,
    redact,
    render_card,
    safe_relpath,
    say,
    sha256_file,
)

T = TypeVar("T")
DEFAULT_API = "https://api.github.com"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+/-]{0,199}")
NOTES_LIMIT = 125_000  # GitHub's limit on a release body
PROGRESS_MIN_BYTES = 8 << 20
CHUNK = 1 << 20
_DOWNLOAD_LIMIT_SLACK = 1 << 20


@dataclass(frozen=True)
class GhTarget:
    """``github://OWNER/REPO@TAG`` taken apart."""

    owner: str
    repo: str
    tag: str

    @property
    def full(self) -> str:
        return f"{self.owner}/{self.repo}"

    @property
    def raw(self) -> str:
        return f"github://{self.full}@{self.tag}"


def parse_target(target: Target) -> GhTarget:
    """Split a github:// target; exit 3 unless it is ``OWNER/REPO@TAG``."""
    path, _, tag = target.location.partition("@")
    parts = path.strip("/").split("/")
    if len(parts) != 2 or not all(_NAME.fullmatch(p) for p in parts) or not tag:
        raise ConfigError(f"{target.raw}: a github:// target is github://OWNER/REPO@TAG")
    if not _TAG.fullmatch(tag) or ".." in tag or tag.endswith(("/", ".lock")):
        raise ConfigError(f"{target.raw}: {tag!r} is not a valid tag name")
    return GhTarget(parts[0], parts[1], tag)


def resolve_token() -> str | None:
    """GITHUB_TOKEN, else GH_TOKEN (the GitHub CLI's variable)."""
    return os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN") or None


# ----------------------------------------------------------------------------- the client


class GitHubError(Exception):
    """An HTTP error answer from GitHub: status, GitHub's message, and the response headers."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str], method: str, path: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.headers = headers
        self.method = method
        self.path = path

    @property
    def rate_limited(self) -> bool:
        if self.status == 429:
            return True
        return self.status == 403 and (self.headers.get("x-ratelimit-remaining") == "0" or "rate limit" in self.message.lower())


def raise_for(response: Any, method: str, path: str) -> None:
    """Raise GitHubError with GitHub's own message (``message`` plus the ``errors`` codes)."""
    message = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            message = str(body.get("message") or "")
            errors = body.get("errors")
            if isinstance(errors, list) and errors:
                message += " (" + "; ".join(str(e.get("code") or e.get("message") or e) if isinstance(e, dict)
                                             else str(e) for e in errors) + ")"
    except ValueError:
        message = one_line(response.text)
    raise GitHubError(response.status_code, one_line(message) or response.reason_phrase, response.headers, method, path)


def _transport_error(exc: BaseException) -> bool:
    import httpx

    return isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError))


def classify(exc: BaseException) -> tuple[str, float | None] | None:
    """Transient: rate limits (429, 403 with an exhausted quota), 5xx, a dropped or refused connection."""
    if isinstance(exc, GitHubError):
        if exc.rate_limited:
            wait = parse_retry_after(exc.headers.get("retry-after"))
            reset = exc.headers.get("x-ratelimit-reset")
            if wait is None and exc.headers.get("x-ratelimit-remaining") == "0" and reset and reset.isdigit():
                wait = max(0.0, int(reset) - time.time()) + 1
            return f"HTTP {exc.status} rate limited", wait
        if exc.status in (500, 502, 503, 504):
            return f"HTTP {exc.status} from GitHub", parse_retry_after(exc.headers.get("retry-after"))
        return None
    if _transport_error(exc):
        return f"connection failed ({type(exc).__name__})", None
    return None


class GitHub:
    """A few REST calls with retries, one-line errors and a token that never reaches a message."""

    def __init__(self, target: GhTarget, options: Mapping[str, Any], *, need_token: bool) -> None:
        import httpx

        import modelport_publish_github

        self.target = target
        self.api = base_url(options.get("api_url") or os.environ.get("GITHUB_API_URL") or DEFAULT_API, "--api-url")
        self.token = resolve_token()
        if need_token and not self.token:
            raise PublishError(f"{target.raw}: no GitHub token; set GITHUB_TOKEN to a token with contents: write")
        self.policy = RetryPolicy.from_options(options)
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
                   "User-Agent": f"modelport-publish-github/{modelport_publish_github.__version__}"}
        timeout = httpx.Timeout(60.0, connect=15.0)
        # storage hosts that asset downloads redirect to get a client that has no token at all
        self.bare = httpx.Client(headers={"User-Agent": headers["User-Agent"]}, timeout=timeout, follow_redirects=False)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self.http = httpx.Client(headers=headers, timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self.http.close()
        self.bare.close()

    def download(self, asset: Mapping[str, Any], dest: Path, what: str) -> None:
        """Stream an asset into ``dest``. The API answers with a redirect to storage, which is followed
        without the token when it leaves the API's host; more bytes than GitHub declared is an error."""
        limit = int(asset.get("size") or 0) + _DOWNLOAD_LIMIT_SLACK

        def attempt() -> None:
            url = self.url(f"/repos/{self.target.full}/releases/assets/{asset['id']}")
            client = self.http
            for _ in range(6):
                with client.stream("GET", url, headers={"Accept": "application/octet-stream"}) as r:
                    if r.is_redirect:
                        nxt = urllib.parse.urljoin(str(r.url), r.headers["location"])
                        if urllib.parse.urlsplit(nxt)[:2] != urllib.parse.urlsplit(url)[:2]:
                            client = self.bare
                        url = nxt
                        continue
                    if r.status_code != 200:
                        r.read()
                        raise_for(r, "GET", url)
                    n = 0
                    with open(dest, "wb") as f:
                        for block in r.iter_bytes(CHUNK):
                            n += len(block)
                            if n > limit:
                                raise PublishError(f"{self.target.raw}: {what}: larger than the {asset.get('size')} bytes "
                                                   "GitHub declared; refusing it")
                            f.write(block)
                    return
            raise PublishError(f"{self.target.raw}: {what}: too many redirects")

        self.policy.call(attempt, what=what, classify=classify, error=self.error, where=f"{self.target.raw}: ")

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.api}{path}"

    def _once(self, method: str, path: str, ok: tuple[int, ...], **kw: Any) -> Any:
        response = self.http.request(method, self.url(path), **kw)
        if response.status_code not in ok:
            raise_for(response, method, path)
        return response

    def request(self, what: str, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kw: Any) -> Any:
        """One API call with retries; ``content`` may be a zero-argument factory so a retry re-sends the body."""
        factory = kw.pop("content_factory", None)

        def attempt() -> Any:
            if factory is not None:
                kw["content"] = factory()
            return self._once(method, path, ok, **kw)

        return self.policy.call(attempt, what=what, classify=classify, error=self.error, where=f"{self.target.raw}: ")

    def error(self, exc: BaseException, what: str) -> PublishError:
        return PublishError(redact(f"{self.target.raw}: {what}: {self.describe(exc)}", [self.token]))

    def describe(self, exc: BaseException) -> str:
        """What went wrong and what to do, in one line."""
        if isinstance(exc, GitHubError):
            msg = f": {exc.message}" if exc.message else ""
            if exc.status == 401:
                return f"GitHub refused the token (HTTP 401{msg}); set GITHUB_TOKEN to a valid token"
            if exc.rate_limited:
                wait = parse_retry_after(exc.headers.get("retry-after"))
                hint = f"; GitHub asks to wait {wait:.0f} s" if wait is not None else ""
                return f"rate limited by GitHub (HTTP {exc.status}) after retrying{hint}; try again later"
            if exc.status == 403:
                return f"the token may not do this on {self.target.full} (HTTP 403{msg}); it needs contents: write"
            if exc.status == 404:
                return f"not found (HTTP 404{msg})"
            return f"HTTP {exc.status} from GitHub{msg}"
        if _transport_error(exc):
            name = type(exc).__name__
            kind = "timed out" if "Timeout" in name else (
                "refused the connection" if name == "ConnectError" else "dropped the connection")
            return f"{self.api} {kind} ({one_line(exc) or name}); check --api-url and the network"
        return f"{type(exc).__name__}: {one_line(exc)}"

    def paged(self, what: str, path: str, limit_pages: int = 50) -> list[dict[str, Any]]:
        """Every item of a paginated list, following ``Link: rel="next"`` (bounded)."""
        items: list[dict[str, Any]] = []
        url: str | None = path + ("&" if "?" in path else "?") + "per_page=100"
        pages = 0
        while url and pages < limit_pages:
            response = self.request(what, "GET", url)
            data = response.json()
            items.extend(x for x in data if isinstance(x, dict))
            url = response.links.get("next", {}).get("url")
            pages += 1
        return items

    # -- releases
    def repo_exists(self) -> bool:
        try:
            self.request("look up the repository", "GET", f"/repos/{self.target.full}")
            return True
        except PublishError as exc:
            if "HTTP 404" in str(exc):
                return False
            raise

    def find_release(self) -> dict[str, Any] | None:
        """The release for the tag, drafts included (GitHub finds drafts only in the list)."""
        try:
            return dict(self.request("find the release", "GET",
                                     f"/repos/{self.target.full}/releases/tags/{urllib.parse.quote(self.target.tag, safe='')}").json())
        except PublishError as exc:
            if "HTTP 404" not in str(exc):
                raise
        if not self.repo_exists():
            raise PublishError(f"{self.target.raw}: no such repository {self.target.full} on {self.api}, "
                               "or the token cannot see it (HTTP 404)")
        if self.token:
            for release in self.paged("list releases", f"/repos/{self.target.full}/releases", limit_pages=10):
                if release.get("tag_name") == self.target.tag:
                    return release
        return None

    def assets(self, release: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self.paged("list assets", f"/repos/{self.target.full}/releases/{release['id']}/assets")


def _upload_url(release: Mapping[str, Any], name: str) -> str:
    base = str(release["upload_url"]).split("{", 1)[0]
    return f"{base}?{urllib.parse.urlencode({'name': name})}"


def _chunks(path: Path, label: str, total: int) -> Iterator[bytes]:
    """The file in 1 MiB chunks; for a large file, a progress line on stderr every 10%."""
    sent = 0
    next_mark = 10
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            sent += len(block)
            yield block
            if total >= PROGRESS_MIN_BYTES:
                pct = sent * 100 // total
                if pct >= next_mark:
                    say(f"  uploading {label}: {pct}% of {human_size(total)}")
                    next_mark = (pct // 10 + 1) * 10


# ----------------------------------------------------------------------------- what gets uploaded


@dataclass
class Asset:
    """One release asset to upload: its name on the release and the local file."""

    name: str
    path: Path
    size: int
    sha256: str
    content_type: str


def zip_export(bundle: ExportBundle, dest: Path, top: str, replaced: Mapping[str, Path] | None = None) -> Path:
    """A zip of the export folder with fixed times, modes and order, stored (not deflated): byte-identical
    for identical exports on any machine, so a re-publish is recognised by sha256. ``replaced`` maps a file's
    relative name to the file published in its place (export.json without local paths)."""
    replaced = replaced or {}
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED) as zf:
        for f in sorted(bundle.files, key=lambda x: x.rel):
            info = zipfile.ZipInfo(f"{top}/{f.rel}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.create_system = 3
            path = replaced.get(f.rel, f.path)
            with open(path, "rb") as src, zf.open(info, "w", force_zip64=Path(path).stat().st_size > (1 << 31)) as out:
                shutil.copyfileobj(src, out, CHUNK)
    return dest


def _public_record_file(bundle: ExportBundle, folder: Path) -> dict[str, Path]:
    """export.json as published (no absolute local paths, no machine seal), written under ``folder``."""
    if not any(f.rel == RECORD_FILE for f in bundle.files):
        return {}
    import json

    from modelport.publishers.publishing import public_record

    folder.mkdir(parents=True, exist_ok=True)
    out = folder / RECORD_FILE
    out.write_text(json.dumps(public_record(bundle.record), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return {RECORD_FILE: out}


def published_bundles(bundles: list[ExportBundle], scratch: Path) -> list[ExportBundle]:
    """The bundles as they are published: export.json is the public record (no local paths, no seal), written
    under ``scratch``, with its own size and sha256 — what the release notes list and the assets upload."""
    import dataclasses

    from modelport.publishers.publishing import PublishedFile

    out = []
    for i, b in enumerate(bundles):
        replaced = _public_record_file(b, scratch / f"record-{i}")
        files = [PublishedFile(f.rel, replaced[f.rel], replaced[f.rel].stat().st_size, sha256_file(replaced[f.rel]))
                 if f.rel in replaced else f for f in b.files]
        out.append(dataclasses.replace(b, files=files))
    return out


def plan_assets(bundles: list[ExportBundle], scratch: Path) -> list[Asset]:
    """Model files, metadata.json, export.json and one zip per export (``bundles`` as :func:`published_bundles`
    returns them). Several exports prefix names with their folder."""
    assets: list[Asset] = []
    several = len(bundles) > 1
    for b in bundles:
        leaf = b.folder.replace("/", "-") if b.folder else b.format
        prefix = f"{leaf}." if several else ""
        for f in b.files:
            if "/" in f.rel or f.rel in (REFERENCE_FILE, BENCH_FILE):
                continue  # nested files (model.mlpackage/...) and test data travel in the zip
            ctype = "application/json" if f.rel.endswith(".json") else "application/octet-stream"
            assets.append(Asset(prefix + f.rel, f.path, f.size, f.sha256, ctype))
        top = f"{b.model_name}-{leaf}"
        z = zip_export(b, scratch / f"{top}.zip", top)
        assets.append(Asset(f"{top}.zip", z, z.stat().st_size, sha256_file(z), "application/zip"))
    names = [a.name for a in assets]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"two exports would upload assets with the same name: {', '.join(dupes)}")
    return assets


def _remote_sha256(gh: GitHub, asset: Mapping[str, Any], scratch: Path) -> str:
    """The sha256 GitHub reports for an asset (``digest``), else hashed from a download (older GitHub Enterprise)."""
    digest = asset.get("digest")
    if isinstance(digest, str) and digest.startswith("sha256:"):
        return digest.split(":", 1)[1].lower()
    tmp = scratch / f"remote-{asset['id']}"
    gh.download(asset, tmp, f"read asset {asset.get('name')}")
    try:
        return sha256_file(tmp)
    finally:
        tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- publish


def publish(export_dir: Path, target: Target, options: Mapping[str, Any]) -> PublishResult:
    """Create or reuse the release for the tag and upload the assets that it does not hold yet."""
    t = parse_target(target)
    base = str(options.get("folder") or "").strip("/")
    bundles = collect_bundles([Path(d) for d in (options.get("export_dirs") or [export_dir])], base)
    several = len(bundles) > 1
    title = str(options.get("name") or f"{bundles[0].model_name} {t.tag}")
    scratch = Path(tempfile.mkdtemp(prefix="modelport-gh-"))
    try:
        bundles = published_bundles(bundles, scratch)  # the notes list the sha256 of the files as uploaded
        notes = render_card(bundles, license=options.get("license"), with_front_matter=False,
                            pull_target=lambda b: t.raw + (f" --folder {b.folder}" if several else ""))
        if len(notes) > NOTES_LIMIT:
            notes = notes[: NOTES_LIMIT - 200] + "\n\n(truncated: the full card is in the zip's metadata)\n"
        assets = plan_assets(bundles, scratch)
        if options.get("checkpoint"):
            weights = _weights_asset(options["checkpoint"], bundles[0].model_name, scratch)
            if any(a.name == weights.name for a in assets):
                raise ConfigError(f"the checkpoint asset {weights.name} would replace an export file of the same name")
            assets.append(weights)
            notes += (f"\n## PyTorch weights\n\n`{weights.name}`: the state dict as safetensors (no pickle), "
                      f"sha256 `{weights.sha256}`.\n")
        if options.get("dry_run"):
            stage = Path(options["stage_dir"])
            for a in assets:
                shutil.copyfile(a.path, stage / a.name)
            (stage / "RELEASE_NOTES.md").write_text(notes, encoding="utf-8")
            api = str(options.get("api_url") or os.environ.get("GITHUB_API_URL") or DEFAULT_API).rstrip("/")
            return PublishResult(url=f"{_web_url(api)}/{t.full}/releases/tag/{t.tag}", revision=t.tag,
                                 files=[a.name for a in assets],
                                 message=f"dry run: nothing was sent; release notes in {stage / 'RELEASE_NOTES.md'}")
        gh = GitHub(t, options, need_token=True)
        try:
            return _publish(gh, t, options, assets, notes, title, scratch)
        finally:
            gh.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _weights_asset(checkpoint: str, model_name: str, scratch: Path) -> Asset:
    """``MODEL.safetensors``: the checkpoint as safetensors (read with weights_only when it is a PyTorch file)."""
    from modelport.models.checkpoints import to_safetensors

    weights = to_safetensors(checkpoint, scratch / "weights")
    return Asset(f"{model_name}.safetensors", weights.path, weights.bytes, sha256_file(weights.path),
                 "application/octet-stream")


def _web_url(api: str) -> str:
    if api == DEFAULT_API:
        return "https://github.com"
    return re.sub(r"/api/v3$", "", api)


def _publish(gh: GitHub, t: GhTarget, options: Mapping[str, Any], assets: list[Asset], notes: str, title: str,
             scratch: Path) -> PublishResult:
    release = gh.find_release()
    created = release is None
    patch: dict[str, Any] = {}
    if release is None:
        body: dict[str, Any] = {"tag_name": t.tag, "name": title, "body": notes,
                                "draft": bool(options.get("draft")), "prerelease": bool(options.get("prerelease"))}
        if options.get("target_commitish"):
            body["target_commitish"] = options["target_commitish"]
        release = dict(gh.request("create the release", "POST", f"/repos/{t.full}/releases", ok=(201,), json=body).json())
        say(f"{t.raw}: created release {t.tag}" + (" (draft)" if body["draft"] else ""))
    else:
        if (release.get("body") or "") != notes:
            patch["body"] = notes
        for flag in ("draft", "prerelease"):
            if options.get(flag) is not None and bool(release.get(flag)) != bool(options[flag]):
                patch[flag] = bool(options[flag])
        if patch:
            release = dict(gh.request("update the release", "PATCH", f"/repos/{t.full}/releases/{release['id']}",
                                      json=patch).json())

    existing = {a["name"]: a for a in gh.assets(release)} if not created else {}
    to_upload: list[Asset] = []
    skipped: list[str] = []
    conflicts: list[tuple[Asset, dict[str, Any]]] = []
    broken: list[dict[str, Any]] = []
    for a in assets:
        remote = existing.get(a.name)
        if remote is None:
            to_upload.append(a)
        elif remote.get("state", "uploaded") != "uploaded":
            broken.append(remote)  # a leftover of an interrupted upload
            to_upload.append(a)
        elif _remote_sha256(gh, remote, scratch) == a.sha256:
            skipped.append(a.name)
        else:
            conflicts.append((a, remote))
    if conflicts and not options.get("force"):
        names = ", ".join(a.name for a, _ in conflicts)
        raise PublishError(f"{t.raw}: the release already has assets with different content: {names}; "
                           "pass --force to replace them (or publish under a new tag)")
    for remote in broken + [r for _, r in conflicts]:
        gh.request(f"delete asset {remote['name']}", "DELETE", f"/repos/{t.full}/releases/assets/{remote['id']}", ok=(204,))
    to_upload += [a for a, _ in conflicts]
    to_upload.sort(key=lambda a: [x.name for x in assets].index(a.name))

    uploaded: list[str] = []
    for i, a in enumerate(to_upload):
        say(f"{t.raw}: uploading {a.name} ({human_size(a.size)})")
        try:
            gh.request(f"upload {a.name}", "POST", _upload_url(release, a.name), ok=(201,),
                       headers={"Content-Type": a.content_type, "Content-Length": str(a.size)},
                       content_factory=lambda a=a: _chunks(a.path, a.name, a.size))
        except PublishError as exc:
            rest = [x.name for x in to_upload[i:]]
            raise PublishError(
                f"{exc}. Uploaded before the failure: {', '.join(uploaded) or 'nothing'}; not uploaded: {', '.join(rest)}. "
                "Re-run the same command to finish (assets already there with the same sha256 are skipped)") from None
        uploaded.append(a.name)

    url = str(release.get("html_url") or f"{_web_url(gh.api)}/{t.full}/releases/tag/{t.tag}")
    if not uploaded and not created and skipped:
        message = f"no changes: release {t.tag} already holds these {len(skipped)} assets (sha256 match)"
        if patch:
            changed = ["notes" if k == "body" else f"{k}={str(v).lower()}" for k, v in patch.items()]
            message += f"; release {', '.join(changed)} updated"
        return PublishResult(url=url, revision=t.tag, files=[], skipped=skipped, message=message)
    state = "draft release" if release.get("draft") else ("pre-release" if release.get("prerelease") else "release")
    return PublishResult(url=url, revision=t.tag, files=uploaded, skipped=skipped,
                         message=f"{'created' if created else 'updated'} {state} {t.tag}: {len(uploaded)} assets uploaded, "
                                 f"{len(skipped)} unchanged" + (f", {len(conflicts)} replaced" if conflicts else ""))


# ----------------------------------------------------------------------------- pull


def _extract(zip_path: Path, dest: Path, raw: str) -> list[str]:
    """Unpack an export zip into ``dest``: one top folder, plain files only, no name that leaves ``dest``."""
    written: list[str] = []
    with zipfile.ZipFile(zip_path) as zf:
        members = zf.infolist()
        tops = {m.filename.split("/", 1)[0] for m in members}
        if len(tops) != 1:
            raise PublishError(f"{raw}: the export zip must hold one top folder, it holds {len(tops)}")
        total = 0
        for m in members:
            if m.is_dir():
                continue
            kind = stat.S_IFMT(m.external_attr >> 16)  # 0 when the zip tool recorded no Unix type
            if kind and kind != stat.S_IFREG:
                raise PublishError(f"{raw}: refusing {m.filename!r} in the zip: not a plain file")
            _, _, rel = m.filename.partition("/")
            safe_relpath(rel, "file name in the zip", PublishError)
            total += m.file_size
            if total > zip_path.stat().st_size * 4 + (1 << 20):
                raise PublishError(f"{raw}: refusing the zip: it unpacks to far more than its size")
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(m) as src, open(out, "wb") as f:
                shutil.copyfileobj(src, f, CHUNK)
            written.append(rel)
    return written


def pull(target: Target, dest: Path, options: Mapping[str, Any]) -> PullResult:
    """Download the export zip of a release and unpack it into ``dest`` (never run, never unpickled)."""
    t = parse_target(target)
    gh = GitHub(t, options, need_token=False)
    try:
        release = gh.find_release()
        if release is None:
            raise PublishError(f"{t.raw}: {t.full} has no release {t.tag}")
        listed = gh.assets(release)
        zips = [a for a in listed if str(a.get("name", "")).endswith(".zip")]
        folder = str(options.get("folder") or "").strip("/").replace("/", "-")
        if folder:
            zips = [a for a in zips if str(a["name"]).endswith(f"-{folder}.zip")]
        if not zips:
            raise PublishError(f"{t.raw}: release {t.tag} has no export zip" + (f" for folder {folder}" if folder else ""))
        if len(zips) > 1:
            # several exports publish LEAF.metadata.json beside MODEL-LEAF.zip: the leaves are the choices
            leaves = sorted(str(a["name"])[: -len(".metadata.json")] for a in listed
                            if str(a.get("name", "")).endswith(".metadata.json"))
            choices = ", ".join(f"--folder {leaf}" for leaf in leaves) or ", ".join(str(a["name"]) for a in zips)
            raise PublishError(f"{t.raw}: release {t.tag} holds {len(zips)} exports; pick one with {choices}")
        asset = zips[0]
        safe_relpath(str(asset["name"]), "asset name", PublishError)
        scratch = Path(tempfile.mkdtemp(prefix=".modelport-gh-", dir=dest.parent))
        try:
            z = scratch / "export.zip"
            gh.download(asset, z, f"download {asset['name']}")
            digest = asset.get("digest")
            if isinstance(digest, str) and digest.startswith("sha256:") and sha256_file(z) != digest.split(":", 1)[1].lower():
                raise PublishError(f"{t.raw}: {asset['name']} does not match the sha256 GitHub reports for it")
            files = _extract(z, dest, t.raw)
        except zipfile.BadZipFile:
            raise PublishError(f"{t.raw}: {asset['name']} is not a valid zip") from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    finally:
        gh.close()
    if sys.stderr.isatty():
        say(f"{t.raw}: unpacked {asset['name']}")
    return PullResult(source=str(release.get("html_url") or t.raw), files=sorted(files))


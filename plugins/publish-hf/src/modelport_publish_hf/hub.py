"""Publish export folders to a Hugging Face Hub model repo in one commit, and pull one back.

Everything goes through huggingface_hub's ``HfApi`` (create_repo, create_branch, get_paths_info,
preupload_lfs_files, create_commit, list_repo_tree, hf_hub_download): it picks Xet, LFS or inline
upload per file exactly as ``hf upload`` does. This module adds what a release workflow needs on top:
a model card, a sha256 comparison that skips identical re-publishes, retries that honour Retry-After,
one-line errors that never carry the token, and a report of what was uploaded when a publish fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from modelport import ConfigError, PublishError, PublishResult, PullResult, Target
from modelport.folder.exportdir import RECORD_FILE
from modelport.publishers.publishing import (
    CARD_FILE,
    EXTRA_FILES,
    ExportBundle,
    RetryPolicy,
    base_url,
    collect_bundles,
    git_blob_sha1,
    one_line,
    parse_retry_after,
    redact,
    render_card,
    safe_relpath,
)

T = TypeVar("T")
DEFAULT_ENDPOINT = "https://huggingface.co"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_TRANSPORT = {"ConnectError", "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout", "TimeoutException",
              "RemoteProtocolError", "ReadError", "WriteError", "NetworkError", "ProtocolError", "ConnectionError"}


@dataclass(frozen=True)
class HfTarget:
    """``hf://OWNER/REPO[/FOLDER][@REVISION]`` taken apart."""

    repo_id: str
    folder: str
    revision: str | None

    def url(self, endpoint: str) -> str:
        base = f"{endpoint.rstrip('/')}/{self.repo_id}"
        if self.revision or self.folder:
            base += f"/tree/{self.revision or 'main'}" + (f"/{self.folder}" if self.folder else "")
        return base

    def raw(self, folder: str | None = None) -> str:
        folder = self.folder if folder is None else folder
        return f"hf://{self.repo_id}" + (f"/{folder}" if folder else "") + (f"@{self.revision}" if self.revision else "")


def parse_target(target: Target) -> HfTarget:
    """Split an hf:// target; exit 3 on anything that is not ``OWNER/REPO[/FOLDER][@REVISION]``."""
    path, _, revision = target.location.partition("@")
    parts = path.strip("/").split("/")
    if len(parts) < 2 or not all(_NAME.fullmatch(p) for p in parts[:2]) or (revision == "" and "@" in target.location):
        raise ConfigError(f"{target.raw}: an hf:// target is hf://OWNER/REPO[/FOLDER][@REVISION]")
    folder = "/".join(parts[2:])
    if folder:
        try:
            safe_relpath(folder, "folder")
        except ConfigError as exc:
            raise ConfigError(f"{target.raw}: {exc}") from None
    return HfTarget(f"{parts[0]}/{parts[1]}", folder, revision or None)


# ----------------------------------------------------------------------------- errors


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _status(exc: BaseException) -> tuple[int | None, Any]:
    """The HTTP status and response of the first HTTP error in the exception chain."""
    for e in _chain(exc):
        response = getattr(e, "response", None)
        code = getattr(response, "status_code", None)
        if isinstance(code, int):
            return code, response
    return None, None


def _transport(exc: BaseException) -> BaseException | None:
    for e in _chain(exc):
        if any(c.__name__ in _TRANSPORT for c in type(e).__mro__) or isinstance(e, (ConnectionError, TimeoutError)):
            return e
    return None


def classify(exc: BaseException) -> tuple[str, float | None] | None:
    """Transient errors worth a retry: 429, 5xx, a dropped or refused connection."""
    code, response = _status(exc)
    if code == 429:
        return "HTTP 429 rate limited", parse_retry_after(response.headers.get("Retry-After"))
    if code in (500, 502, 503, 504):
        return f"HTTP {code} from the server", parse_retry_after(response.headers.get("Retry-After"))
    if code is None and (t := _transport(exc)) is not None:
        if _unreachable(exc):
            return None  # nothing listens there (refused, unknown host): retrying only adds minutes of noise
        return f"connection failed ({type(t).__name__})", None
    return None


def _unreachable(exc: BaseException) -> bool:
    """A connection that was never established: refused, or a host name that does not resolve."""
    import socket

    for e in _chain(exc):
        if isinstance(e, (ConnectionRefusedError, socket.gaierror)):
            return True
        text = str(e)
        if "Connection refused" in text or "Name or service not known" in text or "nodename nor servname" in text:
            return True
    return False


@contextlib.contextmanager
def _quiet_client_logs() -> Iterator[None]:
    """huggingface_hub logs each of its own retries as a warning; modelport says one line instead."""
    import logging

    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def describe_error(exc: BaseException, where: str, endpoint: str, repo_id: str) -> str:
    """One line that says what failed and what to do; never the token."""
    code, response = _status(exc)
    server = ""
    if response is not None:
        server = one_line(getattr(response, "headers", {}).get("X-Error-Message") or "")
        if not server:
            try:
                body = response.json()
                server = one_line(body.get("error") or body.get("message") or "") if isinstance(body, dict) else ""
            except Exception:
                server = ""
    suffix = f" ({server})" if server else ""
    name = type(exc).__name__
    if code == 401:
        return (f"{where}: the Hub refused the token (HTTP 401){suffix}; set HF_TOKEN to a valid write token "
                "or run `hf auth login`")
    if code == 403:
        return f"{where}: the token may not do this on {repo_id} (HTTP 403){suffix}; use a token with write access"
    if code == 404 or name in ("RepositoryNotFoundError", "RevisionNotFoundError", "RemoteEntryNotFoundError"):
        if name == "RevisionNotFoundError":
            return f"{where}: no such revision in {repo_id} (HTTP 404){suffix}"
        if name in ("RemoteEntryNotFoundError", "EntryNotFoundError"):
            return f"{where}: no such file in {repo_id} (HTTP 404){suffix}"
        return f"{where}: no such repository {repo_id} on {endpoint}, or the token cannot see it (HTTP 404)"
    if code == 429:
        wait = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
        hint = f"; the Hub asks to wait {wait:.0f} s" if wait is not None else ""
        return f"{where}: rate limited by the Hub (HTTP 429) after retrying{hint}; try again later"
    if code is not None:
        return f"{where}: HTTP {code} from {endpoint}{suffix}"
    t = _transport(exc)
    if t is not None:
        kind = "timed out" if "Timeout" in type(t).__name__ else (
            "refused the connection" if "Connect" in type(t).__name__ or isinstance(t, ConnectionRefusedError)
            else "dropped the connection")
        return f"{where}: {endpoint} {kind} ({one_line(t) or type(t).__name__}); check --endpoint / HF_ENDPOINT and the network"
    if isinstance(exc, ValueError) and "README.md" in str(exc):
        return f"{where}: the Hub rejected the model card: {one_line(exc)}"
    return f"{where}: {name}: {one_line(exc)}"


class _Hub:
    """The HfApi client plus what every call needs: retries, error lines, redaction."""

    def __init__(self, target: HfTarget, options: Mapping[str, Any], *, need_token: bool) -> None:
        import modelport
        from huggingface_hub import HfApi, constants, get_token

        self.target = target
        self.endpoint = base_url(options.get("endpoint") or constants.ENDPOINT or DEFAULT_ENDPOINT, "--endpoint")
        self.token = get_token()
        if need_token and not self.token:
            raise PublishError(f"{target.raw()}: no Hugging Face token; set HF_TOKEN or run `hf auth login`")
        self.policy = RetryPolicy.from_options(options)
        self.api = HfApi(endpoint=self.endpoint, token=self.token or False,
                         library_name="modelport", library_version=modelport.__version__)

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one Hub call with retries; a failure becomes a one-line PublishError."""
        with _quiet_client_logs():
            return self.policy.call(fn, what=what, classify=classify, error=self.error, where=f"{self.target.raw()}: ")

    def error(self, exc: BaseException, what: str, extra: str = "") -> PublishError:
        line = describe_error(exc, f"{self.target.raw()}: {what}", self.endpoint, self.target.repo_id) + extra
        return PublishError(redact(line, [self.token]))


# ----------------------------------------------------------------------------- publish


@contextlib.contextmanager
def _progress_bars_only_on_a_terminal() -> Iterator[None]:
    """huggingface_hub's upload bars help on a terminal; in logs they only interleave with our lines."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    turn_off = not sys.stderr.isatty() and not are_progress_bars_disabled()
    if turn_off:
        disable_progress_bars()
    try:
        yield
    finally:
        if turn_off:
            enable_progress_bars()


def _public_record_bytes(b: ExportBundle) -> bytes:
    """export.json as uploaded: the record without local paths and without the machine's seal."""
    import json

    from modelport.publishers.publishing import public_record

    return json.dumps(public_record(b.record), indent=2).encode("utf-8")


def _as_published(b: ExportBundle) -> ExportBundle:
    """``b`` with export.json's size and sha256 those of the uploaded record (what the card lists)."""
    import dataclasses
    import hashlib

    if not b.record:
        return b
    data = _public_record_bytes(b)
    files = [dataclasses.replace(f, size=len(data), sha256=hashlib.sha256(data).hexdigest())
             if f.rel == "export.json" else f for f in b.files]
    return dataclasses.replace(b, files=files)


def _plan(bundles: list[ExportBundle], card: str, card_path: str) -> list[tuple[str, Path | bytes]]:
    plan: list[tuple[str, Path | bytes]] = [
        (b.in_target(f.rel), _public_record_bytes(b) if f.rel == RECORD_FILE and b.record else f.path)
        for b in bundles for f in b.files]
    plan.append((card_path, card.encode("utf-8")))
    return plan


def _same(remote: Any, local: Path | bytes) -> bool:
    """Whether the repo's file equals ours: LFS sha256 when the Hub stores it in LFS, else the git blob id."""
    import hashlib

    lfs = getattr(remote, "lfs", None)
    if lfs is not None and getattr(lfs, "sha256", None):
        if isinstance(local, bytes):
            return str(lfs.sha256) == hashlib.sha256(local).hexdigest()
        from modelport.publishers.publishing import sha256_file

        return str(lfs.sha256) == sha256_file(local)
    blob = getattr(remote, "blob_id", None)
    if not blob:
        return False
    if isinstance(local, bytes):
        return str(blob) == hashlib.sha1(b"blob %d\0" % len(local) + local, usedforsecurity=False).hexdigest()
    return str(blob) == git_blob_sha1(local)


def publish(export_dir: Path, target: Target, options: Mapping[str, Any]) -> PublishResult:
    """Upload one or several export folders (and a generated model card) to an hf:// repo in one commit."""
    t = parse_target(target)
    if t.revision and re.fullmatch(r"[0-9a-f]{40}", t.revision):
        raise ConfigError(f"{target.raw}: cannot publish to a commit; name a branch after @")
    base = t.folder or str(options.get("folder") or "").strip("/")
    if base:
        try:
            safe_relpath(base, "folder", PublishError)
        except PublishError as exc:
            raise ConfigError(str(exc)) from None
    bundles = [_as_published(b) for b in collect_bundles([Path(d) for d in (options.get("export_dirs") or [export_dir])], base)]
    card = render_card(bundles, license=options.get("license"),
                       pull_target=lambda b: t.raw(b.folder) if (len(bundles) > 1 or b.folder) else t.raw(""))
    card_path = f"{base}/{CARD_FILE}" if base else CARD_FILE
    weights_dir = Path(tempfile.mkdtemp(prefix="modelport-hf-weights-"))
    try:
        return _publish(t, target, options, bundles, card, card_path, base, weights_dir)
    finally:
        shutil.rmtree(weights_dir, ignore_errors=True)


def _weights(options: Mapping[str, Any], base: str, workdir: Path) -> tuple[str, Path, str] | None:
    """``(path in the repo, local safetensors file, card section)`` for ``-o checkpoint=FILE``, else None."""
    if not options.get("checkpoint"):
        return None
    from modelport.models.checkpoints import WEIGHTS_FILE, to_safetensors
    from modelport.publishers.publishing import sha256_file

    weights = to_safetensors(options["checkpoint"], workdir)
    path_in_repo = f"{base}/pytorch/{WEIGHTS_FILE}" if base else f"pytorch/{WEIGHTS_FILE}"
    origin = f", converted from `{weights.converted_from}` (read with weights_only)" if weights.converted_from else ""
    section = (f"\n## PyTorch weights\n\n`{path_in_repo}`: the state dict ({weights.tensors} tensors, {weights.bytes} bytes, "
               f"sha256 `{sha256_file(weights.path)}`) as safetensors{origin} — no pickle. Load it with "
               "`safetensors.torch.load_file` and `model.load_state_dict`.\n")
    return path_in_repo, weights.path, section


def _collection(hub: _Hub, options: Mapping[str, Any], repo_id: str) -> str:
    """Add the repository to ``-o collection=OWNER/SLUG``; a note for the result message."""
    slug = str(options.get("collection") or "").strip("/")
    if not slug:
        return ""
    hub.call(f"add to collection {slug}", lambda: hub.api.add_collection_item(
        slug, item_id=repo_id, item_type="model", exists_ok=True))
    return f"; in collection {slug}"


def _publish(t: HfTarget, target: Target, options: Mapping[str, Any], bundles: list[ExportBundle], card: str,
             card_path: str, base: str, weights_dir: Path) -> PublishResult:
    from huggingface_hub import CommitOperationAdd

    weights = _weights(options, base, weights_dir)
    if weights is not None:
        card = card.replace("\n## Usage\n", weights[2] + "\n## Usage\n", 1)
    plan = _plan(bundles, card, card_path)
    if weights is not None:
        plan.append((weights[0], weights[1]))
    paths = [p for p, _ in plan]

    if options.get("dry_run"):
        stage = Path(options["stage_dir"])
        for path_in_repo, local in plan:
            dest = stage / path_in_repo
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(local, bytes):
                dest.write_bytes(local)
            else:
                shutil.copyfile(local, dest)
        endpoint = str(options.get("endpoint") or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        extra = f"; then add it to collection {options['collection']}" if options.get("collection") else ""
        return PublishResult(url=t.url(endpoint), revision=t.revision, files=paths,
                             message=f"dry run: nothing was sent; one commit of {len(paths)} files would go to "
                                     f"{t.repo_id}; the model card is {stage / card_path}{extra}")

    hub = _Hub(t, options, need_token=True)
    private = True if options.get("private") else None
    hub.call("create repo", lambda: hub.api.create_repo(t.repo_id, private=private, exist_ok=True, repo_type="model"))
    if t.revision and t.revision != "main":
        hub.call(f"create branch {t.revision}", lambda: hub.api.create_branch(t.repo_id, branch=t.revision, exist_ok=True))

    def remote_state() -> dict[str, Any]:
        infos = hub.call("list files", lambda: hub.api.get_paths_info(t.repo_id, paths, revision=t.revision))
        return {i.path: i for i in infos if hasattr(i, "blob_id")}

    remote = remote_state()
    changed = [(p, local) for p, local in plan if p not in remote or not _same(remote[p], local)]
    unchanged = [p for p, local in plan if (p, local) not in changed]
    if not changed:
        note = _collection(hub, options, t.repo_id)
        return PublishResult(url=t.url(hub.endpoint), revision=t.revision, files=[], skipped=unchanged,
                             message=f"no changes: {t.repo_id} already holds these {len(unchanged)} files "
                                     f"(sha256 match); no commit made{note}")

    ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(local) if isinstance(local, Path) else local)
           for p, local in changed]
    with _progress_bars_only_on_a_terminal():
        uploaded: list[str] = []
        for i, op in enumerate(ops):
            try:
                hub.call(f"upload {op.path_in_repo}", lambda op=op: hub.api.preupload_lfs_files(
                    t.repo_id, additions=[op], revision=t.revision, free_memory=False))
            except PublishError as exc:
                if sys.stderr.isatty():
                    print(file=sys.stderr)  # end the progress bar's line before the error line
                rest = [o.path_in_repo for o in ops[i:]]
                raise PublishError(
                    f"{exc}. Done before the failure: {', '.join(uploaded) or 'nothing'} (small files travel with the commit); "
                    f"not uploaded: {', '.join(rest)}; nothing was committed. Re-run the same command to finish "
                    "(uploaded files are not sent again)") from None
            uploaded.append(op.path_in_repo)

    names = ", ".join(sorted({b.format for b in bundles}))
    message = str(options.get("commit_message") or f"Publish {bundles[0].model_name} ({names}) with modelport")
    description = "Files: " + ", ".join(p for p, _ in changed)

    def commit() -> Any:
        try:
            return hub.api.create_commit(t.repo_id, operations=ops, commit_message=message,
                                         commit_description=description, revision=t.revision)
        except Exception as exc:
            # a commit whose answer was lost may have landed: look before committing again
            if classify(exc) is not None:
                try:
                    now = hub.api.get_paths_info(t.repo_id, paths, revision=t.revision)
                except Exception:
                    raise exc from None
                state = {i.path: i for i in now if hasattr(i, "blob_id")}
                if all(p in state and _same(state[p], local) for p, local in changed):
                    return None
            raise

    try:
        info = hub.call("commit", commit)
    except PublishError as exc:
        raise PublishError(f"{exc}. All {len(ops)} changed files were uploaded but nothing was committed; "
                           "re-run the same command to finish") from None
    oid = getattr(info, "oid", None)
    note = _collection(hub, options, t.repo_id)
    return PublishResult(url=t.url(hub.endpoint), revision=oid or t.revision, files=[p for p, _ in changed],
                         skipped=unchanged,
                         message=f"one commit{f' {oid[:12]}' if oid else ''}: {len(changed)} files changed, "
                                 f"{len(unchanged)} unchanged{note}")


# ----------------------------------------------------------------------------- pull


def pull(target: Target, dest: Path, options: Mapping[str, Any]) -> PullResult:
    """Download one export folder of an hf:// repo into ``dest``: metadata.json first, then what it lists."""
    t = parse_target(target)
    hub = _Hub(t, options, need_token=False)
    folder = t.folder or str(options.get("folder") or "").strip("/")
    listing = hub.call("list files", lambda: list(hub.api.list_repo_tree(
        t.repo_id, path_in_repo=folder or None, recursive=True, revision=t.revision)))
    files = {e.path for e in listing if hasattr(e, "blob_id")}
    if not folder and "metadata.json" not in files:
        found = sorted(p.rsplit("/", 1)[0] for p in files if p.endswith("/metadata.json"))
        if not found:
            raise PublishError(f"{target.raw}: no metadata.json in {t.repo_id}; is it a modelport export?")
        if len(found) > 1:
            choices = ", ".join(t.raw(f) for f in found)
            raise PublishError(f"{target.raw}: the repo holds {len(found)} exports; pull one of them: {choices}")
        folder = found[0]
    prefix = f"{folder}/" if folder else ""
    if f"{prefix}metadata.json" not in files:
        raise PublishError(f"{target.raw}: no {prefix}metadata.json in {t.repo_id}")

    workdir = Path(tempfile.mkdtemp(prefix=".modelport-hf-", dir=dest.parent))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, True)
        stack.enter_context(_progress_bars_only_on_a_terminal())
        got = _download_export(hub, t, target, dest, workdir, prefix, files)
    return PullResult(source=HfTarget(t.repo_id, folder, t.revision).url(hub.endpoint), files=sorted(got))


def _download_export(hub: _Hub, t: HfTarget, target: Target, dest: Path, workdir: Path, prefix: str,
                     files: set[str]) -> list[str]:
    """metadata.json first, then every file it lists (names checked before any request), then the extras."""
    def fetch(rel: str) -> Path:
        safe_relpath(rel, "file name", PublishError)
        name = prefix + rel
        got = hub.call(f"download {name}", lambda: hub.api.hf_hub_download(
            t.repo_id, name, revision=t.revision, local_dir=workdir))
        src = Path(got)
        if src.is_symlink() or not src.is_file() or not src.resolve().is_relative_to(workdir.resolve()):
            raise PublishError(f"{target.raw}: refusing {name}: it was not saved as a plain file in the download folder")
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, out)
        return out

    md_file = fetch("metadata.json")
    try:
        metadata = json.loads(md_file.read_text(encoding="utf-8"))
        table = metadata["files"]
        if not isinstance(table, dict) or not table:
            raise ValueError
    except Exception:
        raise PublishError(f"{target.raw}: {prefix}metadata.json is not a modelport metadata file") from None
    wanted = [safe_relpath(str(rel), "file name in metadata.json", PublishError) for rel in sorted(table)]
    missing = [rel for rel in wanted if prefix + rel not in files]
    if missing:
        raise PublishError(f"{target.raw}: metadata.json lists files the repo does not hold: {', '.join(missing)}")
    extras = [n for n in (*EXTRA_FILES, CARD_FILE) if n != "metadata.json" and prefix + n in files and n not in table]
    got = ["metadata.json"]
    for rel in [*wanted, *extras]:
        fetch(rel)
        got.append(rel)
    return got

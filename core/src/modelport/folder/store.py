"""The export store: work in a temporary folder beside the target, rename into place when complete.

With an exports root, each export gets ``<root>/<export-id>/`` and ``<root>/index.json`` lists them;
the index is updated under a file lock and replaced atomically, so parallel exports never lose entries.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from modelport.errors import ConfigError, ModelportError
from modelport.folder.exportfiles import KNOWN_FILES, RECORD_FILE

TMP_PREFIX = ".modelport-tmp-"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, what: str = "name") -> str:
    """A single safe path component; ``..``, separators and absolute paths are refused."""
    if not text or text in (".", "..") or "/" in text or "\\" in text or "\x00" in text or Path(text).is_absolute():
        raise ConfigError(f"{what} {text!r} is not a safe file name (no '/', '..' or absolute paths)")
    return text


def slug(text: str) -> str:
    return _SAFE.sub("-", text).strip("-.")[:64] or "model"


_GENERIC_CLASSES = frozenset({"Sequential", "ModuleList", "ModuleDict", "GraphModule", "RecursiveScriptModule",
                              "ScriptModule", "OptimizedModule", "Module", "InterpreterModule", "UnflattenedModule"})


def default_model_name(model: Any, reference: str | None = None) -> str:
    """The name a model is recorded and published under when none is given — one rule for the CLI and the API:
    the model's class in snake_case (``SmallCNN`` → ``small_cnn``). Where the class says nothing (``Sequential``,
    a loaded ``.pt2``), the reference's factory name or file stem (``models.py:resnet`` → ``resnet``)."""
    cls = getattr(model, "original_name", None) or type(model).__name__  # TorchScript keeps the class name
    if cls not in _GENERIC_CLASSES:
        snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", cls).lower()
        return slug(snake)
    if reference and reference != "python object":
        if ":" in reference and not Path(reference).exists():
            return slug(reference.rsplit(":", 1)[1].replace(".", "_"))
        return slug(Path(reference).stem)
    return slug(cls.lower())


def safe_relpath(rel: str, what: str = "file name", error: type[ModelportError] = ConfigError) -> str:
    """A relative POSIX path that stays inside its folder, else ``error`` (publishers pass PublishError).

    Refused: empty, absolute (``/x``, ``C:x``), backslashes, NUL, ``.`` or ``..`` parts, a trailing ``/``.
    """
    bad = not isinstance(rel, str) or not rel or rel.startswith(("/", "\\")) or "\\" in rel or "\x00" in rel \
        or rel.endswith("/")
    parts = () if bad else PurePosixPath(rel).parts
    if bad or not parts or any(part in ("", ".", "..") for part in rel.split("/")) or ":" in parts[0]:
        raise error(f"refusing {what} {rel!r}: it would write outside its folder")
    return rel


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_table(root: Path, exclude: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """``{relative name: {bytes, sha256}}`` for every file under ``root``."""
    table: dict[str, dict[str, Any]] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            rel = p.relative_to(root).as_posix()
            if rel in exclude:
                continue
            table[rel] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
    return table


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def new_export_id(model_name: str, fmt: str) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{slug(model_name)}-{slug(fmt)}-{stamp}-{secrets.token_hex(3)}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file in the same folder, fsync, then replace — readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=False, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (fcntl) held for the duration of the block."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


#: Files an export folder may hold besides those its export.json lists (written after export, or by publishers).
EXPORT_EXTRAS = frozenset(KNOWN_FILES)
_STAGING = re.compile(re.escape(TMP_PREFIX) + r"(?P<token>\d+-[0-9a-f]{8})-(?P<kind>new|old)-(?P<name>.+)$")


def written_by_modelport(folder: Path) -> bool:
    """True when ``folder`` is empty or an export folder: an export.json whose file table (plus the record files
    modelport writes itself) accounts for every file in it. Only such a folder may be replaced or deleted."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    try:
        entries = list(folder.rglob("*"))
    except OSError:
        return False
    if not entries:
        return True
    rec = folder / RECORD_FILE  # read here, not through modelport.folder.exportdir: this check must never raise
    if not rec.exists() and not rec.is_symlink():
        return _only_format_folders(folder)
    if rec.is_symlink() or not rec.is_file():
        return False
    try:
        record = json.loads(rec.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    table = record.get("files") if isinstance(record, dict) else None
    if not isinstance(table, dict):
        return False
    known = set(table) | EXPORT_EXTRAS
    for p in entries:
        if p.is_dir() and not p.is_symlink():
            continue
        if p.relative_to(folder).as_posix() not in known:
            return False
    return True


def check_replaceable(target: Path, flag: str = "--force") -> None:
    """ConfigError (exit 3, nothing touched) unless ``target`` is absent or a folder modelport wrote."""
    if not (target.exists() or target.is_symlink()):
        return
    if not written_by_modelport(target):
        raise ConfigError(f"{target} exists and is not an export folder modelport wrote (it holds files no "
                          f"export.json lists); {flag} replaces only export folders — choose another output folder")


def _only_format_folders(folder: Path) -> bool:
    """True when ``folder`` holds nothing but export folders modelport wrote, each named after its format
    (``onnx/``, ``pt2/``): what a multi-format export (``--output-dir DIR -f onnx -f pt2``) or a file:// version
    of several exports looks like. A registry's model folder (``v1/``, ``v2/``) is not one."""
    try:
        children = list(folder.iterdir())
    except OSError:
        return False
    for child in children:
        if child.is_symlink() or not child.is_dir() or not written_by_modelport(child):
            return False
        try:
            record = json.loads((child / RECORD_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return False
        if not isinstance(record, dict) or record.get("format") != child.name:
            return False
    return bool(children)


class StagedDir:
    """A temporary folder beside ``target`` that becomes ``target`` on :meth:`commit`.

    Anything that goes wrong before commit leaves the target untouched and the temp folder removed. The
    writer holds an advisory lock on ``.modelport-tmp-<token>.lock`` for as long as the folder lives, so
    another process — in another PID namespace or on another host sharing the disk — judges liveness by the
    lock, not by a PID. A replaced target is kept as ``…-old-<name>`` until the new one is in place; if the
    writer is killed in between, the next run in that folder puts the old one back.
    """

    def __init__(self, target: Path, force: bool = False) -> None:
        self.target = target
        self.force = force
        self.committed = False
        self._lock_fd: int | None = None
        parent = target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            remove_stale_staging(parent)
            token = f"{os.getpid()}-{secrets.token_hex(4)}"
            self._lock_path = parent / f"{TMP_PREFIX}{token}.lock"
            self._lock_fd = _hold_lock(self._lock_path)
            self.path = parent / f"{TMP_PREFIX}{token}-new-{target.name}"
            self._old = parent / f"{TMP_PREFIX}{token}-old-{target.name}"
            self.path.mkdir(mode=0o777 & ~_umask())
        except OSError as exc:
            self._release()
            raise ModelportError(f"cannot write in {parent}: {exc.strerror or exc}", exit_code=1) from None
        _LIVE.add(self.path)
        _LIVE_LOCKS[self.path] = self

    def commit(self) -> Path:
        old = None
        try:
            if self.target.exists() or self.target.is_symlink():
                if not self.force:
                    raise ConfigError(f"{self.target} already exists; pass --force to replace it")
                check_replaceable(self.target)
                old = self._old
                os.replace(self.target, old)
            os.replace(self.path, self.target)
        except OSError as exc:
            if old is not None and not self.target.exists():
                os.replace(old, self.target)
            raise ModelportError(f"cannot move the export into {self.target}: {exc.strerror or exc}") from None
        finally:
            _LIVE.discard(self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.committed = True
        self._release()
        return self.target

    def discard(self) -> None:
        if not self.committed:
            shutil.rmtree(self.path, ignore_errors=True)
            _LIVE.discard(self.path)
        self._release()

    def _release(self) -> None:
        _LIVE_LOCKS.pop(getattr(self, "path", None), None)  # type: ignore[arg-type]
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._lock_path)
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> StagedDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


def _hold_lock(path: Path) -> int:
    """Create ``path`` and hold an exclusive advisory lock on it until the returned descriptor is closed."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return fd


def _lock_is_free(path: Path) -> bool:
    """True when nobody holds the lock on ``path`` (its writer is gone); False while it is held or unreadable."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


_LIVE: set[Path] = set()
_LIVE_LOCKS: dict[Path, StagedDir] = {}
# Set by the CLI's SIGINT/SIGTERM handler: converters sometimes wrap KeyboardInterrupt in their own errors,
# and an interrupted run must still end as "interrupted" (130 / 143), not as a failed export (1).
INTERRUPTED = False
SIGNAL = 0


def on_sigint(signum: int, frame: object) -> None:
    """SIGINT and SIGTERM: remember which, and unwind as KeyboardInterrupt so staging folders are removed."""
    global INTERRUPTED, SIGNAL
    INTERRUPTED = True
    SIGNAL = signum
    raise KeyboardInterrupt


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _older_than(path: Path, seconds: float) -> bool:
    import time

    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False


def remove_stale_staging(parent: Path) -> list[Path]:
    """Remove temp folders whose writer is gone (its lock is free); put back a target a killed writer had moved aside.

    Folders from older versions (no lock file) are judged by PID, and only when older than a minute.
    """
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for p in sorted(entries, key=lambda e: e.name):
        if not p.name.startswith(TMP_PREFIX) or p.name.endswith(".lock"):
            continue
        m = _STAGING.match(p.name)
        if m:
            lock = parent / f"{TMP_PREFIX}{m.group('token')}.lock"
            if lock.exists() and not _lock_is_free(lock):
                continue
            if not lock.exists() and m.group("kind") == "new" and not _older_than(p, 3600):
                continue  # a writer between creating its lock and its folder, or one that lost its lock file
            if m.group("kind") == "old":
                target = parent / m.group("name")
                if not (target.exists() or target.is_symlink()):
                    with contextlib.suppress(OSError):
                        os.replace(p, target)  # the writer died between its two renames: recover the old export
                        removed.append(p)
                        continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
            continue
        legacy = re.match(re.escape(TMP_PREFIX) + r"(\d+)-", p.name)
        if legacy and p.is_dir() and not _pid_alive(int(legacy.group(1))) and _older_than(p, 60):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    for lock in parent.glob(f"{TMP_PREFIX}*.lock"):
        token = lock.name[len(TMP_PREFIX):-len(".lock")]
        if not any(parent.glob(f"{TMP_PREFIX}{token}-*")) and _lock_is_free(lock):
            with contextlib.suppress(OSError):
                lock.unlink()
    return removed


def cleanup_live_staging() -> None:
    """Remove every temp folder still open (called on Ctrl-C and at exit)."""
    for p in list(_LIVE):
        shutil.rmtree(p, ignore_errors=True)
        _LIVE.discard(p)
    for staged in list(_LIVE_LOCKS.values()):
        staged._release()


def update_index(root: Path, entry: dict[str, Any]) -> None:
    """Add or replace ``entry`` (keyed by ``id``) in ``root/index.json`` under a lock, atomically."""
    index_path = root / "index.json"
    with file_lock(root / ".index.lock"):
        data = read_index(root)
        data["exports"] = [e for e in data["exports"] if e.get("id") != entry["id"]]
        data["exports"].append(entry)
        data["updated_at"] = now_iso()
        write_json_atomic(index_path, data)


def read_index(root: Path) -> dict[str, Any]:
    index_path = root / "index.json"
    if not index_path.exists():
        return {"schema_version": 1, "exports": []}
    try:
        data = json.loads(index_path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("exports"), list):
            raise ValueError("unexpected layout")
        return data
    except (ValueError, OSError) as exc:
        raise ModelportError(f"{index_path} is not a valid index ({exc}); move it aside to rebuild") from None


def index_entry(record: dict[str, Any], folder: str) -> dict[str, Any]:
    return {
        "id": record.get("id"), "path": folder, "format": record.get("format"),
        "model_name": record.get("model_name"), "status": record.get("status"),
        "created_at": record.get("created_at"),
    }

"""What modelport trusts, and the checks that keep files from elsewhere from running code (docs/security.md).

Everything modelport did not write in this run is untrusted: a MODEL file, a ``--checkpoint``, and every file
of a pulled or copied export folder. Three kinds of file can run code when loaded:

- a TorchScript archive (it is a program: its ``__setstate__`` runs on load, its ``forward`` can read and
  write files),
- a ``.pt2`` archive with pickled parts (``use_pickle`` weights or constants, custom objects, legacy pickled
  weight files, sample inputs that only a full unpickler reads, AOTInductor shared libraries),
- an export record (``export.json``) whose ``source`` names a callable that ``bench`` would import and call,
- a ``.safetensors`` artifact whose header names the factory that rebuilds the model (``modelport.factory``,
  the ``pytorch`` format): the weights are data, but running them imports and calls that factory.

Loading any of them needs ``trust_code=True`` (``--trust-code``), unless modelport wrote the export on this
machine: every export.json is sealed with an HMAC under a key that lives in modelport's data folder on this
machine (``MODELPORT_HOME``, default ``$XDG_DATA_HOME/modelport``). A record whose seal verifies, with files
whose sha256 match its table, was written by modelport here; a pulled, copied or edited one was not.

The checks read zip member names and small JSON files; nothing in the file is executed or unpickled.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError
from modelport.folder.exportfiles import METADATA_FILE, RECORD_FILE

SEAL_KEY = "seal"
TRUST_HINT = "pass --trust-code (Python: trust_code=True) only if you trust where it came from"
_KEY_FILE = "record.key"
_SAMPLE_INPUT_CAP = 64 * 1024 * 1024
#: The safetensors header key naming the factory that rebuilds the model (``path/file.py:fn``, ``pkg.mod:fn``).
FACTORY_KEY = "modelport.factory"
_HEADER_CAP = 100 * 1024 * 1024


class UntrustedCode(ConfigError):
    """Loading a file would run code from it and the caller did not opt in (exit 3; nothing ran)."""


def refuse(what: str, would_run: str) -> UntrustedCode:
    """The one-line refusal: what would have run, and how to opt in."""
    return UntrustedCode(f"{what}: {would_run}; refused, nothing was run — {TRUST_HINT}")


# ----------------------------------------------------------------------------- archive contents


def archive_kind(path: Path) -> str | None:
    """'pt2', 'torchscript', 'pickle' (another zip written by torch.save) or None (not a zip); reads names only."""
    try:
        if not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if any(n.endswith("/archive_format") or n == "archive_format" for n in names):
        return "pt2"
    if any(n.split("/")[1:2] == ["code"] for n in names) or any(n.endswith("/constants.pkl") for n in names):
        return "torchscript"
    return "pickle"


def _members(zf: zipfile.ZipFile) -> dict[str, str]:
    """Archive-relative member name (without the archive's root folder) → full member name."""
    out = {}
    for name in zf.namelist():
        rel = name.split("/", 1)[1] if "/" in name else name
        out[rel] = name
    return out


def pt2_code_parts(path: Path) -> list[str]:
    """What in a ``.pt2`` archive ``torch.export.load`` would unpickle or load as native code (empty: data only).

    torch 2.13 unpickles a weight or constant whose payload config says ``use_pickle``, custom and opaque
    objects, legacy ``data/weights/<model>.pt`` files, and sample inputs that ``weights_only`` refuses (it
    falls back to a full unpickler); it loads AOTInductor shared libraries; and an archive without
    ``models/*.json`` goes through the old format's pickled path.
    """
    import pickle

    found: list[str] = []
    try:
        with zipfile.ZipFile(path) as zf:
            members = _members(zf)
            models = [r[len("models/"):-len(".json")] for r in members if r.startswith("models/") and r.endswith(".json")]
            if not models:
                return ["no models/*.json (the pre-2.8 format, read through a full unpickler)"]
            for rel in members:
                low = rel.lower()
                if low.startswith(("data/aotinductor/", "data/mtia")) or low.endswith((".so", ".dll", ".dylib", ".pyd")):
                    found.append(f"native code {rel}")
            for model in models:
                for legacy in (f"data/weights/{model}.pt", f"data/constants/{model}.pt"):
                    if legacy in members:
                        found.append(f"pickled {legacy}")
                for kind in ("weights", "constants"):
                    cfg_name = f"data/{kind}/{model}_{kind}_config.json"
                    if cfg_name not in members:
                        continue
                    try:
                        cfg = json.loads(zf.read(members[cfg_name]).decode("utf-8"))
                    except (ValueError, UnicodeDecodeError):
                        found.append(f"unreadable {cfg_name}")
                        continue
                    entries = cfg.get("config") if isinstance(cfg, Mapping) else None
                    if not isinstance(entries, Mapping):
                        found.append(f"unreadable {cfg_name}")
                        continue
                    for fqn, meta in entries.items():
                        meta = meta if isinstance(meta, Mapping) else {}
                        name = str(meta.get("path_name", ""))
                        if meta.get("use_pickle") is not False:
                            found.append(f"pickled {kind[:-1]} {fqn!r}")
                        elif kind == "constants" and not name.startswith("tensor_"):
                            found.append(f"pickled object {fqn!r}")
                sample = f"data/sample_inputs/{model}.pt"
                if sample in members:
                    info = zf.getinfo(members[sample])
                    if info.file_size > _SAMPLE_INPUT_CAP:
                        found.append(f"oversized {sample}")
                    else:
                        import torch

                        try:
                            torch.load(io.BytesIO(zf.read(members[sample])), weights_only=True)
                        except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, zipfile.BadZipFile):
                            found.append(f"pickled {sample}")
    except (zipfile.BadZipFile, OSError, KeyError) as exc:
        return [f"unreadable archive ({exc})"]
    return found


def check_pt2(path: Path, *, trust_code: bool, what: str | None = None) -> None:
    """Refuse a ``.pt2`` whose loading would unpickle or load native code, unless ``trust_code``."""
    if trust_code:
        return
    parts = pt2_code_parts(path)
    if parts:
        shown = ", ".join(parts[:3]) + (f" (+{len(parts) - 3} more)" if len(parts) > 3 else "")
        raise refuse(what or str(path), f"loading this .pt2 would run code from it ({shown})")


def check_torchscript(path: Path, *, trust_code: bool, what: str | None = None) -> None:
    """TorchScript is a program: refuse it unless trusted or the artifact of an export modelport sealed here."""
    if trust_code or sealed_artifact(path):
        return
    raise refuse(what or str(path), "a TorchScript archive is a program that runs when loaded "
                                    "(not written by modelport on this machine)")


def check_model_file(path: Path, *, trust_code: bool, what: str | None = None) -> str | None:
    """Check a file about to be loaded as a model or artifact; returns its archive kind."""
    kind = archive_kind(path)
    if kind == "pt2":
        check_pt2(path, trust_code=trust_code, what=what)
    elif kind == "torchscript":
        check_torchscript(path, trust_code=trust_code, what=what)
    return kind


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a ``.safetensors`` file (tensor names, dtypes, shapes, ``__metadata__``); reads no tensor."""
    import struct

    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ConfigError(f"{path}: too short to be a safetensors file")
        (size,) = struct.unpack("<Q", raw)
        if size > _HEADER_CAP:
            raise ConfigError(f"{path}: implausible safetensors header size {size}")
        try:
            header = json.loads(f.read(size))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: unreadable safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise ConfigError(f"{path}: unreadable safetensors header (not a JSON object)")
    return header


def factory_of(path: Path) -> str | None:
    """The factory a ``.safetensors`` artifact names for rebuilding its model (imported and called to run it)."""
    if path.suffix != ".safetensors" or not path.is_file():
        return None
    try:
        meta = read_safetensors_header(path).get("__metadata__")
    except (ConfigError, OSError):
        return None
    ref = meta.get(FACTORY_KEY) if isinstance(meta, Mapping) else None
    return str(ref) if ref else None


# ----------------------------------------------------------------------------- the local seal


def home() -> Path:
    """modelport's data folder on this machine (holds the key that seals export records)."""
    if os.environ.get("MODELPORT_HOME"):
        return Path(os.environ["MODELPORT_HOME"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "modelport"


def _key(create: bool) -> bytes | None:
    """This machine's sealing key (32 random bytes, mode 0600), created on first use when ``create``."""
    path = home() / _KEY_FILE
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    except OSError:
        pass
    if not create:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
    except FileExistsError:
        pass
    except OSError:
        return None  # no writable data folder: exports are simply unsealed (never trusted later)
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data if len(data) >= 32 else None


def _digest(key: bytes, record: Mapping[str, Any], metadata_sha256: str | None) -> str:
    body = {k: v for k, v in record.items() if k != SEAL_KEY}
    payload = json.dumps(body, sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=str).encode()
    mac = hmac.new(key, payload, hashlib.sha256)
    mac.update(b"\0metadata.json\0" + (metadata_sha256 or "").encode())
    return mac.hexdigest()


def seal(record: Mapping[str, Any], export_dir: Path) -> dict[str, str] | None:
    """The seal to store in ``record`` (covers the record, its file table and metadata.json), or None."""
    from modelport.folder.store import sha256_file

    key = _key(create=True)
    if key is None:
        return None
    md = export_dir / METADATA_FILE
    md_sha = sha256_file(md) if md.is_file() else None
    return {"alg": "hmac-sha256", "key_id": hashlib.sha256(key).hexdigest()[:16], "mac": _digest(key, record, md_sha)}


def seal_verifies(record: Mapping[str, Any], export_dir: Path) -> bool:
    """True when ``record`` (with export_dir's metadata.json) carries a seal made with this machine's key."""
    from modelport.folder.store import sha256_file

    stored = record.get(SEAL_KEY)
    if not isinstance(stored, Mapping) or not isinstance(stored.get("mac"), str):
        return False
    key = _key(create=False)
    if key is None:
        return False
    md = export_dir / METADATA_FILE
    md_sha = sha256_file(md) if md.is_file() else None
    return hmac.compare_digest(_digest(key, record, md_sha), stored["mac"])


def files_match(export_dir: Path, table: Mapping[str, Any], names: Iterable[str]) -> bool:
    """True when each of ``names`` is a regular file inside export_dir matching the size and sha256 in ``table``."""
    from modelport.folder.store import sha256_file

    root = export_dir.resolve()
    for rel in names:
        meta = table.get(rel)
        p = export_dir / rel
        if not isinstance(meta, Mapping) or p.is_symlink() or not p.is_file():
            return False
        try:
            p.resolve().relative_to(root)
        except ValueError:
            return False
        if p.stat().st_size != meta.get("bytes") or sha256_file(p) != meta.get("sha256"):
            return False
    return True


def sealed_artifact(path: Path) -> bool:
    """True when ``path`` is a file of an export folder modelport sealed on this machine, unchanged since."""
    export_dir = path.parent
    rec_path = export_dir / RECORD_FILE  # read here: modelport.folder.exportdir imports this module
    if not rec_path.is_file():
        return False
    try:
        record = json.loads(rec_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    if not isinstance(record, dict) or not seal_verifies(record, export_dir):
        return False
    return files_match(export_dir, record.get("files") or {}, [path.name])


# ----------------------------------------------------------------------------- an export folder


@dataclass
class ExportTrust:
    """What an export folder is trusted with: ``local`` when modelport sealed its record on this machine."""

    local: bool
    trust_code: bool

    @property
    def may_import_source(self) -> bool:
        """Whether the record's ``source`` (module:factory) may be imported and called."""
        return self.trust_code or self.local


def check_export(export_dir: Path, record: Mapping[str, Any], artifact_files: Iterable[str], *,
                 trust_code: bool, verified: bool = False, run_factory: bool = True) -> ExportTrust:
    """Check an export folder before its artifact is loaded: stays inside the folder, runs no untrusted code.

    ``verified``: the caller already checked every file against the record's sha256 table. A file that
    would run code is loaded only with ``trust_code`` or when the sealed record's table covers it unchanged;
    files that run no code cost one look at their zip directory, never a hash. ``run_factory=False``: the
    caller only reads the artifact (``inspect``), so a factory named in a ``.safetensors`` header is not a reason
    to refuse.
    """
    export_dir = Path(export_dir)
    root = export_dir.resolve()
    names = list(artifact_files)
    for rel in names:
        p = export_dir / rel
        if p.is_symlink():
            raise ConfigError(f"{export_dir}: {rel} is a symbolic link; refusing to follow it out of the export folder")
        try:
            p.resolve().relative_to(root)
        except ValueError:
            raise ConfigError(f"{export_dir}: {rel} lies outside the export folder") from None
    local = seal_verifies(record, export_dir)
    if trust_code:
        return ExportTrust(local=local, trust_code=True)
    for rel in names:
        p = export_dir / rel
        if not p.is_file():
            continue
        factory = factory_of(p) if run_factory else None
        if factory and not (local and (verified or files_match(export_dir, record.get("files") or {}, [rel]))):
            raise refuse(f"{export_dir}: {rel}", f"running it imports and calls the factory it names ({factory}), "
                                                 "and this export was not written by modelport on this machine")
        kind = archive_kind(p)
        if kind not in ("pt2", "torchscript"):
            continue
        if kind == "pt2" and not (local and verified):
            parts = pt2_code_parts(p)  # reads the zip directory and two small JSON files
            if not parts:
                continue
        sealed = local and (verified or files_match(export_dir, record.get("files") or {}, [rel]))
        if sealed:
            continue
        if kind == "torchscript":
            raise refuse(f"{export_dir}: {rel}", "a TorchScript archive is a program that runs when loaded, "
                                                 "and this export was not written by modelport on this machine")
        check_pt2(p, trust_code=False, what=f"{export_dir}: {rel}")
    return ExportTrust(local=local, trust_code=False)

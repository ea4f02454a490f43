"""One type for an export folder: the side-file names, the export.json schema, the typed record (ExportRecord,
written by write_record) and ExportFolder (open, record, metadata, artifact, reference, verify), so every reader
and the one writer go through the same checks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import ConfigError, ModelportError
from modelport.folder.exportfiles import (
    BENCH_FILE,
    CARD_FILE,
    KNOWN_FILES,
    METADATA_FILE,
    RECORD_FILE,
    REFERENCE_FILE,
    SIDE_FILES,
)

if TYPE_CHECKING:
    from modelport.folder.trust import ExportTrust
    from modelport.plugins.host import PluginHost
    from modelport.plugins.types import Artifact

__all__ = [
    "BENCH_FILE", "CARD_FILE", "KNOWN_FILES", "METADATA_FILE", "RECORD_FILE", "REFERENCE_FILE", "SIDE_FILES",
    "ExportFolder", "ExportRecord", "OpenedExport", "artifact_from_dir", "check_record", "open_export",
    "read_record", "record_errors", "record_schema", "verify_files", "write_record",
]


@lru_cache(maxsize=1)
def record_schema() -> dict[str, Any]:
    """The export.json JSON Schema shipped in the package."""
    text = resources.files("modelport").joinpath("schema/export.schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def record_errors(data: Any) -> list[str]:
    """Every schema violation of an export record, as ``path: message`` lines (empty when valid)."""
    import jsonschema

    validator = jsonschema.validators.validator_for(record_schema())(record_schema())
    errors = []
    for err in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        errors.append(f"{where}: {err.message[:200]}")
    return errors


def check_record(data: Any, where: Path | str) -> dict[str, Any]:
    """The record when it fits the schema; a ConfigError (exit 3) naming the first violation otherwise."""
    if not isinstance(data, dict) or "format" not in data or "artifact" not in data:
        raise ConfigError(f"{where}: not a modelport export record")
    errors = record_errors(data)
    if errors:
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{where}: not a valid modelport export record: {errors[0]}{more}")
    return data


def read_record(export_dir: Path) -> dict[str, Any]:
    """export.json of a folder, checked against its schema; ConfigError (exit 3) when it is not one."""
    path = export_dir / RECORD_FILE
    if not export_dir.exists():
        raise ConfigError(f"{export_dir}: no such export directory")
    if not export_dir.is_dir():
        raise ConfigError(f"{export_dir}: not a directory (expected an export directory)")
    if not path.is_file():
        raise ConfigError(f"{export_dir}: no export.json (is this a modelport export directory?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({type(exc).__name__}: {str(exc)[:200]})") from None
    return check_record(data, path)


@dataclass(kw_only=True)
class ExportRecord:
    """export.json as a typed object: the keys modelport writes, in the order it writes them.

    Nested parts (inputs, validation, files, ...) stay plain JSON values. Keys this version does not know are
    kept in ``extra`` and written back, so a record from a newer modelport survives a round trip.
    """

    id: str | None = None
    format: str
    status: str | None = None
    created_at: str | None = None
    model_name: str | None = None
    task: str | None = None
    source: dict[str, Any] | None = None
    artifact: str
    artifact_files: list[str] | None = None
    precision: str | None = None
    inputs: Any = None
    binding: Any = None
    artifact_inputs: list[str] | None = None
    outputs: list[Any] | None = None
    artifact_outputs: list[str] | None = None
    options: dict[str, Any] | None = None
    plugin: Any = None
    details: dict[str, Any] | None = None
    notes: list[Any] | None = None
    timings: dict[str, Any] | None = None
    sizes: dict[str, Any] | None = None
    files: dict[str, Any] | None = None
    validation: dict[str, Any] | None = None
    log: str | None = None
    environment: dict[str, Any] | None = None
    exit_code: int | None = None
    artifact_input_dtypes: Any = None
    seal: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # keys from a dict, so a round trip writes back exactly the nulls it read; None for a record built in code
    _given: frozenset[str] | None = field(default=None, init=False, repr=False, compare=False)

    # left out when None (written only when known); every other key the schema lets be null is written as null
    _OPTIONAL = ("exit_code", "artifact_input_dtypes", "seal")

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The record keys this version knows, in the order they are written."""
        return tuple(f.name for f in fields(cls) if not f.name.startswith("_") and f.name != "extra")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: Path | str = RECORD_FILE) -> ExportRecord:
        """The typed record of a dict that fits the schema (ConfigError otherwise); unknown keys go to ``extra``."""
        checked = check_record(dict(data), where)
        known = set(cls.keys())
        record = cls(**{k: v for k, v in checked.items() if k in known},
                     extra={k: v for k, v in checked.items() if k not in known})
        record._given = frozenset(checked)
        return record

    def _writes(self, key: str) -> bool:
        """Whether to_dict writes ``key``: set, or read as null, or (built in code) nullable in the schema."""
        if getattr(self, key) is not None:
            return True
        if self._given is not None:
            return key in self._given
        kind = record_schema()["properties"].get(key, {}).get("type", "null")
        return key not in self._OPTIONAL and (kind == "null" or "null" in kind)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object to write: known keys in order (unknown values as null where the schema allows it),
        then ``extra``; a record read from a dict writes back the same keys."""
        out = {k: getattr(self, k) for k in self.keys() if self._writes(k)}
        return {**out, **{k: v for k, v in self.extra.items() if k not in out}}

    @property
    def verdict(self) -> str | None:
        """The validation status (passed, failed, inconclusive, structure-only, not-validated), if recorded."""
        status = (self.validation or {}).get("status")
        return str(status) if status is not None else None


def write_record(export_dir: Path, record: ExportRecord | Mapping[str, Any], *, seal: bool = True) -> dict[str, Any]:
    """Write export.json atomically and return what was written: checked against the schema first and, with
    ``seal``, sealed for this machine (see modelport.folder.trust) — so metadata.json must already be in place."""
    from modelport.folder.store import write_json_atomic
    from modelport.folder.trust import SEAL_KEY
    from modelport.folder.trust import seal as make_seal

    data = record.to_dict() if isinstance(record, ExportRecord) else dict(record)
    errors = record_errors(data)
    if errors:  # a bug in whoever built the record (exit 1), never something the user can fix
        raise ModelportError(f"{export_dir}: refusing to write an invalid export record: {errors[0]}")
    if seal:
        data.pop(SEAL_KEY, None)
        sealed = make_seal(data, export_dir)
        if sealed is not None:  # no key (an unwritable data folder): the record is written unsealed
            data[SEAL_KEY] = sealed
    write_json_atomic(export_dir / RECORD_FILE, data)
    return data


def artifact_from_dir(export_dir: Path, record: Mapping[str, Any] | None = None) -> Artifact:
    """Rebuild the Artifact of an export folder from its record; names that leave the folder are refused."""
    from modelport.folder.store import safe_relpath
    from modelport.plugins.types import Artifact

    record = record or read_record(export_dir)
    main = safe_relpath(str(record["artifact"]), "artifact name in export.json")
    files = [safe_relpath(str(f), "file name in export.json") for f in record.get("artifact_files") or [main]]
    return Artifact(
        format=str(record["format"]), path=export_dir / main, files=files,
        precision=str(record.get("precision", "fp32")), details=dict(record.get("details") or {}),
        input_names=record.get("artifact_inputs"), output_names=record.get("artifact_outputs"),
        input_dtypes=record.get("artifact_input_dtypes"), options=dict(record.get("options") or {}),
    )


def verify_files(export_dir: Path, files: Mapping[str, Any]) -> list[str]:
    """Names whose sha256 or size differ from the table, or missing, or symbolic links; ConfigError for a name
    leaving the folder."""
    from modelport.folder.store import safe_relpath, sha256_file

    bad = []
    for rel, meta in files.items():
        p = export_dir / safe_relpath(rel)
        if p.is_symlink():  # modelport writes none: a link may point at anything on this machine
            bad.append(f"{rel} (symbolic link)")
        elif not p.is_file():
            bad.append(f"{rel} (missing)")
        elif not isinstance(meta, Mapping) or p.stat().st_size != meta.get("bytes") or sha256_file(p) != meta.get("sha256"):
            bad.append(f"{rel} (sha256 mismatch)")
    return bad


@dataclass
class ExportFolder:
    """An export folder opened for reading: its validated export.json and lazily its metadata and artifact."""

    path: Path
    record: dict[str, Any]
    _metadata: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str | Path) -> ExportFolder:
        """Read and validate export.json; ConfigError (exit 3) for a missing, corrupt or foreign record."""
        p = Path(path)
        return cls(p, read_record(p))

    @property
    def format(self) -> str:
        return str(self.record["format"])

    @property
    def typed_record(self) -> ExportRecord:
        """The record as an ExportRecord (``record`` stays the dict exactly as on disk, as its seal covers it)."""
        return ExportRecord.from_dict(self.record, self.path / RECORD_FILE)

    @property
    def metadata(self) -> dict[str, Any]:
        """metadata.json, checked against its schema."""
        if self._metadata is None:
            from modelport.folder.metadata import load_metadata

            self._metadata = dict(load_metadata(self.path / METADATA_FILE))
        return self._metadata

    @property
    def artifact(self) -> Artifact:
        """The artifact the record names (a fresh object each time; names leaving the folder are refused)."""
        return artifact_from_dir(self.path, self.record)

    @property
    def reference_path(self) -> Path:
        return self.path / REFERENCE_FILE

    def files(self) -> Mapping[str, Any]:
        """The sha256/size table of every recorded file (export.json and metadata.json merged)."""
        return {**(self.record.get("files") or {}), **(self.metadata.get("files") or {})}

    def verify(self) -> list[str]:
        """Names whose sha256 or size differ from the record (or are missing); empty when intact."""
        return verify_files(self.path, self.files())

    def check_intact(self, changed: type[ModelportError] = ConfigError, *, host: PluginHost | None = None) -> None:
        """Raise the readers' one error when the record names a file outside the folder (ConfigError), a recorded
        file changed since export, or an artifact its format does not write (``changed``; by default
        ConfigError, exit 3) — a record edited to claim another format would hand one format's file to another's
        loader. The format's declared files come from ``host`` (default: this process's plugins)."""
        from modelport.plugins.host import get_plugin_manager

        artifact_from_dir(self.path, self.record)
        bad = self.verify()
        if bad:
            raise changed(f"{self.path}: files changed since export: {', '.join(bad)}")
        entry = (host or get_plugin_manager()).formats.get(self.format)
        declared = {f.rstrip("?").rstrip("/") for f in entry[0].files} if entry else set()
        name = str(self.record.get("artifact", "")).rstrip("/")
        if declared and name not in declared:
            raise changed(f"{self.path}: export.json says format {self.format!r}, whose artifact is "
                          f"{' or '.join(sorted(declared))}, but names {name!r}: the record does not match the folder")

    def trust(self, *, trust_code: bool, verified: bool = False, run_factory: bool = True) -> ExportTrust:
        """What this folder may run (see modelport.folder.trust): refuses code-running artifacts from elsewhere;
        ``run_factory=False`` for readers that only read a factory reference (inspect)."""
        from modelport.folder.trust import check_export

        return check_export(self.path, self.record, self.artifact.files, trust_code=trust_code, verified=verified,
                            run_factory=run_factory)


@dataclass
class OpenedExport:
    """An export folder whose files match their recorded sha256 and whose artifact may be loaded here."""

    export_dir: Path
    record: dict[str, Any]
    metadata: dict[str, Any]
    host: PluginHost
    artifact: Artifact
    folder: ExportFolder
    trust: ExportTrust


def open_export(export_dir: str | Path, *, host: PluginHost | None = None, trust_code: bool = False,
                changed: type[ModelportError] = ConfigError, need_plugin: bool = True,
                run_factory: bool = True) -> OpenedExport:
    """Open an export folder to run its artifact (validate, bench, compare, inspect, debug): the record and
    metadata.json checked against their schemas, the format installed, every recorded file checked against its
    sha256 (``changed`` is raised when one differs; by default the readers' one ConfigError, exit 3), and the
    trust rules applied — an artifact that runs code when loaded needs a folder sealed here or ``trust_code``.
    ``need_plugin=False`` (inspect) opens a folder whose format has no plugin installed here, and
    ``run_factory=False`` one whose artifact names a factory it will only read, not run."""
    from modelport.plugins.host import get_plugin_manager

    folder = ExportFolder.open(export_dir)
    metadata = folder.metadata
    host = host or get_plugin_manager()
    if need_plugin:
        host.require_format(folder.format)
    folder.check_intact(changed, host=host)
    artifact = folder.artifact
    trust = folder.trust(trust_code=trust_code, verified=True, run_factory=run_factory)
    return OpenedExport(folder.path, folder.record, metadata, host, artifact, folder, trust)

"""One type for an export folder: the side-file names, the export.json schema, and ExportFolder (open, record,
metadata, artifact, reference, verify) so every reader goes through the same checks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import ConfigError

if TYPE_CHECKING:
    from modelport.types import Artifact

RECORD_FILE = "export.json"
METADATA_FILE = "metadata.json"
REFERENCE_FILE = "reference.npz"
SIDE_FILES = (RECORD_FILE, METADATA_FILE, REFERENCE_FILE)


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
    """The record when it fits the schema; a ConfigError (exit 2) naming the first violation otherwise."""
    if not isinstance(data, dict) or "format" not in data or "artifact" not in data:
        raise ConfigError(f"{where}: not a modelport export record")
    errors = record_errors(data)
    if errors:
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{where}: not a valid modelport export record: {errors[0]}{more}")
    return data


def read_record(export_dir: Path) -> dict[str, Any]:
    """export.json of a folder, checked against its schema; ConfigError (exit 2) when it is not one."""
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


@dataclass
class ExportFolder:
    """An export folder opened for reading: its validated export.json and lazily its metadata and artifact."""

    path: Path
    record: dict[str, Any]
    _metadata: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str | Path) -> ExportFolder:
        """Read and validate export.json; ConfigError (exit 2) for a missing, corrupt or foreign record."""
        p = Path(path)
        return cls(p, read_record(p))

    @property
    def format(self) -> str:
        return str(self.record["format"])

    @property
    def metadata(self) -> dict[str, Any]:
        """metadata.json, checked against its schema."""
        if self._metadata is None:
            from modelport.metadata import load_metadata

            self._metadata = dict(load_metadata(self.path / METADATA_FILE))
        return self._metadata

    @property
    def artifact(self) -> Artifact:
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


def artifact_from_dir(export_dir: Path, record: Mapping[str, Any] | None = None) -> Artifact:
    """Rebuild the Artifact of an existing export folder from its export.json."""
    from modelport.store import safe_relpath
    from modelport.types import Artifact

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
    """Names whose sha256 or size differ from the table (or are missing)."""
    from modelport.store import safe_relpath, sha256_file

    bad = []
    for rel, meta in files.items():
        p = export_dir / safe_relpath(rel)
        if not p.is_file():
            bad.append(f"{rel} (missing)")
        elif p.stat().st_size != meta.get("bytes") or sha256_file(p) != meta.get("sha256"):
            bad.append(f"{rel} (sha256 mismatch)")
    return bad

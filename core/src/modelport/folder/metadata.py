"""metadata.json: build it from the model, inputs and plugins, and check it against the shipped schema."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError, ModelportError
from modelport.folder.exportfiles import METADATA_FILE

SCHEMA_VERSION = 1


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The metadata JSON Schema shipped in the package."""
    text = resources.files("modelport").joinpath("schema/metadata.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def schema_properties() -> set[str]:
    return set(schema()["properties"])


def validation_errors(metadata: Mapping[str, Any]) -> list[str]:
    """Every schema violation, as ``path: message`` lines (empty when valid)."""
    import jsonschema

    validator_cls = jsonschema.validators.validator_for(schema())
    validator = validator_cls(schema(), format_checker=validator_cls.FORMAT_CHECKER)
    errors = []
    for err in sorted(validator.iter_errors(dict(metadata)), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        errors.append(f"{where}: {err.message}")
    return errors


def check(metadata: Mapping[str, Any], where: str = "metadata.json") -> None:
    errors = validation_errors(metadata)
    if errors:
        raise ModelportError(f"{where} fails the schema: {errors[0]}" + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""),
                             exit_code=3)


def load_metadata(path: Path) -> dict[str, Any]:
    """Read and schema-check an existing metadata.json (exit 3 when it is missing or invalid)."""
    if path.is_dir():
        path = path / METADATA_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: no metadata.json (is this a modelport export directory?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a JSON object")
    check(data, str(path))
    return data


# Written by the core from the run and the user's flags; no plugin may replace them (a plugin once set
# validation.status = "passed" on a --no-validate export).
CORE_OWNED: frozenset[str] = frozenset({
    "schema_version", "framework", "model_name", "export_format", "created_at", "export_config", "task_type",
    "class_names", "num_classes", "modelport_version", "torch_version", "plugin", "files", "validation",
})


@dataclass(frozen=True)
class Contribution:
    """What one plugin's ``describe_metadata`` returned for an artifact, and whether it owns the format."""

    plugin: str
    fields: Mapping[str, Any]
    own_format: bool = True


def admit(item: Contribution) -> dict[str, Any]:
    """The fields a plugin may contribute, or a PluginContractError naming the plugin and the field.

    No plugin may set a core-owned field (:data:`CORE_OWNED`). The plugin that owns the artifact's format
    may set the other schema fields (e.g. a TFLite ``input_shape`` in channels-last); any other plugin (a
    wrapper stamping every ONNX export) contributes only under ``extra_metadata``, in names of its own.
    """
    from modelport.errors import PluginContractError

    fields = dict(item.fields)
    taken = sorted(set(fields) & CORE_OWNED)
    if taken:
        raise PluginContractError(f"plugin {item.plugin} broke the contract: describe_metadata may not set "
                                  f"{', '.join(taken)} (written by modelport itself)")
    if not item.own_format:
        schema_fields = sorted(k for k in fields if k in schema_properties() and k != "extra_metadata")
        if schema_fields:
            raise PluginContractError(
                f"plugin {item.plugin} broke the contract: describe_metadata set {', '.join(schema_fields)} for a "
                "format it does not own; contribute under extra_metadata.<your name> instead")
    return fields


def merge_plugin_fields(base: dict[str, Any], contributed: list[Mapping[str, Any] | Contribution | None]) -> dict[str, Any]:
    """Merge ``describe_metadata`` results: schema fields at the top, anything else under extra_metadata.

    A plain mapping counts as the format owner's contribution. A plugin that does not own the format may
    not replace an ``extra_metadata`` entry another contribution made.
    """
    props = schema_properties()
    extra: dict[str, Any] = dict(base.get("extra_metadata") or {})
    for raw in contributed:
        item = raw if isinstance(raw, Contribution) else Contribution("?", raw or {})
        if not item.fields:
            continue
        for key, value in admit(item).items():
            if key in props and key not in ("extra_metadata",):
                if value is None and key not in ("quantization",):  # a plugin may drop a field that does not apply
                    base.pop(key, None)
                elif isinstance(base.get(key), dict) and isinstance(value, dict):
                    base[key] = {**base[key], **value}
                else:
                    base[key] = value
                continue
            entries = value if key == "extra_metadata" and isinstance(value, Mapping) else {key: value}
            for name, entry in entries.items():
                if not item.own_format and name in extra:
                    from modelport.errors import PluginContractError

                    raise PluginContractError(f"plugin {item.plugin} broke the contract: describe_metadata would "
                                              f"replace extra_metadata.{name}, which another plugin wrote")
                extra[name] = entry
    if extra:
        base["extra_metadata"] = extra
    return base


def read_class_names(path: str | Path) -> list[str]:
    """Class names from a text file (one per line) or JSON (a list, or a {index: name} object)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--class-names {p}: no such file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"--class-names {p}: not UTF-8 text") from None
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        try:
            data = json.loads(stripped)
        except (ValueError, RecursionError) as exc:
            raise ConfigError(f"--class-names {p}: invalid JSON ({exc})") from None
        if isinstance(data, dict):
            try:
                return [str(data[k]) for k in sorted(data, key=lambda k: int(k))]
            except ValueError:
                raise ConfigError(f"--class-names {p}: object keys must be class indices") from None
        if isinstance(data, list):
            return [str(x) for x in data]
        raise ConfigError(f"--class-names {p}: expected a list of names")
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ConfigError(f"--class-names {p}: the file is empty")
    return names


def parse_json_object(text: str | None, flag: str) -> dict[str, Any]:
    if not text:
        return {}
    candidate = Path(text)
    if not text.lstrip().startswith("{") and candidate.suffix == ".json" and candidate.is_file():
        text = candidate.read_text(encoding="utf-8")
    from modelport.engine.limits import load_json

    value = load_json(text, flag)
    if not isinstance(value, dict):
        raise ConfigError(f"{flag} must be a JSON object")
    return value

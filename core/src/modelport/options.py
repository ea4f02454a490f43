"""``-o key=value`` options and ``--config`` JSON, checked against each format's OptionSpecs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from modelport.errors import ConfigError
from modelport.types import FormatSpec, OptionSpec

_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n"}

# Keys of the multi-framework export convention handled by the core itself.
CORE_CONFIG_KEYS = {"dynamic_axes", "dynamic", "input_shape", "batch_size", "imgsz", "half"}
# Convention keys every format understands under its own option name, when it declares that option.
CONVENTION_ALIASES = {
    "opset_version": "opset", "workspace_size": "workspace", "int8": "int8", "fp16": "fp16",
    "simplify": "simplify", "half": "fp16", "optimize": "optimize_for_inference",
}


def coerce(opt: OptionSpec, value: Any, where: str) -> Any:
    """Turn a string (from ``-o``) or JSON value into the option's type, or fail with exit 3."""
    t = opt.type
    try:
        if t == "bool":
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            raise ValueError
        if t == "int":
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if t == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if t == "choice":
            s = str(value).strip().lower() if not isinstance(value, bool) else str(value).lower()
            assert opt.choices is not None
            for choice in opt.choices:  # case-insensitive, but the declared spelling is what the plugin gets
                if choice.lower() == s:
                    return choice
            raise ConfigError(f"{where}: {opt.name}={value!r} is not one of {', '.join(opt.choices)}")
        if t == "json":
            return json.loads(value) if isinstance(value, str) else value
        if value is None:
            return None
        return str(value)
    except ConfigError:
        raise
    except (ValueError, TypeError, json.JSONDecodeError):
        raise ConfigError(f"{where}: {opt.name}={value!r} is not a valid {t}") from None


def defaults(spec: FormatSpec) -> dict[str, Any]:
    return {o.name: o.default for o in spec.options}


def parse_pairs(pairs: Sequence[str]) -> list[tuple[str | None, str, str]]:
    """``-o fmt.key=value`` / ``-o key=value`` → (format or None, key, value)."""
    out = []
    for raw in pairs:
        if "=" not in raw:
            raise ConfigError(f"-o {raw!r} is not like key=value (or format.key=value)")
        key, _, value = raw.partition("=")
        key = key.strip()
        if not key:
            raise ConfigError(f"-o {raw!r} has an empty key")
        fmt = None
        if "." in key:
            fmt, _, key = key.partition(".")
        out.append((fmt, key.replace("-", "_"), value))
    return out


def resolve_options(
    specs: Mapping[str, FormatSpec],
    pairs: Sequence[str] = (),
    config: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per requested format, its full option dict: defaults, then ``--config``, then ``-o`` (last wins)."""
    resolved = {name: defaults(spec) for name, spec in specs.items()}
    applied_any: dict[str, bool] = {}

    def apply(fmt: str | None, key: str, value: Any, where: str) -> None:
        targets: Iterable[str]
        if fmt is not None:
            if fmt not in specs:
                raise ConfigError(f"{where}: {fmt}.{key} names format {fmt!r}, which is not being exported")
            targets = [fmt]
        else:
            targets = list(specs)
        hit = False
        for name in targets:
            spec = specs[name]
            opt = spec.option(key)
            if opt is None:
                alias = spec.config_aliases.get(key) or CONVENTION_ALIASES.get(key)
                opt = spec.option(alias) if alias else None
            if opt is None:
                continue
            resolved[name][opt.name] = coerce(opt, value, f"{where} ({name})")
            hit = True
        if not hit:
            known = sorted({o.name for n in targets for o in specs[n].options})
            scope = f"format {fmt!r}" if fmt else "the requested format(s) " + ", ".join(specs)
            raise ConfigError(f"{where}: unknown option {key!r} for {scope}; known: {', '.join(known) or 'none'}")
        applied_any[key] = True

    for key, value in (config or {}).items():
        if key in CORE_CONFIG_KEYS:
            continue
        if key in specs and isinstance(value, Mapping):
            for k, v in value.items():
                apply(key, k.replace("-", "_"), v, "--config")
            continue
        apply(None, key.replace("-", "_"), value, "--config")
    for fmt, key, value in parse_pairs(pairs):
        apply(fmt, key, value, "-o")
    return resolved

"""``-o key=value`` options and ``--config`` JSON, checked against each format's OptionSpecs."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from modelport.errors import ConfigError
from modelport.plugins.types import FormatSpec, OptionSpec, PublisherSpec

_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n"}

# Keys of the multi-framework export convention handled by the core itself (the input spec). Every other
# --config key must be an option of a requested format, or an alias that format declares
# (``FormatSpec.config_aliases``, e.g. onnx's ``half`` for ``fp16``): an unknown key is an error.
CORE_CONFIG_KEYS = {"dynamic_axes", "dynamic", "input_shape", "batch_size"}


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
    pairs: Sequence[str] | Mapping[str, Any] = (),
    config: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per requested format, its full option dict: defaults, then ``--config``, then ``-o`` (last wins).

    ``pairs`` is the ``-o`` list (``["onnx.opset=17", "strict=true"]``) or, from Python, a mapping of the
    same: per format (``{"onnx": {"opset": 17}}``) or for every format that has the option
    (``{"strict": True}``). Keys may be an option's name or an alias the format declares
    (``config_aliases``, e.g. ``half`` for ``fp16``); an unknown key is a ConfigError.
    """
    resolved = {name: defaults(spec) for name, spec in specs.items()}

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
            opt = find_option(specs[name], key)
            if opt is None:
                continue
            resolved[name][opt.name] = coerce(opt, value, f"{where} ({name})")
            hit = True
        if not hit:
            scope = f"format {fmt!r}" if fmt else "the requested format(s) " + ", ".join(specs)
            raise ConfigError(f"{where}: unknown option {key!r} for {scope}; "
                              + _suggest(key, [k for n in targets for k in option_keys(specs[n])]))

    def apply_mapping(mapping: Mapping[str, Any], where: str, core_keys: set[str]) -> None:
        for key, value in mapping.items():
            if key in core_keys:
                continue
            if key in specs:
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{where}: the options of format {key!r} must be a mapping of "
                                      f"option names to values, got {type(value).__name__}")
                for k, v in value.items():
                    apply(key, str(k).replace("-", "_"), v, where)
                continue
            apply(None, str(key).replace("-", "_"), value, where)

    apply_mapping(config or {}, "--config", CORE_CONFIG_KEYS)
    if isinstance(pairs, Mapping):
        apply_mapping(pairs, "options", set())
    else:
        if isinstance(pairs, str):
            raise ConfigError(f"options must be a list of 'key=value' strings or a mapping, got the string {pairs!r}")
        for fmt, key, value in parse_pairs(pairs):
            apply(fmt, key, value, "-o")
    return resolved


def _suggest(key: str, known: Iterable[str]) -> str:
    """``did you mean: a, b`` for the close matches of ``key``, else the known names."""
    names = sorted(set(known))
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
    if close:
        return "did you mean: " + ", ".join(close) + "?"
    return "known: " + (", ".join(names) or "none")


def option_keys(spec: FormatSpec) -> list[str]:
    """Every key that sets an option of ``spec``: option names, their aliases and the declared config aliases."""
    keys = [o.name for o in spec.options]
    keys += [a for o in spec.options for a in o.aliases]
    return keys + [k for k, v in spec.config_aliases.items() if spec.option(v) is not None]


def find_option(spec: FormatSpec, key: str) -> OptionSpec | None:
    """The option ``key`` names in ``spec``: its own name (or an option alias), or a config alias it declares."""
    opt = spec.option(key)
    if opt is None:
        alias = spec.config_aliases.get(key)
        opt = spec.option(alias) if alias else None
    return opt


def aliases_of(spec: FormatSpec, option: str) -> list[str]:
    """Every other key that sets ``option`` of ``spec`` (its own aliases first, then declared config aliases)."""
    own = spec.option(option)
    names = list(own.aliases) if own is not None else []
    return names + [k for k, v in spec.config_aliases.items() if v == option and k not in names]


def option_rows(spec: FormatSpec) -> list[dict[str, Any]]:
    """Every option of a format as ``modelport formats --options`` lists it: name, type, default, choices,
    the other keys that set it, help."""
    rows = []
    for opt in spec.options:
        row = opt.describe()
        row["aliases"] = aliases_of(spec, opt.name)
        rows.append(row)
    return rows


def resolve_publisher_options(spec: PublisherSpec, options: Sequence[str] | Mapping[str, Any] | None = None,
                              ) -> dict[str, Any]:
    """A publisher's full option dict: its defaults, then ``options`` — the same shapes export takes:
    flat (``{"private": True}``), by scheme (``{"hf": {"private": True}}``) or ``["private=true"]``."""
    where = f"{spec.scheme}://"
    out = {o.name: o.default for o in spec.options}
    if isinstance(options, str):
        raise ConfigError(f"options must be a list of 'key=value' strings or a mapping, got the string {options!r}")
    pairs: list[tuple[str, Any]]
    if isinstance(options, Mapping):
        pairs = []
        for key, value in options.items():
            if key == spec.scheme and isinstance(value, Mapping):
                pairs += [(str(k), v) for k, v in value.items()]
            else:
                pairs.append((str(key), value))
    else:
        pairs = []
        for fmt, key, value in parse_pairs(options or ()):
            if fmt is not None and fmt != spec.scheme:
                raise ConfigError(f"-o {fmt}.{key}: {fmt!r} is not the target's scheme {spec.scheme!r}")
            pairs.append((key, value))
    for key, value in pairs:
        key = key.replace("-", "_")
        opt = next((o for o in spec.options if o.name == key or key in o.aliases), None)
        if opt is None:
            raise ConfigError(f"unknown option {key!r} for {where}; "
                              + _suggest(key, [o.name for o in spec.options]))
        out[opt.name] = coerce(opt, value, where)
    return out


def publisher_args(args: Sequence[str]) -> dict[str, Any]:
    """Publisher flags after the target (``--private``, ``--endpoint URL``, ``-o key=value``) → {option: text}."""
    out: dict[str, Any] = {}
    i = 0
    args = list(args)
    while i < len(args):
        a = args[i]
        if a in ("-o", "--option"):
            if i + 1 >= len(args) or "=" not in args[i + 1]:
                raise ConfigError(f"{a} needs key=value")
            k, _, v = args[i + 1].partition("=")
            out[k.strip().replace("-", "_")] = v
            i += 2
            continue
        if not a.startswith("--"):
            raise ConfigError(f"unexpected argument {a!r}")
        key = a[2:]
        if "=" in key:
            k, _, v = key.partition("=")
            out[k.replace("-", "_")] = v
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            out[key.replace("-", "_")] = args[i + 1]
            i += 1
        else:
            out[key.replace("-", "_")] = "true"
        i += 1
    return out

"""``modelport plugins new NAME``: write a working plugin distribution from the template shipped in the package.

The template lives in ``modelport/templates/plugin/``: every ``*.tmpl`` file is copied with ``{{name}}``,
``{{module}}``, ``{{dist}}``, ``{{display_name}}`` and ``{{core_version}}`` filled in, and ``__module__`` in a
path replaced by the import name. The result installs with pip and passes its own tests as generated.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from modelport.errors import ConfigError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
TEMPLATE = "templates/plugin"
_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")


def plugin_names(name: str, display_name: str | None = None) -> dict[str, str]:
    """The names a plugin for format ``name`` uses: distribution, import name, entry point, display name."""
    from modelport.version import __version__

    if not NAME_PATTERN.match(name):
        raise ConfigError(f"plugin name {name!r}: use lower-case letters and digits, words joined by '-' or '_' "
                          "(it becomes the format name, e.g. 'myformat')")
    _refuse_taken(name)
    major, minor = __version__.split(".")[:2]
    return {
        "name": name,
        "module": "modelport_" + name.replace("-", "_"),
        "dist": f"modelport-export-{name.replace('_', '-')}",
        "display_name": display_name or name,
        "core_version": f"{major}.{minor}",
    }


def _refuse_taken(name: str) -> None:
    from modelport.plugins.catalog import CATALOG

    taken = {e.name: e.distribution for e in CATALOG if e.kind == "format"} | {"pt2": "modelport (built in)"}
    if name in taken:
        raise ConfigError(f"format {name!r} already belongs to {taken[name]}; two plugins cannot register one "
                          "format name — pick another name")


def render(text: str, values: dict[str, str]) -> str:
    """Fill ``{{key}}`` placeholders; an unknown placeholder is a bug in the template."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in values:
            raise KeyError(f"template placeholder {m.group(0)} has no value")
        return values[m.group(1)]

    return _PLACEHOLDER.sub(sub, text)


def _walk(root: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    out = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name == "__pycache__":
            continue
        rel = f"{prefix}{entry.name}"
        if entry.is_dir():
            out.extend(_walk(entry, rel + "/"))
        elif entry.name.endswith(".tmpl"):
            out.append((rel.removesuffix(".tmpl"), entry))
    return out


def new_plugin(name: str, dest: str | Path | None = None, *, display_name: str | None = None,
               force: bool = False) -> tuple[Path, list[str]]:
    """Write the plugin distribution for format ``name`` into ``dest`` (default ``./modelport-export-NAME``).

    Returns the folder and the files written (relative). An existing non-empty folder needs ``force``.
    """
    values = plugin_names(name, display_name)
    target = Path(dest) if dest is not None else Path.cwd() / values["dist"]
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise ConfigError(f"{target} already exists and is not empty; pass --force to write into it")
    written = []
    for rel, entry in _walk(resources.files("modelport").joinpath(TEMPLATE)):
        out_rel = rel.replace("__module__", values["module"])
        path = target / out_rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(entry.read_text(encoding="utf-8"), values), encoding="utf-8")
        written.append(out_rel)
    return target, written


def next_steps(target: Path, name: str) -> str:
    """What to run after generating the plugin."""
    return (
        f"next:\n  cd {target}\n  pip install -e '.[test]'\n  pytest                      # the conformance kit and a CLI test\n"
        f"  modelport formats           # {name} is listed\n"
        f"then replace the converter in src/{plugin_names(name)['module']}/format.py with yours"
    )

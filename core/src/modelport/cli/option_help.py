"""``modelport formats --options [FORMAT]``: every option of each format and publisher, from its OptionSpecs.

Like ``llm models --options``: the listing is generated from what plugins declare (type, default, choices,
help, the aliases that also set it), so it cannot drift from what ``-o`` and ``--config`` accept.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from modelport.plugins.host import PluginHost
from modelport.plugins.options import option_rows


def _selected(host: PluginHost, name: str | None) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """(formats, publishers) to list: all, or the one ``name`` (a format, else a publish scheme)."""
    formats = sorted((n, spec) for n, (spec, _) in host.formats.items())
    publishers = sorted((n, spec) for n, (spec, _) in host.publishers.items())
    if name is None:
        return formats, publishers
    scheme = name.removesuffix("://")
    if name in host.formats:
        return [(name, host.formats[name][0])], []
    if scheme in host.publishers:
        return [], [(scheme, host.publishers[scheme][0])]
    host.require_format(name)  # says why: not installed, broken, unknown
    return [], []  # pragma: no cover - require_format raised


def _publisher_rows(spec: Any) -> list[dict[str, Any]]:
    rows = []
    for opt in spec.options:
        row = opt.describe()
        row["aliases"] = list(opt.aliases)
        rows.append(row)
    return rows


def _type_label(row: dict[str, Any]) -> str:
    return f"choice: {' | '.join(row['choices'])}" if row.get("choices") else str(row["type"])


def print_format_options(host: PluginHost, name: str | None, as_json: bool) -> None:
    """Print the options of every format and publisher (or of ``name``), as a table or as JSON."""
    formats, publishers = _selected(host, name)
    if as_json:
        click.echo(json.dumps({
            "formats": {n: option_rows(spec) for n, spec in formats},
            "publishers": {n: _publisher_rows(spec) for n, spec in publishers},
        }, indent=2, default=str))
        return
    from rich.console import Console

    from modelport.terminal.console import escape
    from modelport.terminal.render import new_table

    out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    sections = [(f"{n} ({spec.display_name})", option_rows(spec), f"-o {n}.KEY=VALUE") for n, spec in formats]
    sections += [(f"{n}:// ({spec.display_name})", _publisher_rows(spec), "after the target: --KEY VALUE")
                 for n, spec in publishers]
    for title, rows, usage in sections:
        if not rows:
            out.print(f"{escape(title)}: no options")
            continue
        table = new_table(escape(f"{title} — {usage}"))  # plugin text is not rich markup
        for col in ("option", "type", "default", "also set by", "help"):
            table.add_column(col)
        for row in rows:
            cells = (row["name"], _type_label(row), json.dumps(row["default"], default=str), ", ".join(row["aliases"]),
                     row["help"])
            table.add_row(*(escape(c) for c in cells))
        out.print(table)


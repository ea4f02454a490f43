"""The tables and summary lines modelport prints, designed for an 80-column terminal.

What is the same for every row (the tolerance rule, the export folder) goes above a table; long per-row text
(a reason, a fix, a note) goes below it as a numbered note, so no column has to wrap. Every string that comes
from a plugin, a model or the user is escaped before rich sees it (``[runtime]`` is text, not markup).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from modelport.terminal.console import escape, fmt_seconds, shown_path
from modelport.terminal.strings import human_size

STATUS_STYLE = {
    "available": "green", "unavailable": "yellow", "not installed": "dim", "broken": "red",
    "loaded": "green", "builtin": "green", "disabled": "dim",
    "passed": "green", "failed": "red", "error": "red", "inconclusive": "yellow",
}


def styled(text: Any, style: str | None = None) -> str:
    """Escaped ``text``, wrapped in a rich style when there is one (never an empty ``[]...[/]``)."""
    body = escape(text)
    style = style if style is not None else STATUS_STYLE.get(str(text), "")
    return f"[{style}]{body}[/{style}]" if style else body


def new_table(title: str | None = None) -> Any:
    """A rich table in modelport's one style (a rule under the header, no edges), optionally titled."""
    from rich import box
    from rich.table import Table

    # one space of padding plus the box's blank separator: two columns between cells, none at the edges
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
                 padding=(0, 1, 0, 0), title_style="bold")


class Notes:
    """Footnotes under a table: each distinct text once, referred to as ``[1]``, ``[2]``... in the rows."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def ref(self, text: str | None) -> str:
        if not text:
            return ""
        if text not in self.items:
            self.items.append(text)
        return f"\\[{self.items.index(text) + 1}]"

    def lines(self) -> list[str]:
        return [f"  \\[{i}] {escape(t)}" for i, t in enumerate(self.items, 1)]


def print_lines(console: Any, lines: Iterable[str]) -> None:
    """Long lines are left to the terminal to wrap (soft wrap): a command in a note copies and pastes whole."""
    for line in lines:
        console.print(line, soft_wrap=True)


# ----------------------------------------------------------------------------- formats / plugins


def _validate_cell(r: Any) -> str:
    if r.can_validate:
        return "yes"
    if r.can_export and r.reason and "structure" in r.reason:
        return "structure"
    return "no"


def print_formats(console: Any, rows: Sequence[Any], pubs: Sequence[Any]) -> None:
    """``modelport formats``: one row per format and publish target; reasons and install commands as notes."""
    notes = Notes()
    table = new_table("Formats")
    for col in ("format", "status", "export", "validate", "plugin", ""):
        table.add_column(col, no_wrap=True)
    for r in rows:  # versions and display names: `modelport plugins`, `formats --json`
        table.add_row(escape(r.name), styled(r.status), "yes" if r.can_export else "no", _validate_cell(r),
                      escape(r.plugin or ""), _note_ref(notes, r))
    console.print(table)
    ptable = new_table("Publish targets")
    for col in ("scheme", "name", "status", "plugin", ""):
        ptable.add_column(col, no_wrap=True)
    for r in pubs:
        ptable.add_row(escape(f"{r.name}://"), escape(r.display_name), styled(r.status), escape(r.plugin or ""),
                       _note_ref(notes, r))
    console.print(ptable)
    if notes.items:
        console.print("Notes:")
        print_lines(console, notes.lines())


def _note_ref(notes: Notes, r: Any) -> str:
    """The reason, and the command that fixes it on a line of its own (so it can be copied whole)."""
    text = r.reason or ""
    if r.fix:
        text = f"{text}\n      {r.fix}" if text else r.fix
    return notes.ref(text)


def print_plugins(console: Any, plugins: Sequence[Any]) -> None:
    """``modelport plugins``: each plugin, its distribution and status; hooks or the load error below."""
    notes = Notes()
    table = new_table("Plugins")
    for col in ("name", "distribution", "version", "status", "hooks", ""):
        table.add_column(col, no_wrap=True, justify="right" if col == "hooks" else "left")
    for p in plugins:
        table.add_row(escape(p.name), escape(p.distribution or ""), escape(p.version or ""), styled(p.status),
                      str(len(p.hooks)) if p.hooks else "", notes.ref(f"{p.name}: {p.error}") if p.error else "")
    console.print(table)
    if notes.items:
        console.print("Errors:")
        print_lines(console, notes.lines())
    console.print("which hooks each plugin implements: modelport plugins --json", soft_wrap=True)


# ----------------------------------------------------------------------------- export


def _size(r: Any) -> int | None:
    return (r.record.get("sizes") or {}).get("total_bytes") if r.path else None


def _common_rule(results: Sequence[Any]) -> str | None:
    rules = {r.validation.rule for r in results if r.validation is not None}
    return next(iter(rules)) if len(rules) == 1 else None


def _common_parent(results: Sequence[Any]) -> str | None:
    from pathlib import Path

    parents = {Path(r.path).parent for r in results if r.path is not None}
    return shown_path(next(iter(parents))) if len(parents) == 1 and len(results) > 1 else None


def print_export(console: Any, result: Any, *, elapsed_s: float | None = None) -> None:
    """The export table (one row per format), the facts they share above it, notes below, then one success
    line (Ultralytics-style) and the commands to run next."""
    results = list(result.values())
    rule = _common_rule(results)
    parent = _common_parent(results)
    notes = Notes()
    table = new_table()
    for col, justify in (("format", "left"), ("status", "left"), ("max abs diff", "right"), ("size", "right"),
                         ("time", "right"), ("folder", "left")):
        table.add_column(col, justify=justify, no_wrap=col != "folder")  # type: ignore[arg-type]
    for r in results:
        comp = r.validation
        extra = ""
        if comp is not None and rule is None:
            extra = notes.ref(f"{r.format}: {comp.rule}")
        elif comp is None and (r.validation_note or r.error):
            extra = notes.ref(f"{r.format}: {r.validation_note or r.error}")
        timings = r.record.get("timings") or {} if r.path else {}
        total = timings.get("total_s", timings.get("export_s"))
        folder = ""
        if r.path is not None:
            folder = r.path.name + "/" if parent else shown_path(r.path)
        table.add_row(escape(r.format), styled(r.status) + (" " + extra if extra else ""),
                      f"{comp.max_abs_diff:.1e}" if comp else "", human_size(_size(r), ""),
                      fmt_seconds(total) if total is not None else "", escape(folder))
    sets = next((r.validation for r in results if r.validation is not None), None)
    if sets is not None:
        batches = ", ".join(map(str, sets.batch_sizes)) if sets.batch_sizes else "?"
        console.print(f"validated on {sets.input_sets} input sets (batch {escape(batches)}) against PyTorch", soft_wrap=True)
    if rule:
        console.print(f"pass rule for every output: {escape(rule)}", soft_wrap=True)
    if parent:
        console.print(f"folders under {escape(parent)}/", soft_wrap=True)
    console.print(table)
    if notes.items:
        print_lines(console, notes.lines())
    print_export_footer(console, results, elapsed_s)


def print_export_footer(console: Any, results: Sequence[Any], elapsed_s: float | None) -> None:
    """``export success ✓ 4.2 s, saved 5 formats to exports/demo (1.3 MiB)`` and what to run next."""
    from pathlib import Path

    written = [r for r in results if r.path is not None]
    ok = [r for r in written if r.status in ("passed", "structure-only", "not-validated", "skipped")]
    took = f" {fmt_seconds(elapsed_s)}" if elapsed_s is not None else ""
    total = sum(_size(r) or 0 for r in written)
    if not written:
        console.print(f"[red]export failed ✗[/red]{took}: nothing was written", soft_wrap=True)
        return
    if len(written) == 1:
        where = shown_path(written[0].artifact_path or written[0].path)
    else:
        parents = {Path(r.path).parent for r in written}
        where = shown_path(next(iter(parents))) if len(parents) == 1 else f"{len(written)} folders"
    what = f"{len(written)} formats to {where}" if len(written) > 1 else f"as {where}"
    failed = len(results) - len(ok)
    if failed:
        console.print(f"[yellow]export finished with problems ✗[/yellow]{took}, {len(ok)} of {len(results)} "
                      f"formats good, saved {escape(what)} ({human_size(total, '')})", soft_wrap=True)
    else:
        console.print(f"[green]export success ✓[/green]{took}, saved {escape(what)} ({human_size(total, '')})",
                      soft_wrap=True)
    if not ok:
        return
    order = {"passed": 0, "structure-only": 1}
    preferred = sorted(ok, key=lambda r: (order.get(r.status, 2), r.format not in ("onnx", "pt2")))
    dirs = [shown_path(r.path) for r in preferred]
    console.print("next:", soft_wrap=True)
    for line in (f"modelport validate {dirs[0]}", f"modelport bench {' '.join(dirs[:3])}",
                 f"modelport publish {dirs[0]} file://registry"):
        console.print(f"  {escape(line)}", soft_wrap=True)


# ----------------------------------------------------------------------------- bench


UNSTABLE_NOTE = ("~ the numbers did not settle (windows disagree, p90 far above p50, or too few runs; --json says "
                 "which per row): rerun with a larger --max-seconds on a quieter machine before trusting them")


def print_bench(console: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """The bench table: latency per call (p50 with the p90 beside it), throughput from the measured runs,
    speed-up against PyTorch eager; unstable numbers are flagged, errors and notes go below."""
    notes = Notes()
    machine = next((r.get("machine") for r in rows if r.get("machine")), None)
    if machine:
        console.print(f"{escape(machine.get('cpu') or 'CPU')}, {machine.get('threads')} threads; latency per "
                      "call, speed-up vs PyTorch eager", soft_wrap=True)
    table = new_table()
    for col, justify in (("", "left"), ("format", "left"), ("batch", "right"), ("size", "right"),
                         ("max abs", "right"), ("p50 ms", "right"), ("p90 ms", "right"), ("items/s", "right"),
                         ("speed-up", "right")):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for r in rows:
        fmt = escape(r.get("format", ""))
        if "error" in r:
            table.add_row("", fmt, str(r.get("batch", "")), "", "", "", "", "", notes.ref(f"{r.get('format')}: {r['error']}"))
            continue
        flag = ""
        if r.get("unstable"):
            flag = "[yellow]~[/yellow]"
            notes.ref(UNSTABLE_NOTE)
        mark = "[green]★[/green]" if r.get("best") else flag
        diff = r.get("max_abs_diff")
        table.add_row(
            mark, fmt + (" " + flag if flag and r.get("best") else ""), str(r["batch"]), human_size(r.get("size_bytes"), ""),
            "ref" if r.get("format") == "pytorch" and not r.get("export_dir") else (f"{diff:.0e}" if diff is not None else ""),
            _ms(r.get("p50_ms")), _ms(r.get("p90_ms")), _rate(r.get("throughput")),
            f"{r['speedup']:.2f}x" if r.get("speedup") else "",
        )
    console.print(table)
    if any(r.get("best") for r in rows):
        console.print("★ fastest artifact per batch size that passed validation", soft_wrap=True)
    if notes.items:
        print_lines(console, notes.lines())


def _ms(v: float | None) -> str:
    if v is None:
        return ""
    return f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def _rate(v: float | None) -> str:
    if not v:
        return ""
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


# ----------------------------------------------------------------------------- compare


def print_compare(console: Any, a: str, b: str, comp: Any) -> None:
    """Per output: max abs / rel diff, cosine, top-1 agreement and pass, under the two names and the rule."""
    console.print(f"{escape(shown_path(a))} vs {escape(shown_path(b) if b not in ('pytorch', 'torch') else b)}",
                  soft_wrap=True)
    console.print(f"pass rule: {escape(comp.rule)}", soft_wrap=True)
    table = new_table()
    for col in ("output", "max abs", "max rel", "cosine", "top-1", "pass"):
        table.add_column(col, justify="left" if col == "output" else "right")
    for o in comp.outputs:
        table.add_row(escape(o.name), f"{o.max_abs_diff:.2e}", f"{o.max_rel_diff:.2e}", "n/a" if o.cosine is None else f"{o.cosine:.6f}",
                      "" if o.top1_agreement is None else f"{o.top1_agreement:.3f}",
                      styled("yes", "green") if o.passed else styled("NO", "red"))
    console.print(table)

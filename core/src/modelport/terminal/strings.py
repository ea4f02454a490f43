"""Text shown to people: file sizes and one-line messages (tokens are removed by :mod:`modelport.terminal.redaction`).

One implementation each, used by the CLI, the benchmark table and every publisher (re-exported by
:mod:`modelport.publishers.publishing` for publishers). Standard library only.
"""

from __future__ import annotations


def human_size(n: int | float | None, missing: str = "?") -> str:
    """A byte count in binary units: 1536 → '1.5 KiB'; ``missing`` when unknown."""
    if n is None:
        return missing
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover


def one_line(text: object, limit: int = 300) -> str:
    """The first non-empty line of a message, shortened."""
    for line in str(text).splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""

"""The CLI: the click commands and exit-code mapping (app), ``modelport zoo``, input flags, option help.

``modelport.cli:main`` (the console script) and ``from modelport.cli import main`` keep working; they load
:mod:`modelport.cli.app` on first use, so importing a helper here does not load every command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelport import _aliases

if TYPE_CHECKING:  # pragma: no cover
    from modelport.cli.app import cli, main

__all__ = ["cli", "main"]


def __getattr__(name: str) -> Any:
    return _aliases.forward("cli", name)

"""The CLI: the click commands and exit-code mapping (app), ``modelport list`` / ``info`` (zoo), option help.

``modelport.cli:main`` (the console script) and ``from modelport.cli import main`` keep working; they load
:mod:`modelport.cli.app` on first use, so importing a helper here does not load every command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelport import aliases

if TYPE_CHECKING:  # pragma: no cover
    from modelport.cli.app import main

__all__ = ["main"]


def __getattr__(name: str) -> Any:
    return aliases.forward("cli", name)

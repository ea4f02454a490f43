"""Workspace-level pytest hook, so several test folders can run in one pytest (``pytest plugins/*/tests``).

Each distribution's tests import helpers from their own folder's conftest (``from conftest import run_export``).
Without ``__init__.py`` files every conftest is a top-level module named ``conftest``, and a test module would get
whichever folder's conftest pytest imported last. Before a test module is imported, this points
``sys.modules["conftest"]`` at the conftest of that module's own folder (pytest registers each conftest plugin
under its path). A single folder's run (each nox session) is unaffected.
"""

from __future__ import annotations

import sys

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_collectstart(collector: pytest.Collector) -> None:
    """Make ``import conftest`` in the module about to be collected resolve to its own folder's conftest."""
    if not isinstance(collector, pytest.Module):
        return
    own = collector.config.pluginmanager.get_plugin(str(collector.path.parent / "conftest.py"))
    if own is not None:
        sys.modules["conftest"] = own

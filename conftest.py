"""Workspace-level pytest hooks, so several test folders can run in one pytest (``pytest plugins/*/tests``).

Each distribution's tests import helpers from their own folder's conftest (``from conftest import run_export``).
Without ``__init__.py`` files every conftest is a top-level module named ``conftest``, and a test module would get
whichever folder's conftest pytest imported last. Before a test module is imported, and again before each test runs
(a test may import a module that imports ``conftest`` itself), these point ``sys.modules["conftest"]`` at the
conftest of the test's own folder (pytest registers each conftest plugin under its path). A single folder's run
(each nox session) is unaffected.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


def _use_conftest_of(config: pytest.Config, folder: Path) -> None:
    own = config.pluginmanager.get_plugin(str(folder / "conftest.py"))
    if own is not None:
        sys.modules["conftest"] = own


@pytest.hookimpl(tryfirst=True)
def pytest_collectstart(collector: pytest.Collector) -> None:
    """Make ``import conftest`` in the module about to be collected resolve to its own folder's conftest."""
    if isinstance(collector, pytest.Module):
        _use_conftest_of(collector.config, collector.path.parent)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """The same for what a test imports while it runs."""
    _use_conftest_of(item.config, item.path.parent)

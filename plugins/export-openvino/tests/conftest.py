"""Fixtures for the openvino tests."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest
from ov_helpers import EXAMPLES


@pytest.fixture(scope="session")
def examples() -> ModuleType:
    """examples/models.py imported from its path (it is not an installed package)."""
    spec = importlib.util.spec_from_file_location("modelport_examples_models", EXAMPLES)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

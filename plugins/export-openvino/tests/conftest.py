"""Fixtures for the openvino tests."""

from __future__ import annotations

from types import ModuleType

import pytest
from modelport.testing import load_module
from ov_helpers import EXAMPLES


@pytest.fixture(scope="session")
def examples() -> ModuleType:
    """examples/models.py imported from its path (it is not an installed package)."""
    return load_module(EXAMPLES, "modelport_examples_models")

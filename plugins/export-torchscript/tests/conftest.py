"""Shared helpers: the real CLI in a subprocess, the bundled example models, read-back of export records."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "models.py"


def cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m modelport ARGS`` as a user would, capturing stdout and stderr."""
    return subprocess.run([sys.executable, "-m", "modelport", *args], capture_output=True, text=True, timeout=timeout)


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def examples() -> ModuleType:
    """examples/models.py imported from its path (it is not an installed package)."""
    spec = importlib.util.spec_from_file_location("modelport_examples_models", EXAMPLES)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

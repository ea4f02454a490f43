"""Helpers for the openvino tests: the real CLI in a subprocess, the example models' path, JSON read-back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "models.py"


def cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m modelport ARGS`` as a user would, capturing stdout and stderr."""
    return subprocess.run([sys.executable, "-m", "modelport", *args], capture_output=True, text=True, timeout=timeout)


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))

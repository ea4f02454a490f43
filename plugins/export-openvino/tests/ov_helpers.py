"""Shared by the openvino tests: the example models' path (the helpers themselves come from modelport.testing)."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "models.py"

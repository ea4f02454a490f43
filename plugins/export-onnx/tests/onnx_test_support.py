"""Shared paths: the bundled example models and this plugin's trap models (helpers come from modelport.testing)."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "models.py"
TRAPS = Path(__file__).resolve().parent / "onnx_trap_models.py"

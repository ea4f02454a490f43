"""Warm workers import the converters of the formats that can run here, and only those."""

from __future__ import annotations

from types import SimpleNamespace

from modelport.plugins.types import Availability
from modelport_serve.worker import import_converters


def test_warm_up_imports_converters_of_available_formats_only() -> None:
    available = SimpleNamespace(availability=Availability.ok)
    unavailable = SimpleNamespace(availability=lambda: Availability.unavailable("switched off here"))
    done = import_converters({"torchscript": (available, "modelport-export-torchscript"),
                              "onnx": (unavailable, "modelport-export-onnx")})
    assert done == ["torch.jit"]

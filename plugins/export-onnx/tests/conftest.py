"""Fixtures: the example models and exports made once per test session."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from modelport.testing import load_module
from onnx_test_support import EXAMPLES, TRAPS


@pytest.fixture(scope="session")
def examples() -> ModuleType:
    return load_module(EXAMPLES, "modelport_examples_models")


@pytest.fixture(scope="session")
def traps() -> ModuleType:
    return load_module(TRAPS, "modelport_onnx_trap_models")


@pytest.fixture(scope="session")
def transformer_export(tmp_path_factory: pytest.TempPathFactory, examples: ModuleType) -> Any:
    """The bundled transformer exported with every default, a dynamic batch, validated at batch 1, 4 and 8."""
    import modelport

    out = tmp_path_factory.mktemp("transformer") / "onnx"
    result = modelport.export(examples.small_transformer(), ["onnx"], modelport.text(16, dynamic_batch=True),
                              output_dir=out, model_name="small_transformer")
    return result["onnx"]

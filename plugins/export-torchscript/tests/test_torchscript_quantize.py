"""TorchScript with dynamic int8 quantization: the Linear layers become int8, validation uses int8 tolerances,
metadata.json records it, and a model with nothing to quantize is refused rather than exported as fp32."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import modelport
import pytest
import torch
from torch import nn


def test_dynamic_quantization_of_a_transformer(examples: ModuleType, tmp_path: Path) -> None:
    model = examples.small_transformer()
    spec = modelport.text(16, 1000, dynamic_batch=True)
    fp32 = modelport.export(model, ["torchscript"], spec, output_dir=tmp_path / "fp32")["torchscript"]
    int8 = modelport.export(model, ["torchscript"], spec, output_dir=tmp_path / "int8",
                            options=["quantize=dynamic"])["torchscript"]
    assert int8.status == "passed", int8.error
    md = json.loads((int8.path / "metadata.json").read_text())
    assert md["precision"] == "int8" and md["validation"]["precision"] == "int8"
    assert md["quantization"]["method"] == "dynamic" and md["quantization"]["layers"] > 0
    assert md["validation"]["max_abs_diff"] > 0, "int8 weights change the numbers: a zero diff compared nothing"
    loaded = torch.jit.load(str(int8.path / "model.torchscript"))  # written by this test
    packed = [m for m in loaded.modules() if getattr(m, "original_name", "") == "LinearPackedParams"]
    assert len(packed) == md["quantization"]["layers"], "every quantized Linear carries int8 packed weights"
    assert (int8.path / "model.torchscript").stat().st_size < (fp32.path / "model.torchscript").stat().st_size


def test_nothing_to_quantize_is_an_export_failure(tmp_path: Path) -> None:
    convs = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    result = modelport.export(convs, ["torchscript"], modelport.vision(3, 16, 16), output_dir=tmp_path / "c",
                              options=["quantize=dynamic"])["torchscript"]
    assert result.status != "passed" and result.exit_code == 1
    assert "found no nn.Linear layer" in (result.error or "")


@pytest.mark.parametrize("value", ["static", "yes"])
def test_unknown_quantize_value_is_a_configuration_error(value: str, tmp_path: Path) -> None:
    with pytest.raises(modelport.ConfigError):
        modelport.export(nn.Flatten().eval(), ["torchscript"], modelport.vision(1, 2, 2), output_dir=tmp_path / value,
                         options=[f"quantize={value}"])

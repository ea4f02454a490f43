"""OpenVINO converts through a torch.export program where TorchScript tracing fails, and names the ops it
cannot convert (issue 14 A7, A8)."""

from __future__ import annotations

from pathlib import Path

import modelport
import torch
from modelport.engine.inputs import InputSpec, TensorSpec
from torch import nn


class NanMeanHead(nn.Module):
    """A pooling head using torch.nanmean: OpenVINO's TorchScript frontend has no rule for aten::nanmean."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nanmean(self.proj(x), dim=1)


class HistogramHead(nn.Module):
    """torch.histc: no conversion rule on either OpenVINO path."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.histc(x, bins=4)


def test_tracing_failure_falls_back_to_the_torch_export_program(tmp_path: Path) -> None:
    spec = InputSpec([TensorSpec("x", (2, 5, 6))]).with_dynamic_batch()
    r = modelport.export(NanMeanHead().eval(), ["openvino"], spec, output_dir=tmp_path / "ov", force=True)["openvino"]
    assert r.status == "passed", r.error
    assert "torch.export program" in r.record["details"]["converted_with"]
    note = next(n for n in r.record["notes"] if "converted a torch.export program instead" in n)
    assert "aten::nanmean" in note
    assert {2, 4, 8}.issubset(r.validation.batch_sizes)


def test_unconvertible_ops_are_named_in_one_line(tmp_path: Path) -> None:
    spec = InputSpec([TensorSpec("x", (2, 5))])
    r = modelport.export(HistogramHead(), ["openvino"], spec, output_dir=tmp_path / "h", force=True)["openvino"]
    assert r.status == "error" and r.exit_code == 1
    assert "\n" not in r.error and "Check 'false'" not in r.error
    assert "No conversion rule found for operations: aten::histc" in r.error
    assert "src/frontends" in r.record["error_detail"]  # the full text is kept for --debug

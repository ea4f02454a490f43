"""TFLite's batch emulation is refused for models whose outputs mix the samples of a batch (issue 14 A5)."""

from __future__ import annotations

from pathlib import Path

import modelport
import torch
from modelport.engine.inputs import InputSpec, TensorSpec
from torch import nn


class ClipLike(nn.Module):
    """Image and text towers and their [B, B] similarity logits, as CLIP returns them."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Linear(6, 4)
        self.text = nn.Linear(5, 4)

    def forward(self, pixels: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        img = nn.functional.normalize(self.image(pixels), dim=-1)
        txt = nn.functional.normalize(self.text(tokens), dim=-1)
        return img, img @ txt.T


def test_sample_mixing_outputs_refuse_batch_emulation(tmp_path: Path) -> None:
    spec = InputSpec([TensorSpec("pixels", (1, 6)), TensorSpec("tokens", (1, 5))]).with_dynamic_batch()
    r = modelport.export(ClipLike().eval(), ["tflite"], spec, output_dir=tmp_path / "clip", force=True)["tflite"]
    assert r.status == "error" and r.exit_code == 1
    assert "output.1" in r.error and "mix samples" in r.error and "--dynamic-batch" in r.error
    assert "output.0" not in r.error  # the per-sample image features are fine
    assert not (tmp_path / "clip").exists()

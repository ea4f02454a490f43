"""Models that exercise the traps of ONNX export; referenced as ``trap_models.py:factory`` by the tests."""

from __future__ import annotations

import torch
from torch import nn


class Encoder(nn.Module):
    """nn.TransformerEncoder (batch_first): exported by dynamo at example batch 1 it comes out fixed at batch 1."""

    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x).mean(1))


class BatchBaked(nn.Module):
    """Reads the batch size into a Python int: any tracer writes the example batch into the graph as a constant."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = int(x.shape[0])
        return self.linear(x).reshape(n * 2, -1)


def transformer_encoder() -> Encoder:
    torch.manual_seed(0)
    return Encoder().eval()


def batch_baked() -> BatchBaked:
    torch.manual_seed(0)
    return BatchBaked().eval()

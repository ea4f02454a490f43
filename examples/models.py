"""Small models in plain torch, used by the README's main job, the tests and the benchmarks.

* ``small_cnn``          — an image classifier (conv/batch-norm/ReLU blocks, global pool, linear head).
* ``small_transformer``  — a text encoder (embeddings, pre-norm self-attention blocks, masked mean pool)
  that takes ``input_ids`` and ``attention_mask`` and returns a dict, as transformers' models do.
* ``data_dependent``     — a model whose Python control flow depends on the input values: tracing
  exporters bake one branch in, and validation must catch it.

Reference them as ``examples/models.py:small_cnn`` on the command line.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SmallCNN(nn.Module):
    """A ResNet-flavoured classifier small enough to export in seconds."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        self.stem = ConvBlock(in_channels, width)
        self.layer1 = ConvBlock(width, width * 2, stride=2)
        self.layer2 = ConvBlock(width * 2, width * 4, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width * 4, num_classes)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(self.stem(input)))
        return self.head(torch.flatten(self.pool(x), 1))


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q = q.reshape(b, t, self.heads, d // self.heads).transpose(1, 2)
        k = k.reshape(b, t, self.heads, d // self.heads).transpose(1, 2)
        v = v.reshape(b, t, self.heads, d // self.heads).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        scores = scores + (1.0 - mask[:, None, None, :].to(scores.dtype)) * -1e4
        attn = torch.softmax(scores, dim=-1)
        y = torch.matmul(attn, v).transpose(1, 2).reshape(b, t, d)
        return self.out(y)


class EncoderBlock(nn.Module):
    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.ff(self.norm2(x))


class SmallTransformer(nn.Module):
    """A BERT-shaped text encoder: forward(input_ids, attention_mask) -> {last_hidden_state, pooler_output}."""

    def __init__(self, vocab_size: int = 1000, d_model: int = 64, heads: int = 4, layers: int = 2, max_len: int = 128) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(EncoderBlock(d_model, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.embed(input_ids) + self.position(positions)[None]
        for block in self.blocks:
            x = block(x, attention_mask)
        x = self.norm(x)
        m = attention_mask.to(x.dtype)[..., None]
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1.0)
        return {"last_hidden_state": x, "pooler_output": pooled}


class DataDependent(nn.Module):
    """Branches and loops on input values: correct only when the exporter keeps the control flow."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        if y.sum() > 0:  # a tracer records the branch taken for the example input only
            y = y * 2
        else:
            y = y - 1
        for _ in range(int(x.abs().max().item() * 2)):  # an .item()-driven loop
            y = y + 0.5
        return y


def _seeded(model: nn.Module, seed: int) -> nn.Module:
    """Deterministic weights (and non-trivial batch-norm statistics) so runs are reproducible."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / math.sqrt(max(p[0].numel(), 1)) if p.ndim > 1 else 0.1))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return model.eval()


def small_cnn(num_classes: int = 10, in_channels: int = 3, width: int = 16, seed: int = 0) -> SmallCNN:
    """The bundled image classifier; input ``input`` N x 3 x 32 x 32 (any H, W works)."""
    return _seeded(SmallCNN(num_classes, in_channels, width), seed)  # type: ignore[return-value]


def small_transformer(vocab_size: int = 1000, d_model: int = 64, heads: int = 4, layers: int = 2, seed: int = 0) -> SmallTransformer:
    """The bundled text encoder; inputs ``input_ids`` / ``attention_mask`` N x SEQ (SEQ <= 128)."""
    return _seeded(SmallTransformer(vocab_size, d_model, heads, layers), seed)  # type: ignore[return-value]


def data_dependent(seed: int = 0) -> DataDependent:
    """The trap: value-dependent control flow."""
    return _seeded(DataDependent(), seed)  # type: ignore[return-value]


CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

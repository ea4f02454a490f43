"""Reference models for :mod:`modelport.testing`: tiny, seeded, plain torch, shipped in the wheel.

Each one exercises a different part of a format's contract:

* ``cnn``       — conv / batch-norm / ReLU / pooling / linear; one float32 input ``input`` N x 3 x 16 x 16,
  one output ``output`` N x 10 (a classifier).
* ``mlp``       — linear / GELU / layer-norm; one float32 input ``x`` N x 8 and a *tuple* of two outputs
  (``output.0`` logits, ``output.1`` probabilities), so output flattening and ordering are checked.
* ``attention`` — embedding + masked self-attention; two int64 inputs ``input_ids`` / ``attention_mask``
  N x 8 and a *dict* output (``last_hidden_state``, ``pooler_output``), as transformers' encoders return.
* ``wrapper``   — ``forward(self, *args, **kwargs)`` delegating to an MLP, as generic wrappers do: the input
  ``x`` N x 8 reaches ``*args``, and torch.export must still see one named, dynamic input.
* ``decoder``   — ``forward(input_ids, attention_mask=None, position_ids=None)`` given ``input_ids`` and
  ``position_ids`` only: each input must reach the parameter of its name, not the next free position.

This module imports torch; :mod:`modelport.testing` imports it only when a model is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from modelport.engine.inputs import InputSpec, TensorSpec

VOCAB = 100
SEQ = 8


class TinyCNN(nn.Module):
    """A small image classifier: two conv blocks, global pooling, a linear head."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(16, num_classes)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(input)))
        x = torch.relu(self.conv2(x))
        return self.head(torch.flatten(self.pool(x), 1))


class TinyMLP(nn.Module):
    """A two-layer perceptron returning (logits, probabilities): a model with a tuple of outputs."""

    def __init__(self, features: int = 8, hidden: int = 16, classes: int = 4) -> None:
        super().__init__()
        self.fc1 = nn.Linear(features, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.fc2(self.norm(nn.functional.gelu(self.fc1(x))))
        return logits, torch.softmax(logits, dim=-1)


class TinyAttention(nn.Module):
    """A one-block text encoder: int64 ids and mask in, a dict of hidden states and a pooled vector out."""

    def __init__(self, vocab_size: int = VOCAB, d_model: int = 16, max_len: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(max_len, d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.embed(input_ids) + self.position(positions)[None]
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        scores = scores + (1.0 - attention_mask[:, None, :].to(scores.dtype)) * -1e4
        x = self.norm(x + self.out(torch.matmul(torch.softmax(scores, dim=-1), v)))
        m = attention_mask.to(x.dtype)[..., None]
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1.0)
        return {"last_hidden_state": x, "pooler_output": pooled}


class StarArgsWrapper(nn.Module):
    """A generic wrapper whose forward is ``(*args, **kwargs)``, delegating to an inner model."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        return self.inner(*args, **kwargs)[0]


class TinyDecoder(nn.Module):
    """A decoder-shaped model: optional mask and position ids, each changing the output in its own way."""

    def __init__(self, vocab_size: int = VOCAB, d_model: int = 16, max_len: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(max_len, d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device)[None].expand_as(input_ids)
        x = self.embed(input_ids) + self.position(position_ids)
        if attention_mask is not None:
            x = x * attention_mask[..., None].to(x.dtype)
        return self.head(torch.tanh(x))


def _seeded(model: nn.Module, seed: int) -> nn.Module:
    """Deterministic weights and non-trivial batch-norm statistics, without touching the global RNG."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            scale = 1.0 / math.sqrt(max(p[0].numel(), 1)) if p.ndim > 1 else 0.1
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None and m.running_var is not None:
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return model.eval()


def tiny_cnn(seed: int = 0) -> TinyCNN:
    """The reference image classifier (input ``input`` N x 3 x 16 x 16)."""
    return _seeded(TinyCNN(), seed)  # type: ignore[return-value]


def tiny_mlp(seed: int = 0) -> TinyMLP:
    """The reference tuple-output model (input ``x`` N x 8)."""
    return _seeded(TinyMLP(), seed)  # type: ignore[return-value]


def tiny_attention(seed: int = 0) -> TinyAttention:
    """The reference text encoder (inputs ``input_ids`` / ``attention_mask`` N x 8, int64)."""
    return _seeded(TinyAttention(), seed)  # type: ignore[return-value]


def star_args_wrapper(seed: int = 0) -> StarArgsWrapper:
    """The ``*args, **kwargs`` wrapper around the reference MLP (input ``x`` N x 8, reaching ``*args``)."""
    return StarArgsWrapper(tiny_mlp(seed)).eval()


def tiny_decoder(seed: int = 0) -> TinyDecoder:
    """The reference decoder (inputs ``input_ids`` / ``position_ids`` N x 8, int64; no attention mask given)."""
    return _seeded(TinyDecoder(), seed)  # type: ignore[return-value]


@dataclass(frozen=True)
class ReferenceModel:
    """A reference model the conformance kit exports: how to build it, its inputs, its task."""

    name: str
    description: str
    build: Callable[[], nn.Module]
    input_tensors: Callable[[], list[TensorSpec]]
    task: str
    output_names: tuple[str, ...]

    def inputs(self, dynamic_batch: bool = True) -> InputSpec:
        """A fresh input spec (batch 1), with axis 0 of every input dynamic when ``dynamic_batch``."""
        spec = InputSpec(self.input_tensors())
        return spec.with_dynamic_batch() if dynamic_batch else spec


REFERENCE_MODELS: dict[str, ReferenceModel] = {
    "cnn": ReferenceModel(
        "cnn", "conv / batch-norm / pooling classifier, float32 N x 3 x 16 x 16 -> N x 10", tiny_cnn,
        lambda: [TensorSpec("input", (1, 3, 16, 16), "float32")], "classification", ("output",),
    ),
    "mlp": ReferenceModel(
        "mlp", "linear / GELU / layer-norm, float32 N x 8 -> (N x 4 logits, N x 4 probabilities)", tiny_mlp,
        lambda: [TensorSpec("x", (1, 8), "float32")], "other", ("output.0", "output.1"),
    ),
    "attention": ReferenceModel(
        "attention", f"masked self-attention encoder, int64 ids/mask N x {SEQ} -> dict of hidden states",
        tiny_attention,
        lambda: [TensorSpec("input_ids", (1, SEQ), "int64", low=0, high=VOCAB),
                 TensorSpec("attention_mask", (1, SEQ), "int64")],
        "text-encoding", ("last_hidden_state", "pooler_output"),
    ),
    "wrapper": ReferenceModel(
        "wrapper", "forward(*args, **kwargs) around the MLP, float32 N x 8 -> N x 4", star_args_wrapper,
        lambda: [TensorSpec("x", (1, 8), "float32")], "other", ("output",),
    ),
    "decoder": ReferenceModel(
        "decoder", f"forward(input_ids, attention_mask=None, position_ids=None) given input_ids and position_ids "
        f"(int64 N x {SEQ}) -> N x {SEQ} x {VOCAB} logits", tiny_decoder,
        lambda: [TensorSpec("input_ids", (1, SEQ), "int64", low=0, high=VOCAB),
                 TensorSpec("position_ids", (1, SEQ), "int64", low=0, high=SEQ)],
        "other", ("output",),
    ),
}

"""Models that break an export in one named module, for testing ``modelport debug`` (shipped, like ``testing_models``).

* :class:`Fp16Overflow` — ``blocks.1.amp`` drives activations past the float16 range (65504) with a gain that
  float16 cannot hold either; everything before it is ordinary.
* :class:`Branchy` — ``gate`` takes a Python ``if`` on a tensor value; a trace (TorchScript, the legacy ONNX
  exporter, OpenVINO's converter) bakes in the branch its example took.
* :class:`Int8Sensitive` — ``sensitive`` has one outlier weight (on an input channel that is always 0), so
  per-tensor int8 weight quantization rounds the rest of the layer to 0 or ±1; every other layer quantizes well.
* :func:`wide_mlp` — a stack of square linear layers of about ``gigabytes`` of float32 parameters, for bisection.

Each takes one float32 input ``x`` (N x 16) and returns one tensor.
"""

from __future__ import annotations

import torch
from torch import nn

from modelport.engine.inputs import InputSpec, TensorSpec

WIDTH = 16


def _seed(model: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            scale = 1.0 / (p.shape[-1] ** 0.5) if p.ndim > 1 else 0.05
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return model.eval()


class Block(nn.Module):
    """linear → GELU, residual."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.fc(x))


class Amplifier(nn.Module):
    """A gain stage: ``gelu(proj(x)) * 1e5``. Its activations (~1e5) and its gain are past float16's 65504.

    On fp16 hardware the activations overflow to inf. An fp16 conversion also has to store the gain in float16,
    where 1e5 does not exist: converters clamp it to 65504 (or make it inf), so the output is off by a third even
    on runtimes that compute fp16 graphs in float32 (onnxruntime's CPU provider does).
    """

    def __init__(self, width: int = WIDTH, gain: float = 1e5) -> None:
        super().__init__()
        self.proj = nn.Linear(width, width)
        self.act = nn.GELU()
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.proj(x)) * self.gain


class AmpBlock(Block):
    """A block followed by the amplifier ``amp``."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__(width)
        self.amp = Amplifier(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amp(super().forward(x))


class Fp16Overflow(nn.Module):
    """stem → blocks.0 → blocks.1 (its ``amp`` leaves the fp16 range) → head."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.stem = nn.Linear(WIDTH, width)
        self.blocks = nn.ModuleList([Block(width), AmpBlock(width)])
        self.head = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


class Gate(nn.Module):
    """Data-dependent control flow: which branch runs depends on the values, not the shapes."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        if float(y.sum()) > 0:  # a Python branch on a tensor value: a trace keeps only the one it took
            return y * 2.0
        return -y


class Branchy(nn.Module):
    """stem → gate (branches on values) → head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = Block()
        self.gate = Gate()
        self.head = nn.Linear(WIDTH, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.gate(self.stem(x)))


class Int8Sensitive(nn.Module):
    """stem → sensitive (one outlier weight: per-tensor int8 loses the rest of the layer) → tail → head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(WIDTH, WIDTH)
        self.sensitive = nn.Linear(WIDTH, WIDTH)
        self.tail = Block()
        self.head = nn.Linear(WIDTH, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.tail(self.sensitive(self.stem(x))))


def fp16_overflow(seed: int = 0) -> Fp16Overflow:
    return _seed(Fp16Overflow(), seed)  # type: ignore[return-value]


def branchy(seed: int = 0) -> Branchy:
    return _seed(Branchy(), seed)  # type: ignore[return-value]


def int8_sensitive(seed: int = 0) -> Int8Sensitive:
    model = Int8Sensitive()
    _seed(model, seed)
    with torch.no_grad():
        # the stem's channel 0 is always 0, and the outlier weight reads only that channel: in float32 it changes
        # nothing, but it sets the per-tensor int8 scale of the layer, so every other weight rounds to 0 or ±1
        model.stem.weight[0] = 0.0
        model.stem.bias[0] = 0.0
        w = model.sensitive.weight
        w[0, 0] = 300.0 * float(w.abs().max())
    return model


class WideMLP(nn.Module):
    """``layers`` square linear layers in ``stages`` of equal length (module tree depth 3)."""

    def __init__(self, width: int, stages: int, per_stage: int, hot: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(*[AmpBlock(width) if (s, i) == hot else Block(width) for i in range(per_stage)])
            for s in range(stages))
        self.head = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return self.head(x)


def wide_mlp(gigabytes: float = 1.0, width: int = 2048, stages: int = 8, hot: tuple[int, int] | None = None,
             seed: int = 0) -> WideMLP:
    """About ``gigabytes`` of float32 parameters; input ``x`` N x ``width``.

    ``hot=(stage, index)`` makes that block an :class:`AmpBlock`, whose ``amp`` leaves the fp16 range.
    """
    per_layer = (width * width + width) * 4
    per_stage = max(1, round(gigabytes * 1e9 / per_layer / stages))
    model = WideMLP(width, stages, per_stage, hot)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():  # small weights: a deep residual stack stays in range
            p.copy_(torch.randn(p.shape, generator=gen) * (0.2 / (p.shape[-1] ** 0.5) if p.ndim > 1 else 0.01))
    return model.eval()


def inputs(width: int = WIDTH, batch: int = 2) -> InputSpec:
    """The input spec every model here takes: ``x`` batch x width, float32."""
    return InputSpec([TensorSpec("x", (batch, width), "float32")])

"""A tiny image classifier, the example model modelport serve ships (exports in about a second)."""

from __future__ import annotations

import torch
from torch import nn


class TinyCNN(nn.Module):
    """Conv / batch-norm / ReLU, global pooling and a linear head: N x 3 x H x W -> N x 10 logits."""

    def __init__(self, num_classes: int = 10, width: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width * 2, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width * 2, num_classes)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(input)))
        x = torch.relu(self.conv2(x))
        return self.head(torch.flatten(self.pool(x), 1))


def build(num_classes: int = 10) -> TinyCNN:
    return TinyCNN(num_classes=num_classes)

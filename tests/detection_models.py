"""A small YOLO-style detector built and trained here (no ultralytics): dense [B, 4+C, A] predictions.

Images are 32x32 with one or two filled squares drawn on a dark background (class 0 red, class 1 green). The
detector predicts, per cell of an 8x8 grid, a box (centre, size) and C class scores; a few hundred Adam steps on
freshly drawn images make it find the squares, so NMS has real, overlapping candidates to suppress.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

SIZE = 32
GRID = 8
STRIDE = SIZE // GRID
CLASSES = 2


class TinyYolo(nn.Module):
    """Backbone of strided convolutions and a 1x1 head: raw output [B, 4 + C, GRID*GRID], boxes as cx, cy, w, h."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.SiLU(),
        )
        self.head = nn.Conv2d(32, 4 + CLASSES, 1)
        ys, xs = torch.meshgrid(torch.arange(GRID), torch.arange(GRID), indexing="ij")
        self.register_buffer("grid", torch.stack((xs, ys)).reshape(1, 2, -1).float())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        p = self.head(self.body(image)).flatten(2)  # [B, 4 + C, A]
        xy = (self.grid + torch.sigmoid(p[:, :2])) * STRIDE
        wh = torch.sigmoid(p[:, 2:4]) * SIZE
        return torch.cat((xy, wh, torch.sigmoid(p[:, 4:])), dim=1)


def draw(n: int, seed: int) -> tuple[np.ndarray, list[list[tuple[int, float, float, float, float]]]]:
    """n images with 1-2 squares each, and their objects (class, cx, cy, w, h)."""
    rng = np.random.default_rng(seed)
    images = np.full((n, 3, SIZE, SIZE), 0.1, np.float32)
    objects = []
    for i in range(n):
        objs = []
        for _ in range(int(rng.integers(1, 3))):
            cls = int(rng.integers(0, CLASSES))
            side = int(rng.integers(8, 14))
            x0, y0 = (int(v) for v in rng.integers(0, SIZE - side, size=2))
            images[i, cls, y0:y0 + side, x0:x0 + side] = 1.0
            objs.append((cls, x0 + side / 2, y0 + side / 2, float(side), float(side)))
        objects.append(objs)
    images += rng.normal(0, 0.05, images.shape).astype(np.float32)
    return images, objects


def _targets(objects: list[list[tuple[int, float, float, float, float]]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = len(objects)
    cls_t = torch.zeros(n, CLASSES, GRID * GRID)
    box_t = torch.zeros(n, 4, GRID * GRID)
    pos = torch.zeros(n, GRID * GRID, dtype=torch.bool)
    for i, objs in enumerate(objects):
        for cls, cx, cy, w, h in objs:
            a = int(cy // STRIDE) * GRID + int(cx // STRIDE)
            cls_t[i, cls, a] = 1.0
            box_t[i, :, a] = torch.tensor([cx, cy, w, h])
            pos[i, a] = True
    return cls_t, box_t, pos


def trained_detector(steps: int = 150, seed: int = 0) -> TinyYolo:
    """A TinyYolo trained on freshly drawn images until it finds the squares."""
    torch.manual_seed(seed)
    model = TinyYolo()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        images, objects = draw(32, seed=1000 + step)
        cls_t, box_t, pos = _targets(objects)
        out = model(torch.from_numpy(images))
        cls_loss = nn.functional.binary_cross_entropy(out[:, 4:].clamp(1e-6, 1 - 1e-6), cls_t)
        box_err = (out[:, :4] - box_t).abs().mean(1) / STRIDE
        box_loss = box_err[pos].mean()
        loss = cls_loss * 10 + box_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()

"""`modelport optimize` goals: a ResNet-18-shaped CNN (cosine>=0.99, winner vs eager at batch 1) and a digits CNN
trained on scikit-learn's load_digits (top1=-1.0 on the held-out split; int8 calibrates on 512 training digits).
`--every-calibration-size` tries every calibration size (no skipping) and prints int8 top-1 per size; `--no-resnet`
runs the digits case only. Prints one table; numbers are under whatever load the machine has, ratios come from one
run (eager and candidates timed in the same process)."""

from __future__ import annotations

import sys
import tempfile
import time

import modelport
import numpy as np
import torch
from modelport.commands.optimize import optimize
from torch import nn


def block(cin: int, cout: int, stride: int) -> nn.Module:
    class Basic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
            self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
            self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.b2(self.c2(torch.relu(self.b1(self.c1(x))))) + self.down(x))

    return Basic()


def resnet18() -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [block(cin, cout, stride), block(cout, cout, 1)]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000)).eval()


def digits() -> tuple[nn.Module, np.ndarray, np.ndarray, float]:
    """The trained digits CNN, the held-out test images and labels, and PyTorch's top-1 on them."""
    m, _xtr, _ytr, xte, yte, acc = digits_with_training()
    return m, xte, yte, acc


def digits_with_training() -> tuple[nn.Module, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.25, random_state=0)
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(128, 10))
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(m(xt), yt).backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        acc = float((m(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean() * 100)
    return m, xtr, ytr, xte, yte, acc


def calibration_study(r) -> list[str]:
    """Top-1 of every calibrating candidate by calibration size (one thread count, the first runtime setting)."""
    rows: dict[str, dict[int, float | None]] = {}
    for c in r.candidates:
        if c.calibration is None or c.threads != min(x.threads for x in r.candidates):
            continue
        family = ",".join(f"{k}={v}" for k, v in c.options.items() if k != c.calibration)
        rows.setdefault(f"{c.format}[{family}]", {})[c.calibration_size] = c.metric
    return [f"  {fam:70} " + "  ".join(f"{n}: {m:.2f}" if m is not None else f"{n}: -" for n, m in sorted(by.items()))
            for fam, by in rows.items()]


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    fmts = args[0].split(",") if args else None
    every_size = "--every-calibration-size" in sys.argv  # no skipping: measure int8 top-1 at each size
    rows = []
    if "--no-resnet" not in sys.argv:
        t0 = time.time()
        x = np.random.default_rng(0).random((32, 3, 224, 224), dtype=np.float32)  # 16 calibrate, 16 score
        r = optimize(resnet18(), {"input": x}, "cosine>=0.99", output_dir=tempfile.mkdtemp() + "/r18", formats=fmts,
                     settings={"inputs": modelport.vision(3, 224, 224), "progress": print, "calibration": 16})
        w = r.winner
        rows.append(("resnet18 cosine>=0.99", r.eager_p50_ms, w.label if w else "-", w.p50_ms if w else None,
                     f"cos {w.metric:.4f}" if w else "-", r, time.time() - t0))
    t0 = time.time()
    m, xtr, ytr, xte, yte, acc = digits_with_training()
    # the first 512 items (from the training split) calibrate; the 450 held-out test digits score
    r = optimize(m, {"input": np.concatenate([xtr[:512], xte])}, "top1=-1.0", labels=np.concatenate([ytr[:512], yte]),
                 output_dir=tempfile.mkdtemp() + "/dg", formats=fmts,
                 settings={"inputs": modelport.InputSpec([modelport.TensorSpec("input", (1, 1, 8, 8), "float32")]),
                           "progress": print, "calibration": 512,
                           "calibration_search": "all" if every_size else None})
    w = r.winner
    rows.append(("digits top1=-1.0", r.eager_p50_ms, w.label if w else "-", w.p50_ms if w else None,
                 f"top1 {w.metric:.2f} vs torch {acc:.2f}" if w else "-", r, time.time() - t0))
    print(f"{'case':24} {'eager ms':>9} {'winner':60} {'ms':>8} {'speed-up':>8}  metric  (candidates, s)")
    for case, eager, label, p50, metric, res, secs in rows:
        speed = f"{eager / p50:.1f}x" if p50 else "-"
        tried = sum(c.status != "skipped" for c in res.candidates)
        print(f"{case:24} {eager:9.3f} {label:60} {p50 or 0:8.3f} {speed:>8}  {metric}  "
              f"({len(res.candidates)} candidates, {tried} tried, {secs:.0f}s)")
        print("\n".join(calibration_study(res)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

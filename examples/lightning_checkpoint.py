"""Export a model from a Lightning-style checkpoint: ``{"state_dict": {"model.<name>": tensor, ...}, ...}``.

A LightningModule keeps the network in an attribute (here ``self.model``), so its checkpoint's keys carry that
prefix, next to the epoch, optimizer states and hyper-parameters. modelport builds the network from its factory,
finds the state dict inside the checkpoint, strips the ``model.`` prefix and loads it with ``weights_only=True``
(nothing in the file is executed):

    modelport export examples/models.py:small_cnn --checkpoint last.ckpt --vision 3x32x32 -f pt2

This script trains a few steps the way Lightning would, saves such a checkpoint, runs exactly that command, and
checks that the exported artifact computes the *trained* network, not the factory's fresh weights.

    python examples/lightning_checkpoint.py [OUT_DIR]     # default: a temporary folder
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from models import small_cnn  # noqa: E402 - the bundled example models sit next to this file


class LitClassifier(nn.Module):
    """The shape of a LightningModule: the network under ``self.model``, a training_step, an optimizer."""

    def __init__(self) -> None:
        super().__init__()
        self.model = small_cnn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


def train_and_save(path: Path, steps: int = 5) -> LitClassifier:
    """A few optimizer steps on random data, then a checkpoint laid out as Lightning writes it."""
    lit = LitClassifier()
    opt = lit.configure_optimizers()
    gen = torch.Generator().manual_seed(0)
    lit.train()
    for _ in range(steps):
        batch = (torch.randn(16, 3, 32, 32, generator=gen), torch.randint(0, 10, (16,), generator=gen))
        loss = lit.training_step(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.save({
        "epoch": 0, "global_step": steps, "pytorch-lightning_version": "2.4.0",
        "state_dict": lit.state_dict(),  # keys: model.stem.conv.weight, model.head.bias, ...
        "optimizer_states": [opt.state_dict()], "lr_schedulers": [], "hyper_parameters": {"num_classes": 10},
    }, path)
    return lit.eval()


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "last.ckpt"
    lit = train_and_save(ckpt)
    print(f"saved {ckpt} ({len(lit.state_dict())} tensors, keys like {next(iter(lit.state_dict()))!r})")

    export_dir = out / "export"
    cmd = [sys.executable, "-m", "modelport", "export", f"{HERE / 'models.py'}:small_cnn", "--checkpoint", str(ckpt),
           "--vision", "3x32x32", "--dynamic-batch", "-f", "pt2", "--output-dir", str(export_dir), "--force", "--json"]
    print("$ modelport " + " ".join(cmd[3:]))
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stderr, file=sys.stderr)
        return run.returncode
    print(f"export: {json.loads(run.stdout)['results']['pt2']['status']}")

    source = json.loads((export_dir / "export.json").read_text())["source"]
    print(f"checkpoint: {source['checkpoint']['keys']} keys loaded, prefix stripped: {source['checkpoint']['prefix_stripped']}")

    program = torch.export.load(str(export_dir / "model.pt2")).module()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        exported, trained, untrained = program(x), lit(x), small_cnn()(x)
    matches_trained = torch.allclose(exported, trained, atol=1e-5, rtol=1e-4)
    matches_untrained = torch.allclose(exported, untrained, atol=1e-5, rtol=1e-4)
    print(f"artifact == trained network: {matches_trained}; == untrained factory: {matches_untrained}")
    return 0 if matches_trained and not matches_untrained and source["checkpoint"]["prefix_stripped"] == "model." else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(main(Path(sys.argv[1])))
    with tempfile.TemporaryDirectory(prefix="modelport-lightning-") as tmp:
        sys.exit(main(Path(tmp)))

"""modelport-export-safetensors: the conformance kit, the real CLI, and the weights reloaded into a fresh model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from modelport.testing import PluginConformance

MODEL = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(4, classes)
        self.tied = self.head  # a shared module: safetensors stores its tensors once

    def forward(self, image):
        return self.head(self.body(image).flatten(1))


def build(classes: int = 3) -> Net:
    torch.manual_seed(1)
    return Net(classes).eval()
'''


class TestConformance(PluginConformance):
    """The reference models' classes live in modelport.testing.models, so the plugin finds them by name.

    ``wrapper`` and ``decoder`` bind their inputs by keyword: the format object receives the user's own module
    (not the core's binding wrapper), stores its class and state_dict, and calls the rebuilt model the same way.
    ``wrapper``'s class needs a constructor argument (the wrapped module), so without ``-o factory`` the export
    refuses it, naming the class it could not rebuild.
    """

    models = ("cnn", "mlp", "attention", "wrapper", "decoder")
    unsupported = {"wrapper": "StarArgsWrapper cannot rebuild the model"}

    plugin = "modelport_safetensors"
    format = "safetensors"
    heavy_modules = ("safetensors",)


def modelport(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelport", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "net.py"
    path.write_text(MODEL)
    return path


def test_cli_export_reloads_into_a_fresh_model(tmp_path, model_file):
    out = tmp_path / "out"
    r = modelport("export", f"{model_file}:build", "--vision", "3x8x8", "--dynamic-batch", "-f", "safetensors",
                  "-o", f"factory={model_file}:build", "--output-dir", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["results"]["safetensors"]["status"] == "passed"

    # what a user of the export does: rebuild from the recorded factory, load the weights, run
    import importlib.util

    import safetensors.torch
    import torch

    record = json.loads((out / "export.json").read_text())
    assert record["details"]["factory"] == f"{model_file}:build"
    spec = importlib.util.spec_from_file_location("user_net", model_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    original = module.build()
    fresh = module.Net()  # different random weights until the file is loaded
    x = torch.randn(2, 3, 8, 8)
    assert not torch.allclose(fresh(x), original(x))
    safetensors.torch.load_model(fresh, str(out / "model.safetensors"))
    torch.testing.assert_close(fresh.eval()(x), original(x))

    r = modelport("validate", str(out))
    assert r.returncode == 0 and "safetensors: passed" in r.stdout, r.stdout + r.stderr
    r = modelport("inspect", str(out / "model.safetensors"), "--json")
    info = json.loads(r.stdout)
    assert info["factory"] == f"{model_file}:build"
    assert len(original.state_dict()) == 11 and info["tensors"] == 9  # the tied head's weight and bias are stored once
    assert json.loads((out / "metadata.json").read_text())["extra_metadata"]["safetensors"]["state_dict_keys"] == 11


def test_relative_factory_is_found_from_the_working_directory(tmp_path, model_file):
    r = modelport("export", "net.py:build", "--vision", "3x8x8", "-f", "safetensors", "-o", "factory=net.py:build",
                  "-o", 'factory_kwargs={"classes": 3}', "--output-dir", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert meta["extra_metadata"]["safetensors"]["factory"] == "net.py:build"
    assert meta["extra_metadata"]["safetensors"]["factory_kwargs"] == {"classes": 3}


def test_model_from_a_file_uses_the_recorded_source(tmp_path, model_file):
    """The core passes the CLI's model reference in request.metadata["source"]: no -o factory needed."""
    out = tmp_path / "out"
    r = modelport("export", f"{model_file}:build", "--vision", "3x8x8", "-f", "safetensors", "--model-kwargs",
                  '{"classes": 4}', "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / "metadata.json").read_text())["extra_metadata"]["safetensors"]
    assert meta["factory"] == f"{model_file}:build" and meta["factory_kwargs"] == {"classes": 4}


def test_model_object_from_a_file_needs_a_factory(tmp_path, model_file):
    """Through the Python API there is no recorded source, and a class from a file is not importable by name."""
    script = tmp_path / "api.py"
    script.write_text(
        "import importlib.util, sys\n"
        "import modelport\n"
        f"spec = importlib.util.spec_from_file_location('netmod', {str(model_file)!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        f"res = modelport.export(mod.build(), ['safetensors'], modelport.vision(3, 8, 8), output_dir={str(tmp_path / 'out')!r})\n"
        "print(res['safetensors'].exit_code, res['safetensors'].error)\n"
    )
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert r.stdout.startswith("3 "), r.stdout + r.stderr
    assert "pass -o factory=path/to/file.py:function" in r.stdout
    assert not (tmp_path / "out").exists()


def test_factory_that_builds_another_architecture_fails_the_export(tmp_path, model_file):
    r = modelport("export", f"{model_file}:build", "--vision", "3x8x8", "-f", "safetensors",
                  "-o", f"factory={model_file}:build", "-o", 'factory_kwargs={"classes": 5}',
                  "--output-dir", str(tmp_path / "out"))
    assert r.returncode == 1
    assert "do not match the weights (different shape: head.bias, head.weight" in r.stderr

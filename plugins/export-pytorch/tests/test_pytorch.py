"""modelport-export-pytorch: weights as safetensors + the factory, rebuilt to validate, and never run untrusted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from modelport.testing import PluginConformance, run_cli

# A detector-shaped model: a conv backbone and two heads, boxes (N x A x 4) and class scores (N x A x C) in a dict.
# Importing this file leaves a mark beside it, so a test sees whether modelport ran its code.
DETECTOR = '''
from pathlib import Path

import torch
from torch import nn

with open(Path(__file__).with_name("imported.log"), "a") as log:
    log.write("imported\\n")


class Detector(nn.Module):
    def __init__(self, num_classes: int = 3, anchors: int = 2) -> None:
        super().__init__()
        self.anchors = anchors
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.SiLU(),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.SiLU())
        self.box = nn.Conv2d(16, anchors * 4, 1)
        self.cls = nn.Conv2d(16, anchors * num_classes, 1)

    def forward(self, images):
        f = self.backbone(images)
        n = images.shape[0]
        boxes = self.box(f).flatten(2).transpose(1, 2).reshape(n, -1, 4).sigmoid()
        scores = self.cls(f).flatten(2).transpose(1, 2).reshape(n, boxes.shape[1], -1).softmax(-1)
        return {"boxes": boxes, "scores": scores}


def build(num_classes: int = 3) -> Detector:
    torch.manual_seed(0)
    model = Detector(num_classes)
    with torch.no_grad():
        model.backbone[1].running_mean.uniform_(-0.1, 0.1)
        model.backbone[1].running_var.uniform_(0.5, 1.5)
    return model.eval()
'''


class TestConformance(PluginConformance):
    """The reference models' classes are importable (modelport.testing.models), so the plugin rebuilds them by
    class; ``decoder`` binds its inputs by keyword and is called the same way after the rebuild."""

    models = ("cnn", "attention", "decoder")
    plugin = "modelport_pytorch"
    format = "pytorch"
    heavy_modules = ("safetensors",)


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment whose modelport data folder (the sealing key) is this test's own."""
    return {**os.environ, "MODELPORT_HOME": str(tmp_path / "home")}


@pytest.fixture
def detector(tmp_path: Path, home: dict[str, str]) -> Path:
    """A detector exported with the pytorch format from a factory file; the import log emptied afterwards."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "det.py").write_text(DETECTOR)
    out = tmp_path / "out"
    r = run_cli("export", f"{src / 'det.py'}:build", "--input", "images:1x3x32x32:float32", "--dynamic-batch",
                "--model-kwargs", '{"num_classes": 4}', "-f", "pytorch", "--output-dir", str(out), "--json", env=home)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["results"]["pytorch"]["status"] == "passed"
    (src / "imported.log").unlink()
    return out


def test_detector_exports_weights_and_factory_and_validates_by_rebuilding(detector, home):
    import safetensors.torch

    md = json.loads((detector / "metadata.json").read_text())
    assert md["export_format"] == "pytorch"
    assert md["extra_metadata"]["pytorch"]["factory"] == "det.py:build"  # published as is: no local folders
    assert md["extra_metadata"]["pytorch"]["factory_kwargs"] == {"num_classes": 4}
    tensors = safetensors.torch.load_file(str(detector / "model.safetensors"))
    assert tensors["cls.weight"].shape[0] == 2 * 4  # the kwargs reached the factory

    r = run_cli("validate", str(detector), env=home)  # sealed here: the user's own factory
    assert r.returncode == 0 and "pytorch: passed" in r.stdout, r.stdout + r.stderr
    assert (detector.parent / "src" / "imported.log").is_file()


def test_a_folder_from_elsewhere_runs_no_factory_without_trust_code(detector, home, tmp_path):
    log = tmp_path / "src" / "imported.log"
    elsewhere = {**home, "MODELPORT_HOME": str(tmp_path / "other-machine")}
    r = run_cli("validate", str(detector), env=elsewhere)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "imports and calls the factory" in r.stderr and "--trust-code" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not log.exists()

    r = run_cli("validate", str(detector), "--trust-code", env=elsewhere)
    assert r.returncode == 0 and "pytorch: passed" in r.stdout, r.stdout + r.stderr
    assert log.is_file()

    r = run_cli("inspect", str(detector / "model.safetensors"), "--json", env=elsewhere)  # reads the header only
    assert r.returncode == 0 and json.loads(r.stdout)["factory"].endswith("det.py:build")
    r = run_cli("inspect", str(detector), "--json", env=elsewhere)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["artifact"]["tensors"] == 13  # conv, batch-norm (with its counter) and both heads
    assert log.read_text().count("imported") == 1  # only the trusted validate above imported it


def test_tampered_safetensors_is_refused_before_any_code_runs(detector, home, tmp_path):
    import safetensors.torch
    import torch

    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(tmp_path / 'evil.log')!r}, 'w').write('ran')\nimport torch\nbuild = lambda: torch.nn.Identity()\n")
    path = detector / "model.safetensors"
    tensors = safetensors.torch.load_file(str(path))
    tensors["box.bias"] = torch.zeros_like(tensors["box.bias"])
    safetensors.torch.save_file(tensors, str(path), metadata={"modelport.factory": f"{evil}:build"})

    r = run_cli("validate", str(detector), env=home)
    assert r.returncode != 0, r.stdout
    assert "model.safetensors" in r.stderr and "changed" in r.stderr
    assert not (tmp_path / "evil.log").exists() and not (tmp_path / "src" / "imported.log").exists()


def test_keyword_decoder_from_the_python_api(tmp_path):
    import modelport
    from modelport.testing.models import REFERENCE_MODELS

    ref = REFERENCE_MODELS["decoder"]
    res = modelport.export(ref.build(), ["pytorch"], ref.inputs(), output_dir=str(tmp_path / "dec"))
    r = res["pytorch"]
    assert r.status == "passed", r.error or r.validation_note
    assert json.loads((tmp_path / "dec" / "metadata.json").read_text())["extra_metadata"]["pytorch"]["factory"] == \
        "modelport.testing.models:TinyDecoder"


def test_object_with_no_factory_says_what_to_pass(tmp_path):
    import modelport
    import torch
    from modelport.engine.inputs import InputSpec, parse_input

    class Local(torch.nn.Module):  # defined in a function: not importable by name
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x)

    res = modelport.export(Local().eval(), ["pytorch"], InputSpec([parse_input("x:1x4:float32")]),
                           output_dir=str(tmp_path / "local"))
    r = res["pytorch"]
    assert r.status == "structure-only" and r.exit_code == 0
    assert "no factory reference" in r.validation_note and "-o factory=path/to/file.py:function" in r.validation_note
    assert (tmp_path / "local" / "model.safetensors").is_file()


def test_bench_tells_the_pytorch_export_from_the_eager_baseline(detector, home, monkeypatch):
    """The eager baseline row is also labelled ``pytorch``: the export's row still gets its own speed-up."""
    from modelport.commands.bench import bench_dirs, is_eager

    monkeypatch.setenv("MODELPORT_HOME", home["MODELPORT_HOME"])
    rows = bench_dirs([detector], max_seconds=0.3, write=False)
    eager = [r for r in rows if is_eager(r)]
    export = [r for r in rows if r.get("export_dir") == str(detector)]
    assert len(eager) == 1 and len(export) == 1, rows
    assert export[0]["format"] == "pytorch" and export[0]["speedup"] is not None and export[0].get("best")
    assert not eager[0].get("best")


def test_published_export_names_no_local_path_and_rebuilds_from_the_factory_folder(detector, home, tmp_path):
    """metadata.json and the safetensors header are published byte for byte: they name the factory file without
    this machine's folders; a pulled copy is rebuilt (with --trust-code) from the factory found in the working folder."""
    local = str(tmp_path)
    assert local not in (detector / "metadata.json").read_text()
    assert local.encode() not in (detector / "model.safetensors").read_bytes()[:4096]
    assert local in (detector / "export.json").read_text()  # the local record keeps the path for validate here

    reg = tmp_path / "registry"
    assert run_cli("publish", str(detector), f"file://{reg}", "--version", "v1", env=home).returncode == 0
    pulled = tmp_path / "pulled"
    model_name = json.loads((detector / "metadata.json").read_text())["model_name"]
    r = run_cli("pull", f"file://{reg}/{model_name}/v1", str(pulled), env=home)
    assert r.returncode == 0, r.stderr
    assert local not in "".join(p.read_text(errors="ignore") for p in pulled.glob("*.json"))
    elsewhere = {**home, "MODELPORT_HOME": str(tmp_path / "other-machine")}
    r = run_cli("validate", str(pulled), "--trust-code", env=elsewhere, cwd=tmp_path / "src")
    assert r.returncode == 0 and "pytorch: passed" in r.stdout, r.stdout + r.stderr


def test_compare_reads_a_folder_named_pytorch_as_the_export(tmp_path, home):
    """``compare A pytorch`` means PyTorch eager, unless ``pytorch`` is a folder here: then it is that export."""
    (tmp_path / "det.py").write_text(DETECTOR)
    r = run_cli("export", "det.py:build", "--input", "images:1x3x32x32:float32", "-f", "pt2,pytorch",
                "--output-dir", "out", env=home, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    elsewhere = {**home, "MODELPORT_HOME": str(tmp_path / "other-machine")}
    r = run_cli("compare", "pt2", "pytorch", env=elsewhere, cwd=tmp_path / "out")
    assert r.returncode == 3 and "imports and calls the factory" in r.stderr, r.stdout + r.stderr  # the folder
    r = run_cli("compare", "pt2", "pytorch", env=home, cwd=tmp_path / "out")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_cli("compare", "out/pt2", "pytorch", env=elsewhere, cwd=tmp_path)  # no such folder: eager PyTorch
    assert r.returncode == 0, r.stdout + r.stderr

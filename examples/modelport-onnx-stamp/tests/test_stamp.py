"""modelport-onnx-stamp: the wrapper stamps every ONNX export, leaves other formats alone, and can be disabled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from modelport.testing import check_ignores_other_formats, check_import_is_light, check_registration

pytest.importorskip("modelport_onnx", reason="modelport-export-onnx is not installed (pip install modelport-export-onnx)")
onnx = pytest.importorskip("onnx")

MODEL = '''
import torch


def net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
'''


def modelport(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelport", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def model_ref(tmp_path: Path) -> str:
    (tmp_path / "net.py").write_text(MODEL)
    return f"{tmp_path / 'net.py'}:net"


def test_conformance_for_a_plugin_without_a_format():
    assert check_registration("modelport_onnx_stamp") is None
    check_import_is_light("modelport_onnx_stamp", ("onnx", "onnxruntime"))
    assert check_ignores_other_formats("modelport_onnx_stamp") == ["describe_metadata"]  # the wrapper is exempt


def test_every_onnx_export_is_stamped_and_other_formats_are_not(tmp_path, model_ref):
    r = modelport("export", model_ref, "--input", "x:1x4", "-f", "onnx,pt2", "--output-dir", str(tmp_path), "--json",
                  env={"MODELPORT_STAMP_GIT_COMMIT": "abc123"})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["results"]["onnx"]["status"] == "passed"
    out = tmp_path / "onnx"
    props = {p.key: p.value for p in onnx.load(str(out / "model.onnx")).metadata_props}
    assert props["stamp.git_commit"] == "abc123"
    assert props["stamp.model_name"] == "net"
    assert props["stamp.exported_by"].startswith("modelport ")
    record = json.loads((out / "export.json").read_text())
    assert record["details"]["stamp"]["stamp.git_commit"] == "abc123"
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["extra_metadata"]["stamp"]["stamp.git_commit"] == "abc123"
    assert "onnx" in metadata["extra_metadata"]  # the ONNX plugin's own metadata is still there
    assert "stamp" not in json.loads((tmp_path / "pt2" / "export.json").read_text())["details"]
    # the stamped file is the one that was hashed: re-validation sees no change
    r = modelport("validate", str(out))
    assert r.returncode == 0 and "onnx: passed" in r.stdout, r.stdout + r.stderr


def test_the_stamp_can_be_disabled(tmp_path, model_ref):
    r = modelport("export", model_ref, "--input", "x:1x4", "-f", "onnx", "--output-dir", str(tmp_path / "out"),
                  "--no-validate", env={"MODELPORT_DISABLE_PLUGINS": "onnx-stamp"})
    assert r.returncode == 0, r.stderr
    props = {p.key for p in onnx.load(str(tmp_path / "out" / "model.onnx")).metadata_props}
    assert props and not any(k.startswith("stamp.") for k in props)  # the ONNX plugin's own props only

"""Bad input that needs format plugins: corrupt artifacts, tampered exports, wrongly typed plugin options.
Same rules as core/tests/test_errors.py: one line on stderr, documented exit code, no traceback."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CNN = f"{ROOT / 'examples' / 'models.py'}:small_cnn"
needs_onnx = pytest.mark.skipif(importlib.util.find_spec("modelport_onnx") is None, reason="modelport-export-onnx not installed")


def cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelport", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ})


def one_line(r: subprocess.CompletedProcess[str]) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr and lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture(scope="module")
def onnx_export(tmp_path_factory):
    if importlib.util.find_spec("modelport_onnx") is None:
        pytest.skip("modelport-export-onnx not installed")
    out = tmp_path_factory.mktemp("onnx") / "cnn"
    r = cli("export", CNN, "--vision", "3x32x32", "--dynamic-batch", "-f", "onnx", "--output-dir", str(out), "-q")
    assert r.returncode == 0, r.stderr
    return out


@needs_onnx
def test_corrupt_onnx_file_for_inspect(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 20)
    r = cli("inspect", str(bad))
    assert r.returncode == 3
    assert str(bad) in one_line(r)


@needs_onnx
def test_truncated_onnx_in_an_export_is_caught_by_validate(onnx_export, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(onnx_export, copy)
    data = (copy / "model.onnx").read_bytes()
    (copy / "model.onnx").write_bytes(data[: len(data) // 2])
    r = cli("validate", str(copy))
    assert r.returncode == 3  # a changed export folder: exit 3 from every reader
    assert "files changed since export: model.onnx" in one_line(r)


@needs_onnx
def test_onnx_option_of_the_wrong_type(tmp_path):
    r = cli("export", CNN, "--vision", "3x32x32", "-f", "onnx", "-o", "opset=eighteen", "--output-dir", str(tmp_path / "o"))
    assert r.returncode == 3 and "not a valid int" in one_line(r)
    assert not (tmp_path / "o").exists()


@needs_onnx
def test_export_record_lists_onnx_validation_per_output(onnx_export):
    record = json.loads((onnx_export / "export.json").read_text())
    assert record["validation"]["status"] == "passed"
    assert record["validation"]["outputs"][0]["name"] == "output"
    assert 8 in record["validation"]["batch_sizes"]

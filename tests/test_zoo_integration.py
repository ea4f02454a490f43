"""The zoo with every plugin installed: load_pretrained picks a format that runs no code from the download (ONNX)
without any opt-in, and the choice among several formats follows what this machine can run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from modelport import ModelEntry, PublishedExport
from modelport.commands import zoo
from modelport.plugins import get_plugin_manager

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "models.py"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("zoo")
    out = root / "cnn-onnx"
    cmd = [sys.executable, "-m", "modelport"]
    r = subprocess.run([*cmd, "export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "--dynamic-batch", "-f", "onnx",
                        "--model-name", "cnn", "--output-dir", str(out), "-q"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*cmd, "publish", str(out), f"file://{root / 'reg'}"], capture_output=True, text=True,
                       timeout=300, env={**os.environ})
    assert r.returncode == 0, r.stderr
    return root / "reg"


def test_onnx_loads_without_trust_and_matches_pytorch(registry: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPORT_CACHE", str(tmp_path / "cache"))
    model = zoo.load_pretrained(f"file://{registry}/cnn")
    assert model.format == "onnx" and model.downloaded
    with np.load(registry / "cnn" / "v1" / "reference.npz", allow_pickle=False) as ref:
        for i in range(2):
            np.testing.assert_allclose(model(input=ref[f"{i}/in/input"])[0], ref[f"{i}/out/0"], rtol=1e-3, atol=1e-4)
    assert model.predict(input=ref_input(registry))["output"].shape[-1] == 10


def ref_input(registry: Path) -> np.ndarray:
    with np.load(registry / "cnn" / "v1" / "reference.npz", allow_pickle=False) as ref:
        return ref["0/in/input"]


def test_the_best_runnable_format_is_chosen() -> None:
    host = get_plugin_manager()

    def export(fmt: str) -> PublishedExport:
        return PublishedExport(fmt, fmt, f"memo://{fmt}", {"export_format": fmt, "files": {}}, "0" * 64)

    entry = ModelEntry("m", "1", "memo://x", [export(f) for f in ("torchscript", "pt2", "coreml", "onnx")])
    assert zoo.choose_export(entry, None, host=host, trust_code=False).format == "onnx"
    no_onnx = ModelEntry("m", "1", "memo://x", [export(f) for f in ("torchscript", "pt2", "coreml")])
    # a .pt2 is chosen without trust_code: its archive is read after download, refused only with pickled parts
    assert zoo.choose_export(no_onnx, None, host=host, trust_code=False).format == "pt2"
    code_only = ModelEntry("m", "1", "memo://x", [export(f) for f in ("torchscript", "pytorch", "coreml")])
    with pytest.raises(zoo.ConfigError) as err:
        zoo.choose_export(code_only, None, host=host, trust_code=False)
    assert all(w in str(err.value) for w in ("torchscript", "pytorch", "trust_code", "coreml"))
    assert zoo.choose_export(code_only, None, host=host, trust_code=True).format == "torchscript"

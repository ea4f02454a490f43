"""Where the converters write their scratch copies of the model: inside the export's staging folder, not /tmp."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import modelport
import numpy as np
import pytest


def test_static_quantization_scratch_files_stay_in_the_staging_folder(
        tmp_path: Path, examples: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime's static quantization writes an augmented copy of the model to a temp folder; for a large model
    the system temp folder may be too small, so it must be created under the export's own (staging) folder."""
    created: list[Path] = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(suffix: Any = None, prefix: Any = None, dir: Any = None) -> str:
        path = real_mkdtemp(suffix, prefix, dir)
        created.append(Path(path).resolve())
        return path

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    samples = {"input": np.random.default_rng(1).standard_normal((8, 3, 32, 32)).astype(np.float32)}
    out = tmp_path / "exports" / "q"
    result = modelport.export(examples.small_cnn(), ["onnx"], modelport.vision(3, 32, 32), output_dir=out,
                              options=["quantize=static"], sample_inputs=samples)["onnx"]
    assert result.status == "passed", result.error
    ort_dirs = [p for p in created if p.name.startswith("ort.quant.")]
    assert ort_dirs, "onnxruntime's static quantization made no temp folder: the test no longer sees it"
    root = (tmp_path / "exports").resolve()
    assert all(root in p.parents for p in ort_dirs), ort_dirs
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "metadata.json", "model.onnx", "reference.npz"]
    assert tempfile.gettempdir() != str(root) and not tempfile.gettempdir().startswith(str(root))

"""The export hook around the GPU build: options, the upstream ONNX the core produces, the plan, the files written.

What is replaced, and why: the ``recorder`` fixture (conftest.py) makes TensorRT look available and swaps ONLY
``build.build_engine`` — the TensorRT parse-and-build step, which needs TensorRT and an NVIDIA GPU that this
machine lacks — for a recorder that reads the ONNX file it is handed and returns fixed engine bytes. The core's
pipeline, the ONNX plugin's real export of the upstream artifact, option checks, the build plan, writing
model.engine, export.json and metadata.json all run for real.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import modelport
import numpy as np
import pytest
from conftest import ENGINE_BYTES, BuildRecorder
from modelport.testing import read_metadata, read_record, run_cli
from modelport_tensorrt import DEFAULT_OPSET
from trt_test_support import EXAMPLES


def test_cnn_engine_is_built_from_a_dynamic_batch_fp32_onnx_at_the_default_opset(
        tmp_path: Path, examples: ModuleType, recorder: BuildRecorder) -> None:
    out = tmp_path / "cnn"
    result = modelport.export(examples.small_cnn(), ["tensorrt"], modelport.vision(3, 32, 32, dynamic_batch=True),
                              output_dir=out, validate=False, options=["fp16=true"])
    res = result["tensorrt"]
    assert res.exit_code == 0, res.error
    assert len(recorder.calls) == 1
    onnx_ = recorder.onnx[0]
    assert onnx_["opset"] == DEFAULT_OPSET == 18
    assert onnx_["inputs"] == {"input": {"dims": ["batch", 3, 32, 32], "elem_type": "FLOAT"}}
    assert onnx_["outputs"] == {"output": ["batch", 10]}
    # fp16 is TensorRT's job: the ONNX it parses stays fp32
    assert "FLOAT" in onnx_["initializer_types"] and "FLOAT16" not in onnx_["initializer_types"]
    assert recorder.onnx_files[0] == ["model.onnx"]

    plan = recorder.calls[0]
    assert plan.fp16 is True and plan.int8 is False
    assert plan.profile.to_dict() == {"input": {"min": [1, 3, 32, 32], "opt": [1, 3, 32, 32], "max": [32, 3, 32, 32]}}
    assert plan.input_map == {"input": "input"}

    # model.engine is exactly the builder's bytes: no header, no trailer
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "metadata.json", "model.engine", "reference.npz"]
    assert (out / "model.engine").read_bytes() == ENGINE_BYTES
    record = read_record(out)
    assert record["precision"] == "fp16"
    assert record["artifact_files"] == ["model.engine"]
    assert record["details"]["upstream"]["options"] == {"opset": 18, "simplify": True, "exporter": "auto", "fp16": False}
    assert record["details"]["upstream"]["opset"] == 18
    assert record["details"]["engine_bytes"] == len(ENGINE_BYTES)
    md = read_metadata(out)
    assert md["export_format"] == "tensorrt" and md["precision"] == "fp16"
    assert md["extra_metadata"]["tensorrt"]["onnx"] == {"opset": 18, "exporter": "dynamo"}
    assert "no custom header" in md["extra_metadata"]["tensorrt"]["engine_file"]


def test_transformer_inputs_keep_their_names_int64_types_and_dynamic_batch(
        tmp_path: Path, examples: ModuleType, recorder: BuildRecorder) -> None:
    result = modelport.export(examples.small_transformer(), ["tensorrt"], modelport.text(16, dynamic_batch=True),
                              output_dir=tmp_path / "tr", validate=False, options=["opset=20", "max_batch=8"])
    assert result["tensorrt"].exit_code == 0, result["tensorrt"].error
    onnx_ = recorder.onnx[0]
    assert onnx_["opset"] == 20
    assert onnx_["inputs"] == {"input_ids": {"dims": ["batch", 16], "elem_type": "INT64"},
                               "attention_mask": {"dims": ["batch", 16], "elem_type": "INT64"}}
    assert list(onnx_["outputs"]) == ["last_hidden_state", "pooler_output"]
    assert onnx_["outputs"]["last_hidden_state"][0] == "batch"
    plan = recorder.calls[0]
    assert plan.profile.to_dict()["attention_mask"] == {"min": [1, 16], "opt": [1, 16], "max": [8, 16]}
    record = result["tensorrt"].record
    assert record["precision"] == "fp32"
    assert result["tensorrt"].metadata["extra_metadata"]["tensorrt"]["profile"]["input_ids"]["max"] == [8, 16]
    assert record["details"]["outputs"] == ["last_hidden_state", "pooler_output"]
    assert record["details"]["validation_hint"].startswith("TF32 is off")


def test_bad_shape_string_exits_3_before_anything_is_exported(
        tmp_path: Path, examples: ModuleType, recorder: BuildRecorder) -> None:
    out = tmp_path / "bad"
    result = modelport.export(examples.small_cnn(), ["tensorrt"], modelport.vision(3, 32, 32, dynamic_batch=True),
                              output_dir=out, validate=False, options=["max_shape=input:8x3x32"])
    res = result["tensorrt"]
    assert res.exit_code == 3
    assert res.error == "tensorrt: max_shape input:8x3x32 has 3 dims; input has 4 (1x3x32x32)"
    assert recorder.calls == []
    assert not out.exists()


@pytest.mark.parametrize(("options", "message"), [
    (["int8=true"], "tensorrt: int8=true calibrates on real inputs; pass --sample-inputs FILE.npz"),
    (["workspace=0"], "tensorrt: workspace=0.0 must be a positive number of GiB"),
    (["builder_optimization_level=9"], "tensorrt: builder_optimization_level=9 must be between 0 and 5"),
    (["device=-1"], "tensorrt: device=-1 must be a CUDA device index"),
    (["calibration_cache=/nonexistent/cal.cache", "int8=true"], "tensorrt: calibration_cache /nonexistent/cal.cache: no such file"),
    (["timing_cache=/nonexistent/dir/timing.cache"], "tensorrt: timing_cache /nonexistent/dir/timing.cache: folder /nonexistent/dir does not exist"),
])
def test_invalid_option_combinations_exit_3(tmp_path: Path, examples: ModuleType, recorder: BuildRecorder,
                                            options: list[str], message: str) -> None:
    result = modelport.export(examples.small_cnn(), ["tensorrt"], modelport.vision(3, 32, 32, dynamic_batch=True),
                              output_dir=tmp_path / "x", validate=False, options=options)
    assert result["tensorrt"].exit_code == 3
    assert result["tensorrt"].error.startswith(message)
    assert recorder.calls == []


def test_int8_calibrates_on_the_sample_inputs_and_keeps_the_cache_next_to_the_engine(
        tmp_path: Path, examples: ModuleType, recorder: BuildRecorder) -> None:
    rng = np.random.default_rng(0)
    samples = {"input": rng.standard_normal((6, 3, 32, 32), dtype=np.float32)}
    out = tmp_path / "int8"
    result = modelport.export(examples.small_cnn(), ["tensorrt"], modelport.vision(3, 32, 32, dynamic_batch=True),
                              output_dir=out, validate=False, options=["int8=true"], sample_inputs=samples)
    res = result["tensorrt"]
    assert res.exit_code == 0, res.error
    plan = recorder.calls[0]
    assert plan.int8 is True
    assert len(plan.calibration_samples) == 6
    assert all(s["input"].shape == (1, 3, 32, 32) for s in plan.calibration_samples)
    np.testing.assert_array_equal(plan.calibration_samples[5]["input"][0], samples["input"][5])
    assert plan.calibration_cache.name == "calibration.cache"
    assert sorted(p.name for p in out.iterdir()) == ["calibration.cache", "export.json", "metadata.json", "model.engine",
                                                     "reference.npz"]
    assert res.record["precision"] == "int8"
    assert res.record["artifact_files"] == ["model.engine", "calibration.cache"]
    assert res.metadata["precision"] == "int8"


def test_int8_with_a_fixed_batch_above_one_is_refused_before_export(
        tmp_path: Path, examples: ModuleType, recorder: BuildRecorder) -> None:
    samples = {"input": np.zeros((4, 3, 32, 32), np.float32)}
    result = modelport.export(examples.small_cnn(), ["tensorrt"], modelport.vision(3, 32, 32, batch=2),
                              output_dir=tmp_path / "x", validate=False, options=["int8=true"], sample_inputs=samples)
    assert result["tensorrt"].exit_code == 3
    assert "engine's batch is fixed at 2; export with --dynamic-batch" in result["tensorrt"].error
    assert recorder.calls == []


def test_bad_shape_string_through_the_real_cli_exits_3_with_one_line(tmp_path: Path) -> None:
    """The CLI's own entry point in a subprocess, with only the availability check replaced (no GPU here)."""
    code = (
        "import sys, modelport, modelport_tensorrt.probe as probe\n"
        "probe.tensorrt_availability = lambda: modelport.Availability.ok()\n"
        "from modelport.cli import main\n"
        "sys.argv = ['modelport'] + sys.argv[1:]\n"
        "main()\n"
    )
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", code, "export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32",
                           "--dynamic-batch", "-f", "tensorrt", "-o", "min_shape=input:1x3x32x32,input:2x3x32x32",
                           "--output-dir", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: tensorrt: min_shape='input:1x3x32x32,input:2x3x32x32': input 'input' is given twice")
    assert not out.exists()


def test_an_engine_export_moved_to_a_machine_without_tensorrt_is_refused_by_validate(
        tmp_path: Path, examples: ModuleType, recorder: BuildRecorder) -> None:
    """Exported with the build step recorded; then the real CLI, where TensorRT really is unavailable, re-validates."""
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    out = tmp_path / "engine"
    result = modelport.export(examples.small_cnn(), ["tensorrt"], modelport.vision(3, 32, 32), output_dir=out,
                              validate=False)
    assert result["tensorrt"].exit_code == 0, result["tensorrt"].error
    proc = run_cli("validate", str(out), in_process=False)  # a fresh process: no recorder
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "format 'tensorrt' is unavailable: TensorRT runtime not importable" in proc.stderr


def test_validate_hook_says_why_an_engine_cannot_run_here(tmp_path: Path) -> None:
    """Through the plugin manager: without TensorRT the plugin answers 'skipped' with the reason, never outputs."""
    import importlib.util

    from modelport import Artifact
    from modelport.plugins import PluginHost

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    engine = tmp_path / "model.engine"
    engine.write_bytes(ENGINE_BYTES)
    run = PluginHost().pm.hook.validate(artifact=Artifact("tensorrt", engine), inputs=[{"input": np.zeros((1, 3))}])
    assert run.outputs is None
    assert run.skipped == "a TensorRT engine runs only with TensorRT on an NVIDIA GPU: TensorRT runtime not importable"

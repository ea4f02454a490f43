"""modelport-export-tflite as a user meets it: the real CLI in a subprocess, plus the Python API and the hooks.

Conversions are slow on a small machine, so each export is made once per module and shared.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from modelport import testing
from modelport.testing import load_module, read_metadata, read_record

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "models.py"
HEAVY = ("litert_torch", "ai_edge_litert", "ai_edge_quantizer", "tensorflow", "jax")


run_cli = partial(testing.run_cli, timeout=400)


@pytest.fixture(scope="module")
def examples() -> ModuleType:
    return load_module(EXAMPLES, "modelport_examples_models")


@pytest.fixture(scope="module")
def cnn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled CNN through the CLI with a dynamic batch (validated at batch 1, 4, 8)."""
    out = tmp_path_factory.mktemp("cnn") / "tflite"
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "--dynamic-batch", "-f", "tflite",
                   "--output-dir", str(out), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    json.loads(proc.stdout)  # litert-torch's progress output never reaches stdout
    return out


@pytest.fixture(scope="module")
def transformer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled transformer (int64 input_ids / attention_mask) through the CLI with a dynamic batch."""
    out = tmp_path_factory.mktemp("transformer") / "tflite"
    proc = run_cli("export", f"{EXAMPLES}:small_transformer", "--text", "16", "--dynamic-batch", "-f", "tflite",
                   "--output-dir", str(out), "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


# ----------------------------------------------------------------------------- discovery


def test_formats_lists_tflite_available_without_importing_the_converter() -> None:
    """`modelport formats --json` answers from find_spec: litert-torch, ai-edge-litert, TensorFlow stay unimported."""
    # the real `modelport formats --json` exits 0 and imports neither torch, numpy nor HEAVY
    row = testing.check_cli_lists_format("tflite", plugin="modelport_tflite", heavy_modules=HEAVY, timeout=120)
    assert row["status"] == "available"
    assert row["can_export"] is True and row["can_validate"] is True
    assert row["plugin"] == "modelport-export-tflite"


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    testing.check_import_is_light("modelport_tflite", HEAVY)  # a fresh interpreter; torch and numpy are watched too


def test_format_object_and_options() -> None:
    from modelport.plugins import get_plugin_manager

    # the format object loads (lazily: not when the formats are listed) and has the methods the core calls
    assert testing.check_format_object("modelport_tflite") == ["tflite"]
    host = get_plugin_manager()
    spec = host.require_format("tflite")
    assert spec.option("layout").default == "nchw" and spec.option("quantize").default == "none"


# ----------------------------------------------------------------------------- the bundled CNN


def test_cnn_exports_validates_at_fp32_and_records_the_fixed_batch(cnn_dir: Path) -> None:
    assert sorted(p.name for p in cnn_dir.iterdir()) == ["export.json", "metadata.json", "model.tflite", "reference.npz"]
    rec = read_record(cnn_dir)
    assert rec["artifact_files"] == ["model.tflite"]
    assert rec["precision"] == "fp32"
    v = rec["validation"]
    assert v["status"] == "passed" and v["precision"] == "fp32"
    assert v["batch_sizes"] == [1, 4, 8]
    assert v["max_abs_diff"] < 1e-4
    assert v["runtime"].startswith("ai-edge-litert ")
    # litert-torch cannot convert a dynamic batch: the flatbuffer is batch 1 and the runner says how it ran 4 and 8
    assert rec["details"]["batch"]["flatbuffer"] == "fixed" and rec["details"]["batch"]["size"] == 1
    assert v["checks"]["batch"].startswith("flatbuffer fixed at batch 1; 2 input set(s)")
    assert any("fixed batch of 1" in n and "one sample at a time" in n for n in rec["notes"])
    md = read_metadata(cnn_dir)
    assert md["input_shape"] == {"input": [1, 3, 32, 32]}  # what the file takes, not "batch"
    assert md["extra_metadata"]["tflite"]["batch"]["runner"] == "one sample at a time"
    assert md["extra_metadata"]["tflite"]["layout"] == "nchw"


def test_cnn_flatbuffer_runs_in_a_plain_interpreter(cnn_dir: Path, examples: ModuleType) -> None:
    """What a device would do: no modelport, just ai-edge-litert with the recorded signature."""
    import torch
    from ai_edge_litert.interpreter import Interpreter

    sig = Interpreter(model_path=str(cnn_dir / "model.tflite")).get_signature_runner("serving_default")
    x = np.random.default_rng(7).standard_normal((1, 3, 32, 32), dtype=np.float32)
    got = sig(input=x)["output"]
    with torch.no_grad():
        want = examples.small_cnn()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-3)


def test_cli_revalidates_and_inspects_the_cnn(cnn_dir: Path) -> None:
    again = run_cli("validate", str(cnn_dir))
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("tflite: passed")
    info = run_cli("inspect", str(cnn_dir / "model.tflite"), "--json")
    assert info.returncode == 0, info.stderr
    desc = json.loads(info.stdout)
    text = json.dumps(desc)
    assert "serving_default" in text and "CONV_2D" in text


# ----------------------------------------------------------------------------- the bundled transformer


def test_transformer_int64_inputs_are_int32_in_the_flatbuffer_and_recorded(transformer_dir: Path) -> None:
    rec = read_record(transformer_dir)
    assert rec["validation"]["status"] == "passed" and rec["validation"]["precision"] == "fp32"
    assert rec["validation"]["batch_sizes"] == [1, 4, 8]
    assert rec["artifact_input_dtypes"] == {"input_ids": "int32", "attention_mask": "int32"}
    assert rec["artifact_outputs"] == ["last_hidden_state", "pooler_output"]
    assert any("input_ids is int32 in the flatbuffer (was int64)" in n for n in rec["notes"])
    md = read_metadata(transformer_dir)
    assert md["input_dtype"] == {"input_ids": "int32", "attention_mask": "int32"}
    assert md["extra_metadata"]["tflite"]["inputs"]["input_ids"] == {"shape": [1, 16], "dtype": "int32"}


def test_runner_feeds_what_the_flatbuffer_expects(transformer_dir: Path, examples: ModuleType) -> None:
    """The flatbuffer refuses int64; modelport's runner casts to int32, refuses what does not fit, loops batches."""
    import torch
    from ai_edge_litert.interpreter import Interpreter
    from modelport.engine.pipeline import artifact_from_dir
    from modelport.plugins import get_plugin_manager

    ids = np.random.default_rng(3).integers(0, 1000, size=(3, 16)).astype(np.int64)
    mask = np.ones((3, 16), dtype=np.int64)
    sig = Interpreter(model_path=str(transformer_dir / "model.tflite")).get_signature_runner("serving_default")
    with pytest.raises(ValueError, match="Got value of type INT64 but expected type INT32"):
        sig(input_ids=ids[:1], attention_mask=mask[:1])

    artifact = artifact_from_dir(transformer_dir)
    runner = get_plugin_manager().pm.hook.load_runner(artifact=artifact, options={"threads": 1})
    last, pooled = runner({"input_ids": ids, "attention_mask": mask})
    with torch.no_grad():
        want = examples.small_transformer()(torch.from_numpy(ids), torch.from_numpy(mask))
    np.testing.assert_allclose(pooled, want["pooler_output"].numpy(), atol=1e-4, rtol=1e-3)
    assert last.shape == (3, 16, 64)

    with pytest.raises(ValueError, match="outside int32"):
        runner({"input_ids": ids + (1 << 40), "attention_mask": mask})
    with pytest.raises(ValueError, match="fixed input shapes"):
        runner({"input_ids": ids[:, :8], "attention_mask": mask[:, :8]})


def test_transformer_refuses_nhwc_layout_with_exit_3(tmp_path: Path) -> None:
    proc = run_cli("export", f"{EXAMPLES}:small_transformer", "--text", "16", "-f", "tflite", "-o", "layout=nhwc",
                   "--output-dir", str(tmp_path / "x"), "-q")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "layout=nhwc needs a 4-D floating-point" in proc.stderr
    assert not (tmp_path / "x" / "model.tflite").exists()


# ----------------------------------------------------------------------------- options through the Python API


@pytest.fixture(scope="module")
def int8_transformer(tmp_path_factory: pytest.TempPathFactory, examples: ModuleType) -> Any:
    import modelport

    out = tmp_path_factory.mktemp("int8") / "tflite"
    return modelport.export(examples.small_transformer(), ["tflite"], modelport.text(16, batch=2), output_dir=out,
                            options=["quantize=dynamic_int8"])["tflite"]


def test_dynamic_int8_is_validated_against_the_int8_profile(int8_transformer: Any, transformer_dir: Path) -> None:
    r = int8_transformer
    assert r.status == "passed", r.error
    assert r.artifact.precision == "int8"
    assert r.validation.rule.startswith("cosine >=")
    assert r.validation.min_cosine >= 0.98
    assert r.metadata["quantization"]["method"] == "dynamic_int8"
    # int8 weights: the file is well under half the fp32 flatbuffer
    assert (r.path / "model.tflite").stat().st_size < 0.5 * (transformer_dir / "model.tflite").stat().st_size


def test_fixed_batch_export_refuses_another_batch(int8_transformer: Any) -> None:
    """Without --dynamic-batch the flatbuffer has batch 2 and nothing pretends otherwise."""
    from modelport.engine.pipeline import artifact_from_dir
    from modelport.plugins import get_plugin_manager

    r = int8_transformer
    assert r.record["details"]["batch"] == {"flatbuffer": "fixed", "size": 2}
    assert r.validation.batch_sizes == [2]
    runner = get_plugin_manager().pm.hook.load_runner(artifact=artifact_from_dir(r.path), options={"threads": None})
    ids = np.zeros((3, 16), dtype=np.int64)
    with pytest.raises(ValueError, match=r"fixed input shapes input_ids\[2, 16\]"):
        runner({"input_ids": ids, "attention_mask": np.ones_like(ids)})


def test_nhwc_fp16_cnn_is_channels_last_in_the_file(tmp_path: Path, examples: ModuleType) -> None:
    import modelport
    import torch
    from ai_edge_litert.interpreter import Interpreter

    r = modelport.export(examples.small_cnn(), ["tflite"], modelport.vision(3, 32, 32, dynamic_batch=True),
                         output_dir=tmp_path / "nhwc", options=["layout=nhwc", "quantize=fp16"])["tflite"]
    assert r.status == "passed", r.error
    assert r.artifact.precision == "fp16" and r.validation.precision == "fp16"
    assert r.validation.batch_sizes == [1, 4, 8]
    assert r.metadata["input_shape"] == {"input": [1, 32, 32, 3]}
    assert r.metadata["extra_metadata"]["tflite"]["layout"] == "nhwc"
    assert r.metadata["quantization"]["weights"] == "float16"
    # the file itself takes NHWC: feed it channels-last directly and compare with PyTorch on NCHW
    x = np.random.default_rng(5).standard_normal((1, 3, 32, 32), dtype=np.float32)
    sig = Interpreter(model_path=str(r.path / "model.tflite")).get_signature_runner("serving_default")
    got = sig(input=np.ascontiguousarray(x.transpose(0, 2, 3, 1)))["output"]
    with torch.no_grad():
        want = examples.small_cnn()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-2, rtol=1e-2)

"""The plugin as a user meets it: the real ``modelport`` CLI in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from modelport.testing import check_cli_lists_format, check_import_is_light, read_metadata, read_record, run_cli
from onnx_test_support import EXAMPLES, TRAPS


def test_formats_lists_onnx_as_available() -> None:
    row = check_cli_lists_format("onnx", plugin="modelport_onnx")  # the real CLI, exit 0
    assert row["status"] == "available"
    assert row["can_validate"] is True
    assert row["plugin"] == "modelport-export-onnx"


def test_importing_the_plugin_imports_no_heavy_module() -> None:
    # a fresh interpreter imports the plugin, registers it and checks availability; torch and numpy are watched too
    check_import_is_light("modelport_onnx", ("onnx", "onnxruntime", "onnxslim", "onnxscript"))


def test_cnn_exports_as_one_file_validates_and_revalidates(tmp_path: Path) -> None:
    out = tmp_path / "cnn"
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "--dynamic-batch", "-f", "onnx",
                   "--output-dir", str(out), "--json", "-q")
    assert proc.returncode == 0, proc.stderr
    # trap 4: a small model is one self-contained file, not model.onnx + model.onnx.data
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "metadata.json", "model.onnx", "reference.npz"]
    record = read_record(out)
    assert record["artifact_files"] == ["model.onnx"]
    assert record["validation"]["status"] == "passed"
    assert record["validation"]["batch_sizes"] == [1, 4, 8]
    assert record["validation"]["checks"]["onnx.checker"] == "ok"
    assert record["validation"]["runtime"].startswith("onnxruntime ")
    assert record["details"]["exporter"] == "dynamo"
    assert record["options"]["opset"] == onnx.load(str(out / "model.onnx")).opset_import[0].version
    md = read_metadata(out)["extra_metadata"]["onnx"]
    assert md["inputs"] == [{"name": "input", "shape": ["batch", 3, 32, 32], "dtype": "float32", "dynamic": {"0": "batch"}}]
    assert md["outputs"][0]["shape"] == ["batch", 10]
    assert md["ops"]["Conv"] == 3 and md["nodes"] == sum(md["ops"].values())

    again = run_cli("validate", str(out))
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("onnx: passed")

    # each BatchNorm is folded into its Conv: the Conv is listed under its own module, with the norm it absorbed
    info = json.loads(run_cli("inspect", str(out / "model.onnx"), "--by-module", "--json").stdout)
    modules = {g["module"]: g for g in info["modules"]}
    for block in ("stem", "layer1", "layer2"):
        assert modules[f"{block}.conv"]["ops"] == {"Conv": 1}, info["modules"]
        assert modules[f"{block}.conv"]["fused"] == [f"{block}.bn"]
        assert f"{block}.bn" not in modules
    assert sum(g["nodes"] for g in info["modules"]) == info["nodes"]


def test_data_dependent_model_with_legacy_exporter_ends_in_validation_failure(tmp_path: Path) -> None:
    """Trap 2: the legacy tracer bakes in the branch and the loop count; the several validation inputs catch it."""
    out = tmp_path / "dd"
    proc = run_cli("export", f"{EXAMPLES}:data_dependent", "--input", "x:1x8", "-f", "onnx", "-o", "exporter=legacy",
                   "--output-dir", str(out), "-q")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "validation failed" in proc.stderr
    assert "legacy (TorchScript) exporter" in proc.stderr  # the hint says why and what to do
    record = read_record(out)
    assert record["status"] == "validation-failed"
    assert record["details"]["exporter"] == "legacy"


def test_data_dependent_model_never_succeeds_with_default_exporter(tmp_path: Path) -> None:
    """auto: dynamo refuses, the legacy fallback is recorded, and validation still fails the export."""
    out = tmp_path / "dd"
    proc = run_cli("export", f"{EXAMPLES}:data_dependent", "--input", "x:1x8", "-f", "onnx", "--output-dir", str(out),
                   "--json", "-q")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    record = read_record(out)
    assert record["details"]["exporter"] == "legacy"
    assert record["details"]["fallback"].startswith("the dynamo exporter refused the model")
    assert any("fell back to the legacy exporter" in n for n in record["notes"])
    assert result  # machine-readable output stays parseable: torch.onnx's progress prints never reach stdout


def test_batch_baked_into_the_graph_fails_the_export(tmp_path: Path) -> None:
    """Trap 1: a model written with a fixed batch although --dynamic-batch was asked must not pass. Nothing is kept,
    so it is an export failure (exit 1): exit 2 means "written and kept, but validation failed"."""
    out = tmp_path / "baked"
    proc = run_cli("export", f"{TRAPS}:batch_baked", "--input", "x:1x8", "--dynamic-batch", "-f", "onnx",
                   "--output-dir", str(out), "-q")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "although the batch axis is declared dynamic" in proc.stderr
    assert not (out / "model.onnx").exists()


def test_static_quantization_without_samples_is_a_configuration_error(tmp_path: Path) -> None:
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "-f", "onnx", "-o", "quantize=static",
                   "--output-dir", str(tmp_path / "q"), "-q")
    assert proc.returncode == 3, proc.stderr
    assert "--sample-inputs" in proc.stderr


def test_static_quantization_calibrates_on_sample_inputs(tmp_path: Path) -> None:
    samples = tmp_path / "samples.npz"
    np.savez(samples, input=np.random.default_rng(1).standard_normal((16, 3, 32, 32)).astype(np.float32))
    out = tmp_path / "q"
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "--dynamic-batch", "-f", "onnx",
                   "-o", "quantize=static", "--sample-inputs", str(samples), "--output-dir", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    record = read_record(out)
    assert record["precision"] == "int8"
    assert record["validation"]["rule"].startswith("cosine >= 0.98")
    q = record["details"]["quantization"]
    assert q["mode"] == "static" and q["format"] == "QDQ" and q["calibration_samples"] == 16
    assert q["quantized_ops"]["QuantizeLinear"] > 0
    md = read_metadata(out)
    assert md["quantization"]["mode"] == "static"


def test_static_quantization_calibrates_on_at_most_calibration_size_items(tmp_path: Path) -> None:
    samples = tmp_path / "samples.npz"
    np.savez(samples, input=np.random.default_rng(1).standard_normal((16, 3, 32, 32)).astype(np.float32))
    args = ("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "-f", "onnx", "-o", "quantize=static",
            "--sample-inputs", str(samples), "-q")
    bad = run_cli(*args, "-o", "calibration_size=0", "--output-dir", str(tmp_path / "bad"))
    assert bad.returncode == 3 and "calibration_size must be a positive" in bad.stderr
    proc = run_cli(*args, "-o", "calibration_size=4", "--output-dir", str(tmp_path / "q"))
    assert proc.returncode == 0, proc.stderr
    assert read_record(tmp_path / "q")["details"]["quantization"]["calibration_samples"] == 4  # of the 16 given


def test_fp16_and_quantize_together_is_a_configuration_error(tmp_path: Path) -> None:
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "-f", "onnx", "-o", "fp16=true",
                   "-o", "quantize=dynamic", "--output-dir", str(tmp_path / "x"), "-q")
    assert proc.returncode == 3
    assert "exclusive" in proc.stderr


def test_config_half_is_the_fp16_option(tmp_path: Path) -> None:
    """`--config {"half": true}` (the export convention's key, declared in config_aliases) sets fp16: with
    quantize it is refused exactly as `-o fp16=true` is, not silently dropped."""
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "-f", "onnx", "--config",
                   '{"half": true, "quantize": "dynamic"}', "--output-dir", str(tmp_path / "x"), "-q")
    assert proc.returncode == 3 and "exclusive" in proc.stderr, proc.stderr


def test_inspect_by_module_groups_the_transformer_nodes(transformer_export) -> None:
    model = transformer_export.artifact_path
    proc = run_cli("inspect", str(model), "--by-module", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    modules = {g["module"]: g for g in info["modules"]}
    assert modules["blocks.0.attn.qkv"]["ops"] == {"Add": 1, "MatMul": 1}
    assert modules["blocks.1.norm2"]["ops"] == {"LayerNormalization": 1}
    assert "Softmax" in modules["blocks.0.attn"]["ops"]
    assert sum(g["nodes"] for g in info["modules"]) == info["nodes"]

    sub = json.loads(run_cli("inspect", str(model), "--module", "blocks.1.attn", "--json").stdout)
    assert {g["module"] for g in sub["modules"]} == {"blocks.1.attn", "blocks.1.attn.qkv", "blocks.1.attn.out"}
    assert sub["module_filter"]["nodes"] == sum(g["nodes"] for g in sub["modules"])
    assert sub["module_filter"]["ops"]["MatMul"] == 4  # qkv, out, and the two attention products

    text = run_cli("inspect", str(model), "--by-module")
    assert text.returncode == 0
    assert "module=blocks.0.ff.0" in text.stdout


def test_inspect_on_a_model_without_module_paths_says_so(tmp_path: Path, transformer_export) -> None:
    model = onnx.load(str(transformer_export.artifact_path))
    for node in model.graph.node:
        del node.metadata_props[:]
    path = tmp_path / "plain.onnx"
    onnx.save(model, str(path))
    info = json.loads(run_cli("inspect", str(path), "--by-module", "--json").stdout)
    assert "carries no module paths" in info["modules_note"]
    assert [g["module"] for g in info["modules"]] == ["(root)"]


def test_opset_below_18_uses_the_legacy_exporter_or_is_refused(tmp_path):
    """The dynamo exporter writes opset >= 18; asking for 17 must not write an invalid down-converted graph."""
    model = f"{EXAMPLES}:small_transformer"
    out = tmp_path / "o17"
    r = run_cli("export", model, "--text", "8", "-f", "onnx", "-o", "opset=17", "--output-dir", str(out), "-q")
    assert r.returncode == 0, r.stderr
    record = read_record(out)
    assert record["details"]["exporter"] == "legacy" and record["details"]["opset"] == 17
    r = run_cli("export", model, "--text", "8", "-f", "onnx", "-o", "opset=17", "-o", "exporter=dynamo",
                "--output-dir", str(tmp_path / "d17"))
    assert r.returncode == 3 and "exporter=legacy" in r.stderr

"""Export behaviour through the Python API and the hooks: precision variants, hierarchy, external data, traps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import modelport
import numpy as np
import onnx
import pytest
from modelport import Artifact, TensorSpec, ValidationFailed
from modelport_onnx.format import OnnxFormat
from modelport_onnx.hierarchy import MODULE_KEY, node_module
from onnx import TensorProto, helper

COMPUTE_OPS = {"MatMul", "Add", "Softmax", "LayerNormalization", "Gelu", "Gather", "Mul", "Div", "Sub", "Split",
               "Reshape", "Transpose", "ReduceSum", "Gemm", "Conv", "Relu", "Cast", "Clip", "Unsqueeze"}


def export(model: Any, spec: modelport.InputSpec, out: Path, *options: str, **kwargs: Any) -> Any:
    return modelport.export(model, ["onnx"], spec, output_dir=out, options=list(options), **kwargs)["onnx"]


def vision() -> modelport.InputSpec:
    return modelport.vision(3, 32, 32, dynamic_batch=True)


# ----------------------------------------------------------------------------- the bundled models


def test_transformer_with_dynamic_batch_validates_at_fp32_on_batch_1_and_8(transformer_export: Any) -> None:
    r = transformer_export
    assert r.status == "passed", r.error
    assert r.artifact.precision == "fp32"
    assert r.validation.batch_sizes == [1, 4, 8]
    assert r.validation.max_abs_diff <= 1e-4
    assert r.record["artifact_files"] == ["model.onnx"]
    model = onnx.load(str(r.artifact_path))
    assert [d.dim_param for i in model.graph.input for d in i.type.tensor_type.shape.dim[:1]] == ["batch", "batch"]
    assert [o.name for o in model.graph.output] == ["last_hidden_state", "pooler_output"]


def test_every_transformer_compute_node_keeps_its_module_path_after_simplification(transformer_export: Any) -> None:
    """Trap 3: onnxslim drops node metadata; the module path must survive it, and be the right one."""
    details = transformer_export.record["details"]
    assert details["simplify"]["applied"] is True
    model = onnx.load(str(transformer_export.artifact_path))
    compute = [n for n in model.graph.node if n.op_type in COMPUTE_OPS]
    assert len(compute) == len(model.graph.node) > 50
    missing = [f"{n.op_type}:{n.name}" for n in compute if MODULE_KEY not in {p.key for p in n.metadata_props}]
    assert missing == []
    paths = {n.op_type: set() for n in compute}
    for n in compute:
        paths[n.op_type].add(node_module(n))
    assert paths["LayerNormalization"] == {"blocks.0.norm1", "blocks.0.norm2", "blocks.1.norm1", "blocks.1.norm2", "norm"}
    assert paths["Softmax"] == {"blocks.0.attn", "blocks.1.attn"}
    assert paths["Gelu"] == {"blocks.0.ff.1", "blocks.1.ff.1"}
    assert paths["Gather"] == {"embed"}
    assert {p for p in paths["MatMul"] if p.endswith(("qkv", "out", "ff.0", "ff.2"))} == {
        f"blocks.{i}.{m}" for i in (0, 1) for m in ("attn.qkv", "attn.out", "ff.0", "ff.2")}
    # source file paths of the exporting machine are not shipped in the artifact
    assert not any(p.key == "pkg.torch.onnx.stack_trace" for n in model.graph.node for p in n.metadata_props)


def test_core_metadata_is_embedded_in_the_onnx_file(tmp_path: Path, examples: Any, transformer_export: Any) -> None:
    props = {p.key: p.value for p in onnx.load(str(transformer_export.artifact_path)).metadata_props}
    assert props["model_name"] == "small_transformer"
    r = export(examples.small_cnn(), vision(), tmp_path / "cls", model_name="cifar", task="classification",
               class_names=examples.CLASS_NAMES)
    props = {p.key: p.value for p in onnx.load(str(r.artifact_path)).metadata_props}
    assert props["task_type"] == "classification"
    assert json.loads(props["class_names"]) == examples.CLASS_NAMES
    r = export(examples.small_cnn(), vision(), tmp_path / "off", "embed_metadata=false", "hierarchy=false",
               class_names=examples.CLASS_NAMES)
    model = onnx.load(str(r.artifact_path))
    assert not {"class_names", "model_name"} & {p.key for p in model.metadata_props}
    # hierarchy=false strips node metadata entirely
    assert all(len(n.metadata_props) == 0 for n in model.graph.node)


def test_fp16_keeps_float32_io_and_validates_at_the_fp16_profile(tmp_path: Path, examples: Any) -> None:
    r = export(examples.small_cnn(), vision(), tmp_path / "fp16", "fp16=true")
    assert r.status == "passed", r.error
    assert r.artifact.precision == "fp16"
    assert r.record["validation"]["tolerance"] == {"atol": 1e-2, "rtol": 1e-2}
    assert r.validation.batch_sizes == [1, 4, 8]
    model = onnx.load(str(r.artifact_path))
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    conv_weights = {i for n in model.graph.node if n.op_type == "Conv" for i in n.input[1:2]}
    assert {t.data_type for t in model.graph.initializer if t.name in conv_weights} == {TensorProto.FLOAT16}


def test_dynamic_int8_transformer_validates_at_the_int8_profile(tmp_path: Path, examples: Any) -> None:
    r = export(examples.small_transformer(), modelport.text(16, dynamic_batch=True), tmp_path / "int8",
               "quantize=dynamic")
    assert r.status == "passed", r.error
    assert r.artifact.precision == "int8"
    assert r.validation.min_cosine >= 0.98
    q = r.record["details"]["quantization"]
    assert q["mode"] == "dynamic" and q["preprocess"] == "full"
    assert q["quantized_ops"]["MatMulInteger"] == 8
    assert q["weights_bytes_after"] < q["weights_bytes_before"] / 2
    assert r.metadata["quantization"]["mode"] == "dynamic"
    assert r.metadata["extra_metadata"]["onnx"]["ops"]["MatMulInteger"] == 8


# ----------------------------------------------------------------------------- files on disk


def test_weights_over_the_threshold_go_to_one_data_file(tmp_path: Path, examples: Any) -> None:
    """The > 2 GB path with the threshold lowered: model.onnx + ONE model.onnx.data, checked by path, re-validated."""
    out = tmp_path / "ext"
    r = export(examples.small_cnn(), vision(), out, "external_data_threshold=1000")
    assert r.status == "passed", r.error
    assert r.record["artifact_files"] == ["model.onnx", "model.onnx.data"]
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "metadata.json", "model.onnx", "model.onnx.data",
                                                      "reference.npz"]
    assert r.record["validation"]["checks"]["onnx.checker"] == "ok"
    graph_only = onnx.load(str(out / "model.onnx"), load_external_data=False)
    locations = {e.value for t in graph_only.graph.initializer for e in t.external_data if e.key == "location"}
    assert locations == {"model.onnx.data"}
    assert (out / "model.onnx.data").stat().st_size > 90_000 > (out / "model.onnx").stat().st_size
    assert r.metadata["extra_metadata"]["onnx"]["external_data"] == ["model.onnx.data"]
    assert set(r.metadata["files"]) == {"model.onnx", "model.onnx.data"}
    again = modelport.validate(out)
    assert again.status == "passed"


def test_large_fp32_models_stream_weights_to_disk_and_keep_dims_hierarchy_and_metadata(
        tmp_path: Path, examples: Any) -> None:
    """Over the threshold, weights go from the program straight to model.onnx.data (the memory path of > 2 GB
    models): the graph still gets its dim names, module paths and embedded metadata, and it validates."""
    out = tmp_path / "big"
    r = export(examples.small_transformer(), modelport.text(16, dynamic_batch=True), out,
               "external_data_threshold=1000", model_name="big_transformer")
    assert r.status == "passed", r.error
    assert r.validation.batch_sizes == [1, 4, 8]
    details = r.record["details"]
    assert details["written"].startswith("streamed")
    assert details["simplify"]["applied"] is False and "onnxslim" in details["simplify"]["reason"]
    assert details["batch_check"].startswith("left to validation")
    assert r.record["artifact_files"] == ["model.onnx", "model.onnx.data"]
    graph_only = onnx.load(str(out / "model.onnx"), load_external_data=False)
    assert {e.value for t in graph_only.graph.initializer for e in t.external_data if e.key == "location"} == {
        "model.onnx.data"}
    assert [d.dim_param for i in graph_only.graph.input for d in i.type.tensor_type.shape.dim[:1]] == ["batch"] * 2
    assert {p.key: p.value for p in graph_only.metadata_props}["model_name"] == "big_transformer"
    softmax = {node_module(n) for n in graph_only.graph.node if n.op_type == "Softmax"}
    assert softmax == {"blocks.0.attn", "blocks.1.attn"}
    assert modelport.validate(out).status == "passed"


def test_legacy_exporter_over_the_threshold_also_writes_one_data_file(tmp_path: Path, examples: Any) -> None:
    out = tmp_path / "legacy"
    r = export(examples.small_cnn(), vision(), out, "external_data_threshold=1000", "exporter=legacy")
    assert r.status == "passed", r.error
    assert r.record["details"]["exporter"] == "legacy"
    assert "written" not in r.record["details"]
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "metadata.json", "model.onnx", "model.onnx.data",
                                                      "reference.npz"]


def test_external_data_never_writes_a_single_file(tmp_path: Path, examples: Any) -> None:
    out = tmp_path / "one"
    r = export(examples.small_cnn(), vision(), out, "external_data=never", "external_data_threshold=1")
    assert r.status == "passed"
    assert r.record["artifact_files"] == ["model.onnx"]
    assert not (out / "model.onnx.data").exists()


# ----------------------------------------------------------------------------- options and failures


def test_simplification_failure_warns_and_keeps_the_model(tmp_path: Path, examples: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxslim

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("simulated onnxslim crash")

    monkeypatch.setattr(onnxslim, "slim", broken)
    r = export(examples.small_cnn(), vision(), tmp_path / "noslim")
    assert r.status == "passed", r.error
    assert r.record["details"]["simplify"]["applied"] is False
    assert "simulated onnxslim crash" in r.record["details"]["simplify"]["error"]
    assert any("onnxslim failed" in n and "kept the unsimplified model" in n for n in r.record["notes"])


def test_opset_option_is_written_and_recorded(tmp_path: Path, examples: Any) -> None:
    r = export(examples.small_cnn(), vision(), tmp_path / "op18", "opset=18")
    assert r.status == "passed", r.error
    model = onnx.load(str(r.artifact_path))
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {18}
    assert r.record["options"]["opset"] == 18
    assert r.metadata["extra_metadata"]["onnx"]["opset"] == 18


def test_transformer_encoder_exported_from_batch_1_accepts_other_batches(tmp_path: Path, traps: Any) -> None:
    """Trap 1: at example batch 1 torch.export writes nn.TransformerEncoder with a fixed batch; we trace at 2."""
    spec = modelport.InputSpec([TensorSpec("x", (1, 10, 32))]).with_dynamic_batch()
    r = export(traps.transformer_encoder(), spec, tmp_path / "enc")
    assert r.status == "passed", r.error
    assert r.validation.batch_sizes == [1, 4, 8]
    assert r.record["details"]["trace_batch"] == 2
    assert r.record["details"]["batch_check"] == {"batch": 3, "ok": True}


def test_legacy_exporter_keeps_module_paths_from_node_scopes(tmp_path: Path, examples: Any) -> None:
    r = export(examples.small_transformer(), modelport.text(16, dynamic_batch=True), tmp_path / "legacy",
               "exporter=legacy")
    assert r.status == "passed", r.error
    assert r.record["details"]["exporter"] == "legacy"
    model = onnx.load(str(r.artifact_path))
    assert all(MODULE_KEY in {p.key for p in n.metadata_props} for n in model.graph.node)
    assert {node_module(n) for n in model.graph.node if n.op_type == "LayerNormalization"} == {
        "blocks.0.norm1", "blocks.0.norm2", "blocks.1.norm1", "blocks.1.norm2", "norm"}


# ----------------------------------------------------------------------------- hooks through the plugin manager


def final_artifact(result: Any) -> Artifact:
    """The artifact at its final place (FormatResult.artifact.path names the staging folder, renamed since)."""
    return Artifact(format="onnx", path=result.artifact_path, files=result.record["artifact_files"],
                    precision=result.record["precision"], details=result.record["details"])


def test_runner_honours_threads_and_returns_outputs_in_order(transformer_export: Any) -> None:
    host = modelport.get_plugin_manager()
    art = final_artifact(transformer_export)
    runner = host.pm.hook.load_runner(artifact=art, options={"threads": 1})
    assert runner.session.get_session_options().intra_op_num_threads == 1
    assert runner.runtime.startswith("onnxruntime ")
    ids = np.random.default_rng(0).integers(0, 1000, (2, 16)).astype(np.int64)
    outs = runner({"input_ids": ids, "attention_mask": np.ones((2, 16), np.int64)})
    assert [o.shape for o in outs] == [(2, 16, 64), (2, 64)]


def test_describe_and_inspect_hooks(transformer_export: Any) -> None:
    host = modelport.get_plugin_manager()
    described = host.format_object("onnx").describe(final_artifact(transformer_export), None)
    onnx_md = described["extra_metadata"]["onnx"]
    assert onnx_md["exporter"] == "dynamo"
    assert onnx_md["ir_version"] >= 8
    assert onnx_md["producer"].startswith("pytorch")
    assert onnx_md["inputs"][0] == {"name": "input_ids", "shape": ["batch", 16], "dtype": "int64",
                                    "dynamic": {"0": "batch"}}
    assert onnx_md["simplification"]["applied"] is True
    assert onnx_md["nodes_with_module_path"] == onnx_md["nodes"]
    info = host.pm.hook.inspect_artifact(path=transformer_export.artifact_path, options={})
    assert info["format"] == "onnx" and info["ops"] == onnx_md["ops"]
    assert host.pm.hook.inspect_artifact(path=Path("model.unknown"), options={}) is None


def test_validate_fails_when_onnx_checker_rejects_the_model(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Relu", ["not_defined"], ["y"])], "g", [x], [y])
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ValidationFailed, match=r"onnx\.checker rejects"):
        OnnxFormat().validate(Artifact(format="onnx", path=path), [{"x": np.zeros(1, np.float32)}])


def test_int8_shorthand_picks_dynamic_without_samples(tmp_path: Path, examples: Any) -> None:
    r = export(examples.small_cnn(), vision(), tmp_path / "int8", "int8=true")
    assert r.status == "passed", r.error
    assert r.artifact.precision == "int8"
    assert r.record["options"]["quantize"] == "dynamic"
    assert r.record["details"]["quantization"]["quantized_ops"]["ConvInteger"] == 3


def test_graph_opt_is_recorded_and_every_reload_creates_the_session_with_it(tmp_path: Path, examples: Any,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort
    from modelport.engine.pipeline import artifact_from_dir
    from modelport_onnx import runtime

    levels = ort.GraphOptimizationLevel
    r = export(examples.small_cnn(), vision(), tmp_path / "basic", "graph_opt=basic")
    assert r.status == "passed", r.error
    assert r.record["options"]["graph_opt"] == "basic"
    art = artifact_from_dir(r.artifact_path.parent)
    runner = OnnxFormat().load_runner(art, {"threads": 1})  # how bench loads it
    assert runner.session.get_session_options().graph_optimization_level == levels.ORT_ENABLE_BASIC
    # modelport optimize tries another level on the same file through load_runner's options
    tried = OnnxFormat().load_runner(art, {"threads": 1, "graph_opt": "disable"})
    assert tried.session.get_session_options().graph_optimization_level == levels.ORT_DISABLE_ALL
    seen: list[Any] = []
    real = runtime.OnnxRunner

    def spy(*a: Any, **k: Any) -> Any:
        made = real(*a, **k)
        seen.append(made.session.get_session_options().graph_optimization_level)
        return made

    monkeypatch.setattr(runtime, "OnnxRunner", spy)
    OnnxFormat().validate(art, [{"input": np.zeros((1, 3, 32, 32), np.float32)}])  # how validate loads it
    assert seen == [levels.ORT_ENABLE_BASIC]


def test_optimize_tries_graph_opt_levels_on_one_export() -> None:
    from modelport.commands.optimize import candidate_grid

    labels = [c.label for c in candidate_grid(modelport.get_plugin_manager(), ["onnx"], [1])]
    assert {"onnx[quantize=static,calibration_size=32,graph_opt=extended]@1t",
            "onnx[quantize=static,calibration_size=512,graph_opt=all]@1t"} <= set(labels)
    # calibration sizes multiply only the candidates that calibrate
    assert [la for la in labels if "calibration_size" in la] == [la for la in labels if "quantize=static" in la]
    spec = modelport.get_plugin_manager().require_format("onnx")
    assert [o.name for o in spec.options if o.runtime] == ["graph_opt"]  # reloads only, no re-export

"""modelport-publish-triton with only the core: a pt2 export becomes a python-backend model whose config parses with
Triton's own protobuf and whose generated model.py, run against a stand-in for Triton's python-backend utilities,
answers like PyTorch. Options (batching, instances, versions, names) and refusals through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import modelport
import numpy as np
import pytest
from modelport.testing import run_cli
from modelport.testing.http import export_models
from modelport_publish_triton.checks import data_type_name, parse_config
from modelport_publish_triton.repository import build_config

CNN = f"{Path(__file__).resolve().parents[3] / 'examples' / 'models.py'}:small_cnn"


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The CNN as pt2 twice: dynamic batch, and a static batch of 2."""
    return export_models(tmp_path_factory.mktemp("exports"), CNN,
                         {"dynamic": ["--dynamic-batch"], "static": ["--batch", "2"]},
                         "--vision", "3x32x32", "-f", "pt2", "--model-name", "cnn", "-q")


def publish(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("publish", *args)


def config_of(path: Path) -> Any:
    return parse_config(path.read_text(encoding="utf-8"))


def test_formats_lists_the_triton_publisher() -> None:
    r = run_cli("formats", "--json")
    assert r.returncode == 0, r.stderr
    row = next(p for p in json.loads(r.stdout)["publishers"] if p["name"] == "triton")
    assert row["status"] == "available" and row["plugin"] == "modelport-publish-triton"
    spec = modelport.get_plugin_manager().require_publisher("triton")
    assert {o.name for o in spec.options} >= {"instances", "kind", "max_batch_size", "version", "name"}


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    code = "import modelport_publish_triton, sys; print(sorted(m for m in ('torch', 'numpy', 'google.protobuf') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_dynamic_batch_pt2_becomes_a_python_backend_model_that_triton_can_parse(exports: dict[str, Path],
                                                                                 tmp_path: Path) -> None:
    import torch

    repo = tmp_path / "models"
    r = publish(str(exports["dynamic"]), f"triton://{repo}", "-o", "instances=2", "-o", "max_batch_size=16")
    assert r.returncode == 0, r.stderr
    assert f"tritonserver --model-repository {repo}" in r.stdout
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()) == [
        "cnn/1/model.pt2", "cnn/1/model.py", "cnn/config.pbtxt"]
    cfg = config_of(repo / "cnn" / "config.pbtxt")
    assert (cfg.name, cfg.backend, cfg.max_batch_size, cfg.default_model_filename) == ("cnn", "python", 16, "model.py")
    assert cfg.HasField("dynamic_batching") and cfg.dynamic_batching.max_queue_delay_microseconds == 100
    assert [(g.count, g.kind) for g in cfg.instance_group] == [(2, cfg.instance_group[0].KIND_CPU)]
    # the artifact's real IO: the exported program's placeholders and outputs
    ep = torch.export.load(str(repo / "cnn" / "1" / "model.pt2"))
    real_in = [n.meta["val"] for n in ep.graph.nodes if n.op == "placeholder" and n.name in ep.graph_signature.user_inputs]
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    real_out = [a.meta["val"] for a in out_node.args[0]]
    assert [list(t.dims) for t in cfg.input] == [[int(d) for d in v.shape[1:]] for v in real_in]
    assert [list(t.dims) for t in cfg.output] == [[int(d) for d in v.shape[1:]] for v in real_out]
    assert [data_type_name(cfg, t.data_type) for t in cfg.input] == ["TYPE_FP32"] * len(real_in)
    assert [t.name for t in cfg.input] == ["input"] and [t.name for t in cfg.output] == ["output"]


def test_generated_model_py_answers_like_pytorch(exports: dict[str, Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Run model.py as Triton's python backend would: initialize(args) then execute(requests)."""
    repo = tmp_path / "models"
    assert publish(str(exports["dynamic"]), f"triton://{repo}").returncode == 0
    stub = types.ModuleType("triton_python_backend_utils")

    class Tensor:
        def __init__(self, name: str, array: np.ndarray) -> None:
            self.name, self.array = name, array

        def as_numpy(self) -> np.ndarray:
            return self.array

    class InferenceResponse:
        def __init__(self, output_tensors: list[Tensor]) -> None:
            self.output_tensors = output_tensors

    stub.Tensor = Tensor  # type: ignore[attr-defined]
    stub.InferenceResponse = InferenceResponse  # type: ignore[attr-defined]
    stub.get_input_tensor_by_name = lambda request, name: request[name]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", stub)
    from google.protobuf import json_format

    cfg = config_of(repo / "cnn" / "config.pbtxt")
    namespace: dict[str, Any] = {"__file__": str(repo / "cnn" / "1" / "model.py")}
    exec(compile((repo / "cnn" / "1" / "model.py").read_text(), namespace["__file__"], "exec"), namespace)
    model = namespace["TritonPythonModel"]()
    model.initialize({"model_config": json_format.MessageToJson(cfg, preserving_proto_field_name=True)})
    with np.load(exports["dynamic"] / "reference.npz", allow_pickle=False) as ref:
        requests = [{"input": Tensor("input", ref[f"{i}/in/input"])} for i in range(3)]
        expected = [ref[f"{i}/out/0"] for i in range(3)]
    responses = model.execute(requests)
    for response, want in zip(responses, expected):
        (out,) = response.output_tensors
        assert out.name == "output"
        np.testing.assert_allclose(out.array, want, rtol=1e-4, atol=1e-5)


def test_static_batch_has_no_max_batch_size_and_options_apply(exports: dict[str, Path], tmp_path: Path) -> None:
    repo = tmp_path / "models"
    r = publish(str(exports["static"]), f"triton://{repo}", "-o", "name=cnn_static", "-o", "kind=gpu")
    assert r.returncode == 0, r.stderr
    cfg = config_of(repo / "cnn_static" / "config.pbtxt")
    assert cfg.max_batch_size == 0 and not cfg.HasField("dynamic_batching")
    assert [list(t.dims) for t in cfg.input] == [[2, 3, 32, 32]] and [list(t.dims) for t in cfg.output] == [[2, 10]]
    assert [g.kind for g in cfg.instance_group] == [cfg.instance_group[0].KIND_GPU]


def test_versions_names_and_refusals(exports: dict[str, Path], tmp_path: Path) -> None:
    repo = tmp_path / "models"
    assert publish(str(exports["dynamic"]), f"triton://{repo}").returncode == 0
    again = publish(str(exports["dynamic"]), f"triton://{repo}/cnn")  # REPO_DIR/NAME: the repo holds models now
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (repo / "cnn").iterdir()) == ["1", "2", "config.pbtxt"]
    clash = publish(str(exports["static"]), f"triton://{repo}/cnn")
    assert clash.returncode == 3 and "another configuration" in clash.stderr and "--force" in clash.stderr
    taken = publish(str(exports["dynamic"]), f"triton://{repo}", "-o", "version=1")
    assert taken.returncode == 3 and "already exists" in taken.stderr
    two = publish(str(exports["dynamic"]), str(exports["static"]), f"triton://{repo}")
    assert two.returncode == 3 and "one export per model" in two.stderr
    dry = publish(str(exports["dynamic"]), f"triton://{tmp_path / 'other'}", "--dry-run", "--stage-dir",
                  str(tmp_path / "stage"))
    assert dry.returncode == 0 and not (tmp_path / "other").exists()
    assert config_of(tmp_path / "stage" / "cnn" / "config.pbtxt").name == "cnn"


def test_every_backend_config_parses_with_tritons_protobuf() -> None:
    """Configs for formats this machine may not run (TensorRT), from metadata alone, parse and say what Triton needs."""
    md = {"input_shape": {"input_ids": ["batch", "seq"], "attention_mask": ["batch", "seq"]},
          "input_dtype": {"input_ids": "int64", "attention_mask": "int64"},
          "output_shape": {"logits": ["batch", 2]}, "output_dtype": {"logits": "float16"}}
    expect = {"onnx": ("onnxruntime_onnx", "onnxruntime", "model.onnx"), "openvino": ("", "openvino", "model.xml"),
              "torchscript": ("pytorch_libtorch", "pytorch", "model.pt"),
              "tensorrt": ("tensorrt_plan", "tensorrt", "model.plan"), "pt2": ("", "python", "model.py")}
    for fmt, (platform, backend, main) in expect.items():
        cfg = parse_config(build_config("m", fmt, md, {}, {"instances": 3}).render())
        assert (cfg.platform, cfg.backend, cfg.default_model_filename) == (platform, backend, main), fmt
        assert [list(t.dims) for t in cfg.input] == [[-1], [-1]] and [list(t.dims) for t in cfg.output] == [[2]]
        assert [data_type_name(cfg, t.data_type) for t in cfg.input] == ["TYPE_INT64"] * 2
        assert data_type_name(cfg, cfg.output[0].data_type) == "TYPE_FP16"
        kind = cfg.instance_group[0].KIND_GPU if fmt == "tensorrt" else cfg.instance_group[0].KIND_CPU
        assert (cfg.instance_group[0].count, cfg.instance_group[0].kind) == (3, kind)
    ts = parse_config(build_config("m", "torchscript", md, {}, {}).render())
    assert [t.name for t in ts.input] == ["input_ids__0", "attention_mask__1"] and ts.output[0].name == "logits__0"
    with pytest.raises(modelport.ConfigError, match="no backend for coreml"):
        build_config("m", "coreml", md, {}, {})

"""Triton model repositories from real artifacts: the config.pbtxt written for ONNX, OpenVINO and TorchScript
exports parses with Triton's own protobuf and names the inputs and outputs the artifact really has."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from modelport_publish_triton.checks import data_type_name, parse_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "models.py"
FORMATS = ("onnx", "openvino", "torchscript")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelport", *args], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("triton")
    r = cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "--dynamic-batch", "-f", ",".join(FORMATS),
            "--model-name", "cnn", "--output-dir", str(root / "cnn"), "-q")
    assert r.returncode == 0, r.stderr
    for fmt in FORMATS:
        r = cli("publish", str(root / "cnn" / fmt), f"triton://{root / 'models'}", "-o", f"name=cnn_{fmt}")
        assert r.returncode == 0, r.stderr
    return root / "models"


def test_onnx_config_matches_the_graph(repo: Path) -> None:
    import onnx

    cfg = parse_config((repo / "cnn_onnx" / "config.pbtxt").read_text())
    assert (cfg.platform, cfg.max_batch_size) == ("onnxruntime_onnx", 8)
    graph = onnx.load(str(repo / "cnn_onnx" / "1" / "model.onnx"), load_external_data=False).graph

    def io(values: object) -> list[tuple[str, str, list[int]]]:
        return [(v.name, onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name,  # type: ignore[attr-defined]
                 [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim][1:])
                for v in values]  # type: ignore[attr-defined]

    want = {"TYPE_FP32": "float32"}
    assert [(t.name, want[data_type_name(cfg, t.data_type)], list(t.dims)) for t in cfg.input] == io(graph.input)
    assert [(t.name, want[data_type_name(cfg, t.data_type)], list(t.dims)) for t in cfg.output] == io(graph.output)


def test_openvino_config_matches_the_ir(repo: Path) -> None:
    import openvino as ov

    cfg = parse_config((repo / "cnn_openvino" / "config.pbtxt").read_text())
    assert (cfg.backend, cfg.default_model_filename) == ("openvino", "model.xml")
    assert sorted(p.name for p in (repo / "cnn_openvino" / "1").iterdir()) == ["model.bin", "model.xml"]
    model = ov.Core().read_model(str(repo / "cnn_openvino" / "1" / "model.xml"))

    def io(ports: object) -> list[tuple[str, list[int]]]:
        return [(p.get_any_name(), [d.get_length() if d.is_static else -1 for d in p.get_partial_shape()][1:])
                for p in ports]  # type: ignore[attr-defined]

    assert [(t.name, list(t.dims)) for t in cfg.input] == io(model.inputs)
    assert [(t.name, list(t.dims)) for t in cfg.output] == io(model.outputs)
    assert all(p.get_element_type() == ov.Type.f32 for p in [*model.inputs, *model.outputs])


def test_torchscript_config_matches_what_the_module_takes_and_returns(repo: Path) -> None:
    import torch

    cfg = parse_config((repo / "cnn_torchscript" / "config.pbtxt").read_text())
    assert (cfg.platform, cfg.default_model_filename) == ("pytorch_libtorch", "model.pt")
    assert [t.name for t in cfg.input] == ["input__0"] and [t.name for t in cfg.output] == ["output__0"]
    module = torch.jit.load(str(repo / "cnn_torchscript" / "1" / "model.pt"))  # written by this test's export
    assert len(module.forward.schema.arguments) - 1 == len(cfg.input)
    batch = torch.zeros(2, *cfg.input[0].dims)
    out = module(batch)
    assert [list(out.shape[1:])] == [list(t.dims) for t in cfg.output]

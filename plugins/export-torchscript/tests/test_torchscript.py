"""The torchscript format as a user drives it: the CLI end to end, the Python API, and the hooks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import modelport
import numpy as np
import pytest
import torch
from modelport import testing
from modelport.engine.pipeline import artifact_from_dir
from modelport.testing import read_metadata, read_record, run_cli
from modelport_torchscript.format import TorchScriptFormat
from torch import nn
from ts_helpers import EXAMPLES


def _deprecation_notes(record: dict[str, Any]) -> list[str]:
    return [n for n in record["notes"] if "deprecated" in n.lower()]


# ----------------------------------------------------------------------------- discovery


def test_formats_lists_torchscript_as_available() -> None:
    row = testing.check_cli_lists_format("torchscript", plugin="modelport_torchscript")  # the real CLI, exit 0
    assert row["status"] == "available"
    assert row["can_export"] and row["can_validate"]
    assert row["plugin"] == "modelport-export-torchscript"


def test_importing_the_plugin_does_not_import_torch() -> None:
    testing.check_import_is_light("modelport_torchscript")  # in a fresh interpreter; numpy is watched too


def test_format_is_registered_through_the_plugin_manager() -> None:
    host = modelport.get_plugin_manager()
    spec = host.require_format("torchscript")
    assert spec.files == ("model.torchscript",)
    assert spec.option("mode").default == "trace"
    assert spec.option("mode").choices == ("trace", "script")
    assert spec.option("optimize_for_inference").default is False


def test_format_object_loads_and_a_pt_checkpoint_is_not_read_as_torchscript(tmp_path: Path) -> None:
    assert testing.check_format_object("modelport_torchscript") == ["torchscript"]
    # .pt/.pth reach the format object (a TorchScript archive may be named so), a plain zip is refused
    (tmp_path / "weights.pt").write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip: not TorchScript
    assert TorchScriptFormat().inspect(tmp_path / "weights.pt", {}) is None


# ----------------------------------------------------------------------------- the bundled models


@pytest.fixture(scope="module")
def cnn_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("cnn") / "ts"
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "--dynamic-batch", "-f", "torchscript",
                   "--output-dir", str(out))
    return out, proc


def test_cnn_exports_with_dynamic_batch_and_validates_at_batch_1_and_8(cnn_export: Any) -> None:
    out, proc = cnn_export
    assert proc.returncode == 0, proc.stderr
    assert (out / "model.torchscript").is_file()
    record = read_record(out)
    v = record["validation"]
    assert v["status"] == "passed"
    assert {1, 8} <= set(v["batch_sizes"])
    assert v["max_abs_diff"] <= 1e-4
    assert v["runtime"].startswith("torch.jit ")
    assert record["details"]["mode"] == "trace"
    assert record["details"]["optimize_for_inference"] is False


def test_torch_jit_deprecation_is_recorded_once_and_not_printed(cnn_export: Any) -> None:
    out, proc = cnn_export
    record = read_record(out)
    notes = _deprecation_notes(record)
    assert len(notes) == 1, record["notes"]
    assert "torch.jit is deprecated" in notes[0] and "pt2" in notes[0]
    assert "DeprecationWarning" not in proc.stderr
    # re-validating (torch.jit.load again) adds no warning either
    again = run_cli("validate", str(out))
    assert again.returncode == 0, again.stderr
    assert "deprecated" not in again.stderr.lower()


def test_metadata_describes_mode_torch_version_and_io(cnn_export: Any) -> None:
    out, _ = cnn_export
    md = read_metadata(out)
    ts = md["extra_metadata"]["torchscript"]
    assert ts["mode"] == "trace"
    assert ts["torch_version"] == torch.__version__.split("+")[0]
    assert ts["inputs"] == [{"name": "input", "shape": ["batch", 3, 32, 32], "dtype": "float32"}]
    assert ts["outputs"] == [{"name": "output", "shape": [1, 10], "dtype": "float32"}]
    assert md["export_format"] == "torchscript"


def test_the_archive_loads_with_plain_torch_jit_and_carries_modelport_facts(cnn_export: Any) -> None:
    out, _ = cnn_export
    extra = {"modelport.json": ""}
    module = torch.jit.load(str(out / "model.torchscript"), _extra_files=extra)
    facts = json.loads(extra["modelport.json"])
    assert facts["mode"] == "trace" and facts["outputs"] == ["output"]
    with torch.no_grad():
        assert module(torch.zeros(5, 3, 32, 32)).shape == (5, 10)  # the traced batch axis really is dynamic


def test_inspect_shows_inputs_and_ops(cnn_export: Any) -> None:
    out, _ = cnn_export
    proc = run_cli("inspect", str(out / "model.torchscript"), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    text = json.dumps(info)
    assert "aten::_convolution" in text or "aten::conv2d" in text
    assert "aten::linear" in text


def test_runner_honours_threads(cnn_export: Any) -> None:
    out, _ = cnn_export
    code = (
        "import sys, torch; from modelport.engine.pipeline import artifact_from_dir; import modelport_torchscript.format as m;"
        f"a = artifact_from_dir(__import__('pathlib').Path({str(out)!r}));"
        "r = m.load_runner(a, {'threads': 1}); print(torch.get_num_threads(), r.runtime)"
    )
    out_text = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out_text.split()[0] == "1"


def test_transformer_dict_outputs_trace_and_validate(tmp_path: Path) -> None:
    out = tmp_path / "ts"
    proc = run_cli("export", f"{EXAMPLES}:small_transformer", "--text", "16", "--dynamic-batch", "-f", "torchscript",
                   "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    record = read_record(out)
    assert record["validation"]["status"] == "passed"
    assert {1, 8} <= set(record["validation"]["batch_sizes"])
    assert record["outputs"] == ["last_hidden_state", "pooler_output"]
    assert [o["name"] for o in record["validation"]["outputs"]] == ["last_hidden_state", "pooler_output"]
    assert len(_deprecation_notes(record)) == 1


def test_transformer_scripts_and_validates(examples: ModuleType, tmp_path: Path) -> None:
    result = modelport.export(examples.small_transformer(), ["torchscript"], modelport.text(16, dynamic_batch=True),
                              output_dir=tmp_path / "ts", options=["mode=script"])
    r = result["torchscript"]
    assert r.exit_code == 0, r.error
    assert r.status == "passed"
    assert {1, 8} <= set(r.validation.batch_sizes)
    assert r.record["details"]["mode"] == "script"
    assert "validation_hint" not in r.record["details"]


def test_optimize_for_inference_freezes_and_still_validates(examples: ModuleType, tmp_path: Path) -> None:
    result = modelport.export(examples.small_cnn(), ["torchscript"], modelport.vision(3, 32, 32, dynamic_batch=True),
                              output_dir=tmp_path / "ts", options=["optimize_for_inference=true"])
    r = result["torchscript"]
    assert r.exit_code == 0, r.error
    assert r.validation.passed and {1, 8} <= set(r.validation.batch_sizes)
    assert r.record["details"]["optimize_for_inference"] is True
    # the archive a user gets must load: on this torch optimize_for_inference's MKLDNN constants do not, and the
    # plugin falls back to freezing, saying so in the record
    assert r.record["details"]["optimization"] in (
        "torch.jit.optimize_for_inference", "torch.jit.freeze + torch.jit.run_frozen_optimizations")
    if "freeze" in r.record["details"]["optimization"]:
        assert any("cannot read" in n for n in r.record["notes"])
    module = torch.jit.load(str(r.path / "model.torchscript"))
    # frozen: batch norm is folded into the convolutions, no submodules are left to call
    assert not any(True for _ in module.named_children())
    assert "batch_norm" not in str(module.inlined_graph)


# ----------------------------------------------------------------------------- data-dependent control flow


def test_data_dependent_model_traced_fails_validation_with_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "dd"
    proc = run_cli("export", f"{EXAMPLES}:data_dependent", "--input", "x:1x8", "-f", "torchscript", "--output-dir", str(out))
    assert proc.returncode == 2, proc.stderr
    assert "validation failed" in proc.stderr
    assert "mode=script" in proc.stderr and "pt2" in proc.stderr and "onnx" in proc.stderr
    record = read_record(out)
    assert record["status"] == "validation-failed"
    assert record["details"]["tracer_warnings"] >= 1


def test_data_dependent_model_scripted_keeps_its_control_flow(tmp_path: Path) -> None:
    out = tmp_path / "dd"
    proc = run_cli("export", f"{EXAMPLES}:data_dependent", "--input", "x:1x8", "-f", "torchscript", "-o", "mode=script",
                   "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    assert read_record(out)["validation"]["status"] == "passed"


# ----------------------------------------------------------------------------- outputs and errors


class NestedOutputs(nn.Module):
    """Returns a tuple holding a dict whose keys are not sorted: the core flattens it to
    output.0, output.1.zeta, output.1.alpha — the runner must give the same three, in that order."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 4)
        self.b = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.a(x), {"zeta": self.b(x), "alpha": x.sum(-1)}


def test_runner_flattens_nested_outputs_in_the_core_order(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = NestedOutputs().eval()
    spec = modelport.InputSpec([modelport.TensorSpec("x", (2, 8))])
    r = modelport.export(model, ["torchscript"], spec, output_dir=tmp_path / "ts")["torchscript"]
    assert r.exit_code == 0, r.error
    assert r.record["outputs"] == ["output.0", "output.1.zeta", "output.1.alpha"]
    runner = TorchScriptFormat().load_runner(artifact_from_dir(r.path), {"threads": None})
    x = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    got = runner({"x": x})
    with torch.no_grad():
        ref = model(torch.from_numpy(x))
    expected = [ref[0], ref[1]["zeta"], ref[1]["alpha"]]
    assert [g.shape for g in got] == [tuple(e.shape) for e in expected]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e.numpy(), atol=1e-6)


class Unscriptable(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.tanh(x.numpy()))


def test_script_failure_is_one_clear_line_with_exit_1(tmp_path: Path) -> None:
    spec = modelport.InputSpec([modelport.TensorSpec("x", (1, 4))])
    r = modelport.export(Unscriptable(), ["torchscript"], spec, output_dir=tmp_path / "ts", options=["mode=script"])
    res = r["torchscript"]
    assert res.exit_code == 1
    assert res.error.startswith("torchscript: torch.jit.script cannot compile the model")
    assert "mode=trace" in res.error and "\n" not in res.error
    assert not (tmp_path / "ts" / "model.torchscript").exists()


class DictOfMixedValues(nn.Module):
    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        return {"a": x * 2, "b": (x, x + 1)}


def test_nested_outputs_tracing_cannot_hold_are_flattened_as_other_formats_do(tmp_path: Path) -> None:
    spec = modelport.InputSpec([modelport.TensorSpec("x", (2, 8))])
    res = modelport.export(DictOfMixedValues(), ["torchscript"], spec, output_dir=tmp_path / "ts")["torchscript"]
    assert res.status == "passed", res.error
    assert res.record["outputs"] == ["a", "b.0", "b.1"]
    assert any("traced them flattened" in n for n in res.record["notes"])


def test_unknown_mode_is_a_configuration_error(tmp_path: Path) -> None:
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "-f", "torchscript", "-o", "mode=compile",
                   "--output-dir", str(tmp_path / "never"))
    assert proc.returncode == 3
    assert "mode" in proc.stderr and "trace" in proc.stderr
    assert not (tmp_path / "never").exists()


def test_describe_metadata_works_again_from_an_existing_export(cnn_export: Any) -> None:
    out, _ = cnn_export
    fields = TorchScriptFormat().describe(artifact_from_dir(out), None)
    assert fields is not None
    assert fields["extra_metadata"]["torchscript"]["mode"] == "trace"
    assert fields["extra_metadata"]["torchscript"]["load"] == "torch.jit.load(path)"

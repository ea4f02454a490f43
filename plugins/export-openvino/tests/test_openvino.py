"""The openvino format as a user drives it: the CLI end to end, the Python API, and the hooks."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import modelport
import numpy as np
import openvino as ov
import pytest
import torch
from modelport import testing
from modelport.engine.pipeline import REFERENCE_FILE, artifact_from_dir, load_reference
from modelport.testing import load_module, read_metadata, read_record, run_cli
from modelport_openvino.format import OpenVINOFormat, resolve_compression
from ov_helpers import EXAMPLES
from torch import nn

FP32_ATOL = 1e-4  # the core's fp32 profile


def _cpu_has(capability: str) -> bool:
    return capability in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


# ----------------------------------------------------------------------------- discovery


def test_formats_lists_openvino_as_available() -> None:
    row = testing.check_cli_lists_format("openvino", plugin="modelport_openvino")  # the real CLI, exit 0
    assert row["status"] == "available"
    assert row["can_export"] and row["can_validate"]
    assert row["plugin"] == "modelport-export-openvino"


def test_importing_the_plugin_imports_neither_torch_nor_openvino() -> None:
    testing.check_import_is_light("modelport_openvino", ("openvino", "nncf"))  # in a fresh interpreter; numpy is watched too


def test_format_options_and_defaults_through_the_plugin_manager() -> None:
    spec = modelport.get_plugin_manager().require_format("openvino")
    assert spec.files == ("model.xml", "model.bin")
    defaults = {o.name: o.default for o in spec.options}
    assert defaults["precision"] == "fp32"
    assert defaults["compress_weights"] == "auto"
    assert defaults["int8"] is False and defaults["allow_random_calibration"] is False
    assert defaults["device"] == "CPU"


def test_weight_compression_default_follows_the_requested_precision() -> None:
    assert resolve_compression("auto", "fp32") == "none"
    assert resolve_compression("auto", "bf16") == "fp16"
    assert resolve_compression("auto", "fp16") == "fp16"
    assert resolve_compression("fp16", "fp32") == "fp16"
    assert resolve_compression("none", "fp16") == "none"


def test_format_object_loads_and_other_xml_is_not_an_ir(tmp_path: Path) -> None:
    assert testing.check_format_object("modelport_openvino") == ["openvino"]
    # .xml files reach the format object; one that is not an OpenVINO IR is not described as one
    (tmp_path / "notes.xml").write_text("<notes/>")
    assert OpenVINOFormat().inspect(tmp_path / "notes.xml", {}) is None
    assert modelport.get_plugin_manager().pm.hook.inspect_artifact(path=tmp_path / "notes.xml", options={}) is None


# ----------------------------------------------------------------------------- the bundled CNN, fp32


@pytest.fixture(scope="module")
def cnn_fp32(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("cnn") / "ov"
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "--dynamic-batch", "-f", "openvino",
                   "--output-dir", str(out))
    return out, proc


def test_cnn_fp32_exports_with_dynamic_batch_and_validates_at_batch_1_and_8(cnn_fp32: Any) -> None:
    out, proc = cnn_fp32
    assert proc.returncode == 0, proc.stderr
    assert (out / "model.xml").is_file() and (out / "model.bin").is_file()
    record = read_record(out)
    v = record["validation"]
    assert v["status"] == "passed"
    assert {1, 8} <= set(v["batch_sizes"])
    assert v["max_abs_diff"] <= FP32_ATOL
    assert v["checks"]["inference_precision_hint"] == "f32"
    assert v["runtime"].startswith("openvino ") and v["runtime"].endswith(" f32")
    assert record["precision"] == "fp32"
    d = record["details"]
    assert d["weight_compression"] == "none" and d["weight_compression_requested"] == "auto"
    assert d["inputs"][0]["shape"] == "[?,3,32,32]"


def test_fp32_weights_are_stored_as_float32(cnn_fp32: Any, examples: ModuleType) -> None:
    out, _ = cnn_fp32
    params = sum(p.numel() for p in examples.small_cnn().parameters())
    # conv + linear weights in float32; batch norm is folded, so the file is a little under 4 bytes/parameter
    assert (out / "model.bin").stat().st_size > 3.5 * params
    ir = ov.Core().read_model(str(out / "model.xml"))
    consts = {op.get_element_type().get_type_name() for op in ir.get_ordered_ops() if op.get_type_name() == "Constant"}
    assert "f16" not in consts


def test_fp32_validation_needs_the_f32_hint_on_a_bf16_cpu(cnn_fp32: Any) -> None:
    """The trap the plugin avoids: compiled with OpenVINO's defaults, this CPU runs bf16 and misses fp32 tolerance."""
    out, _ = cnn_fp32
    core = ov.Core()
    if core.get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name() == "f32":
        pytest.skip("this CPU's OpenVINO default is already f32 (no bf16 support)")
    ref = load_reference(out / REFERENCE_FILE, ["input"], 1)
    x, expected = ref.inputs[-1]["input"], ref.outputs[-1][0]
    default = core.compile_model(str(out / "model.xml"), "CPU")
    drift = float(np.abs(default(x)[0] - expected).max())
    runner = OpenVINOFormat().load_runner(artifact_from_dir(out), {"threads": None})
    exact = float(np.abs(runner({"input": x})[0] - expected).max())
    print(f"\nsmall_cnn batch {x.shape[0]}: OpenVINO default hint max abs diff {drift:.2e}, f32 hint {exact:.2e}")
    assert drift > FP32_ATOL
    assert exact <= FP32_ATOL


def test_metadata_has_version_precision_compression_io_and_ops(cnn_fp32: Any) -> None:
    out, _ = cnn_fp32
    md = read_metadata(out)
    o = md["extra_metadata"]["openvino"]
    assert o["openvino_version"] == str(ov.get_version()).split("-")[0]
    assert o["inference_precision"] == "fp32" and o["inference_precision_hint"] == "f32"
    assert o["weight_compression"] == "none"
    assert o["inputs"] == [{"name": "input", "shape": "[?,3,32,32]", "dtype": "f32"}]
    assert o["outputs"] == [{"name": "output", "shape": "[?,10]", "dtype": "f32"}]
    assert o["ops"]["Convolution"] == 3 and o["ops"]["MatMul"] == 1
    assert md["precision"] == "fp32"


def test_inspect_and_validate_from_the_cli(cnn_fp32: Any) -> None:
    out, _ = cnn_fp32
    proc = run_cli("inspect", str(out / "model.xml"), "--json")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert '"Convolution"' in text and '"inference_precision_hint": "f32"' in text
    again = run_cli("validate", str(out))
    assert again.returncode == 0, again.stderr + again.stdout


def test_runner_honours_threads(cnn_fp32: Any) -> None:
    out, _ = cnn_fp32
    runner = OpenVINOFormat().load_runner(artifact_from_dir(out), {"threads": 1})
    assert runner.compiled.get_property("INFERENCE_NUM_THREADS") == 1
    assert runner.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"


def test_performance_hint_is_recorded_and_compiled_the_same_way_on_reload(cnn_fp32: Any, tmp_path: Path) -> None:
    out, _ = cnn_fp32
    art = artifact_from_dir(out)
    assert art.options["performance_hint"] == "latency"  # the default, recorded
    assert OpenVINOFormat().load_runner(art, {}).compiled.get_property("PERFORMANCE_HINT") == "LATENCY"
    # modelport optimize tries another value on the same file through load_runner's options
    tried = OpenVINOFormat().load_runner(art, {"performance_hint": "throughput"})
    assert tried.compiled.get_property("PERFORMANCE_HINT") == "THROUGHPUT"
    thr = tmp_path / "thr"
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "-f", "openvino", "-o",
                   "performance_hint=throughput", "--output-dir", str(thr))
    assert proc.returncode == 0, proc.stderr
    assert read_record(thr)["options"]["performance_hint"] == "throughput"
    runner = OpenVINOFormat().load_runner(artifact_from_dir(thr), {"threads": 1})  # as validate and bench load it
    assert runner.compiled.get_property("PERFORMANCE_HINT") == "THROUGHPUT"
    bad = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "-f", "openvino", "-o",
                  "performance_hint=fast", "--output-dir", str(tmp_path / "bad"))
    assert bad.returncode == 3 and "performance_hint" in bad.stderr  # a bad -o value: configuration error


def test_optimize_tries_each_performance_hint_on_one_export() -> None:
    from modelport.commands.optimize import candidate_grid

    labels = [c.label for c in candidate_grid(modelport.get_plugin_manager(), ["openvino"], [1])]
    assert "openvino[precision=fp32,int8=True,calibration_size=32,performance_hint=throughput]@1t" in labels
    assert "openvino[precision=fp32,int8=True,calibration_size=512,performance_hint=latency]@1t" in labels
    assert "openvino[precision=fp32,int8=False,performance_hint=latency]@1t" in labels  # no calibration size: no int8
    spec = modelport.get_plugin_manager().require_format("openvino")
    assert [o.name for o in spec.options if o.runtime] == ["performance_hint"]  # reloads only, no re-export


# ----------------------------------------------------------------------------- the bundled transformer


def test_transformer_fp32_exports_with_dynamic_batch_and_named_outputs(tmp_path: Path) -> None:
    out = tmp_path / "ov"
    proc = run_cli("export", f"{EXAMPLES}:small_transformer", "--text", "16", "--dynamic-batch", "-f", "openvino",
                   "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    record = read_record(out)
    v = record["validation"]
    assert v["status"] == "passed" and {1, 8} <= set(v["batch_sizes"])
    assert v["max_abs_diff"] <= FP32_ATOL
    ir = ov.Core().read_model(str(out / "model.xml"))
    assert [p.get_any_name() for p in ir.inputs] == ["input_ids", "attention_mask"]
    assert [p.get_any_name() for p in ir.outputs] == ["last_hidden_state", "pooler_output"]
    assert [str(p.get_partial_shape()) for p in ir.outputs] == ["[?,16,64]", "[?,64]"]


def test_transformer_bf16_validates_at_the_bf16_tolerance(examples: ModuleType, tmp_path: Path) -> None:
    r = modelport.export(examples.small_transformer(), ["openvino"], modelport.text(16, dynamic_batch=True),
                         output_dir=tmp_path / "ov", options=["precision=bf16"])["openvino"]
    assert r.exit_code == 0, r.error
    assert r.artifact.precision == "bf16"
    assert r.validation.passed and r.validation.precision == "bf16"
    assert {1, 8} <= set(r.validation.batch_sizes)
    assert r.validation.atol == 6e-2
    assert r.record["details"]["weight_compression"] == "fp16"
    if _cpu_has("BF16"):
        assert r.record["validation"]["checks"]["inference_precision_hint"] == "bf16"
        assert r.validation.max_abs_diff > 0  # it really ran in bf16


def test_explicit_fp16_weights_for_an_fp32_export(examples: ModuleType, tmp_path: Path, cnn_fp32: Any) -> None:
    r = modelport.export(examples.small_cnn(), ["openvino"], modelport.vision(3, 32, 32, dynamic_batch=True),
                         output_dir=tmp_path / "ov", options=["compress_weights=fp16"])["openvino"]
    assert r.exit_code == 0, r.error
    assert r.record["details"]["weight_compression"] == "fp16"
    assert r.metadata["extra_metadata"]["openvino"]["weight_compression"] == "fp16"
    fp32_bin = (cnn_fp32[0] / "model.bin").stat().st_size
    assert (r.path / "model.bin").stat().st_size < 0.6 * fp32_bin


# ----------------------------------------------------------------------------- int8


def test_int8_without_calibration_data_is_refused_with_exit_3(tmp_path: Path) -> None:
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "-f", "openvino", "-o", "int8=true",
                   "--output-dir", str(tmp_path / "ov"))
    assert proc.returncode == 3, proc.stderr
    assert "--sample-inputs" in proc.stderr and "allow_random_calibration=true" in proc.stderr
    assert not (tmp_path / "ov" / "model.xml").exists()


def test_int8_on_random_data_only_when_asked_and_it_says_so(examples: ModuleType, tmp_path: Path) -> None:
    r = modelport.export(examples.small_cnn(), ["openvino"], modelport.vision(3, 32, 32, dynamic_batch=True),
                         output_dir=tmp_path / "ov",
                         options=["int8=true", "allow_random_calibration=true", "calibration_size=16"])["openvino"]
    assert r.exit_code == 0, r.error
    assert r.artifact.precision == "int8" and r.validation.precision == "int8"
    assert any("random inputs" in n for n in r.record["notes"])
    assert r.metadata["quantization"]["calibration"] == {"source": "random", "samples": 16}
    assert r.metadata["extra_metadata"]["openvino"]["ops"].get("FakeQuantize", 0) > 0


# plain torch, written to a .py file by the test so the CLI loads it as file.py:digits_cnn
DIGITS_MODEL = '''
import torch
from torch import nn


class DigitsCNN(nn.Module):
    """A small CNN for scikit-learn's 8x8 digits: input ``image`` N x 1 x 8 x 8 in [0, 1], 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        )
        self.head = nn.Linear(16 * 4 * 4, 10)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(image), 1))


def digits_cnn() -> DigitsCNN:
    return DigitsCNN()
'''


def test_int8_calibrated_on_digits_keeps_top1_within_1_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # N x 1 x 8 x 8 in [0, 1]
    x_train, x_test, y_train, y_test = train_test_split(images, digits.target, test_size=0.3, random_state=0,
                                                        stratify=digits.target)
    model_file = tmp_path / "digits_model.py"
    model_file.write_text(DIGITS_MODEL)
    torch.manual_seed(0)  # the initial weights and the batch order
    model = load_module(model_file, "digits_model_under_test").digits_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    model.train()
    for _ in range(4):  # a few seconds on 2 cores
        for idx in torch.randperm(len(xt)).split(32):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    torch.save(model.state_dict(), tmp_path / "digits.pt")
    np.savez(tmp_path / "calibration.npz", image=x_train[:300])
    with torch.no_grad():
        torch_acc = float((model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean())

    out = tmp_path / "ov"
    proc = run_cli("export", f"{model_file}:digits_cnn", "--checkpoint", str(tmp_path / "digits.pt"),
                   "--sample-inputs", str(tmp_path / "calibration.npz"), "--dynamic-batch", "--task", "classification",
                   "-f", "openvino", "-o", "int8=true", "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    md = read_metadata(out)
    assert md["precision"] == "int8"
    assert md["quantization"]["calibration"] == {"source": "sample_inputs", "samples": 300}
    assert md["extra_metadata"]["openvino"]["ops"].get("FakeQuantize", 0) >= 3

    runner = OpenVINOFormat().load_runner(artifact_from_dir(out), {"threads": None})
    int8_logits = runner({"image": x_test})[0]
    int8_acc = float((int8_logits.argmax(1) == y_test).mean())
    with capsys.disabled():
        print(f"\ndigits held-out top-1 ({len(y_test)} images): PyTorch fp32 {torch_acc:.2%}, "
              f"OpenVINO int8 {int8_acc:.2%}, difference {100 * (int8_acc - torch_acc):+.2f} points")
    assert torch_acc >= 0.90, "the CNN did not learn the digits; the comparison would mean nothing"
    assert abs(int8_acc - torch_acc) <= 0.01


# ----------------------------------------------------------------------------- outputs and devices


class NestedOutputs(nn.Module):
    """A tuple holding a dict with unsorted keys: the core flattens it to output.0, output.1.zeta, output.1.alpha."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 4)
        self.b = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.a(x), {"zeta": self.b(x), "alpha": x.sum(-1)}


def test_outputs_come_back_in_the_core_flattened_order(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = NestedOutputs().eval()
    spec = modelport.InputSpec([modelport.TensorSpec("x", (2, 8), dynamic={0: "batch"})])
    r = modelport.export(model, ["openvino"], spec, output_dir=tmp_path / "ov")["openvino"]
    assert r.exit_code == 0, r.error
    assert r.record["outputs"] == ["output.0", "output.1.zeta", "output.1.alpha"]
    runner = OpenVINOFormat().load_runner(artifact_from_dir(r.path), {"threads": None})
    x = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)
    got = runner({"x": x})
    with torch.no_grad():
        a, rest = model(torch.from_numpy(x))
    for g, e in zip(got, [a, rest["zeta"], rest["alpha"]], strict=True):
        assert g.shape == tuple(e.shape)
        np.testing.assert_allclose(g, e.numpy(), atol=1e-5)


def test_a_device_missing_here_leaves_the_export_unvalidated_with_the_reason(examples: ModuleType, tmp_path: Path) -> None:
    if any(d.startswith("NPU") for d in ov.Core().available_devices):
        pytest.skip("this machine has an NPU")
    r = modelport.export(examples.small_cnn(), ["openvino"], modelport.vision(3, 32, 32),
                         output_dir=tmp_path / "ov", options=["device=NPU"])["openvino"]
    assert r.status == "skipped", r.error
    assert "NPU is not available here" in r.validation_note
    assert r.record["details"]["device"] == "NPU"

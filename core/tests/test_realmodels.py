"""Real-model correctness (issue 14 A1, A2, A4; issue 18 item 4) through the built-in pt2 format.

Inputs reach forward's parameters by name, every format exports from a pristine copy of the model, and a
comparison of empty, zero or input-independent outputs is ``inconclusive``, never ``passed``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import modelport
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from modelport import Artifact, FormatSpec, hookimpl
from modelport.cli import main
from modelport.engine.compare import PROFILES, compare_outputs
from modelport.engine.inputs import InputSpec, TensorSpec
from modelport.plugins import PluginHost
from modelport.testing.models import REFERENCE_MODELS, tiny_decoder
from torch import nn


def _cli(*args: str) -> Any:
    """The real CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False, standalone_mode=True)


def _decoder_spec(batch: int = 2) -> InputSpec:
    return InputSpec([TensorSpec("input_ids", (batch, 8), "int64", low=0, high=100),
                      TensorSpec("position_ids", (batch, 8), "int64", low=0, high=8)])


# ----------------------------------------------------------------------------- A1: inputs bound by name


def test_inputs_reach_the_parameters_of_their_names(tmp_path: Path) -> None:
    """position_ids must not land in attention_mask's slot, in the reference run or in the artifact."""
    model = tiny_decoder()
    result = modelport.export(model, ["pt2"], _decoder_spec(), output_dir=tmp_path / "d", force=True)
    r = result["pt2"]
    assert r.status == "passed", r.error
    record = json.loads((r.path / "export.json").read_text())
    assert record["binding"]["inputs"] == {"input_ids": "keyword", "position_ids": "keyword"}
    assert list(r.metadata["input_shape"]) == ["input_ids", "position_ids"]

    with np.load(r.path / "reference.npz") as ref:
        ids, pos, expected = ref["0/in/input_ids"], ref["0/in/position_ids"], ref["0/out/0"]
    t_ids, t_pos = torch.from_numpy(ids), torch.from_numpy(pos)
    with torch.no_grad():
        by_name = model(input_ids=t_ids, position_ids=t_pos).numpy()
        by_position = model(t_ids, t_pos).numpy()  # the old, wrong call: position_ids as the attention mask
        exported = torch.export.load(str(r.path / "model.pt2")).module()(t_ids, t_pos).numpy()
    assert not np.allclose(by_name, by_position)
    np.testing.assert_allclose(expected, by_name, atol=1e-6)
    np.testing.assert_allclose(exported, by_name, atol=1e-5)


class EncoderDecoder(nn.Module):
    """T5-shaped forward: the decoder ids come after an optional mask."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.head = nn.Linear(8, 50)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                decoder_input_ids: torch.Tensor | None = None) -> torch.Tensor:
        if decoder_input_ids is None:
            raise ValueError("decoder_input_ids is required")
        memory = self.embed(input_ids).mean(1, keepdim=True)
        return self.head(self.embed(decoder_input_ids) + memory)


def test_encoder_decoder_gets_its_decoder_input_ids(tmp_path: Path) -> None:
    spec = InputSpec([TensorSpec("input_ids", (1, 6), "int64", low=0, high=50),
                      TensorSpec("decoder_input_ids", (1, 4), "int64", low=0, high=50)]).with_dynamic_batch()
    r = modelport.export(EncoderDecoder().eval(), ["pt2"], spec, output_dir=tmp_path / "ed", force=True)["pt2"]
    assert r.status == "passed", r.error
    assert r.metadata["output_shape"]["output"] == ["batch", 4, 50]


def test_unknown_input_name_is_refused_with_the_accepted_names(tmp_path: Path) -> None:
    res = _cli("export", "modelport.testing.models:tiny_decoder", "--input", "input_ids:1x8:int64:0,100",
               "--input", "pos_ids:1x8:int64:0,8", "-f", "pt2", "--output-dir", str(tmp_path / "x"))
    assert res.exit_code == 3
    line = res.stderr.strip()
    assert line.startswith("error:") and "\n" not in line and "Traceback" not in res.stderr
    assert "'pos_ids'" in line and "input_ids, attention_mask, position_ids" in line
    assert not (tmp_path / "x").exists()


def test_unnamed_inputs_go_by_position(tmp_path: Path) -> None:
    """A preset's name ("input" from --vision) names no parameter: the input goes to forward's first one."""
    ref = REFERENCE_MODELS["mlp"]  # forward(self, x)
    spec = InputSpec([TensorSpec("features", (1, 8))])
    r = modelport.export(ref.build(), ["pt2"], spec, output_dir=tmp_path / "u", force=True)["pt2"]
    assert r.status == "passed", r.error
    assert r.record["binding"]["inputs"] == {"features": "positional #0"}
    assert "features -> x" in r.record["binding"]["notes"][0]


def test_missing_required_parameter_is_a_configuration_error(tmp_path: Path) -> None:
    res = _cli("export", "modelport.testing.models:tiny_attention", "--input", "attention_mask:1x8:int64",
               "-f", "pt2", "--output-dir", str(tmp_path / "x"))
    assert res.exit_code == 3
    assert "input_ids" in res.stderr and "--input" in res.stderr


# ----------------------------------------------------------------------------- issue 18 item 4: *args, **kwargs


def test_star_args_wrapper_exports_to_pt2_with_a_dynamic_batch(tmp_path: Path) -> None:
    ref = REFERENCE_MODELS["wrapper"]
    r = modelport.export(ref.build(), ["pt2"], ref.inputs(dynamic_batch=True), output_dir=tmp_path / "w",
                         force=True)["pt2"]
    assert r.status == "passed", r.error
    assert {1, 4, 8}.issubset(r.validation.batch_sizes)
    assert r.record["binding"]["inputs"] == {"x": "positional #0"}


# ----------------------------------------------------------------------------- A2: pristine copies


class CachingHead(nn.Module):
    """A detection-head-like model that records its calls and caches the last input's shape (as YOLO heads do)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 3)
        self.calls: list[tuple[int, ...]] = []
        self.cached_shape: tuple[int, ...] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape))
        self.cached_shape = tuple(x.shape)
        return self.proj(x)


class _Recorder:
    """Two formats whose export notes what state the model they were handed was in, then runs it (as tracing does)."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, Any]] = {}

    @hookimpl
    def register_formats(self, register: Any) -> None:
        for name in ("probe_a", "probe_b"):
            register(FormatSpec(name=name, display_name=name, files=("model.txt",)))

    @hookimpl
    def export(self, request: Any) -> Artifact | None:
        if request.format not in ("probe_a", "probe_b"):
            return None
        model = request.model
        self.seen[request.format] = {"calls": list(model.calls), "cached": model.cached_shape, "id": id(model)}
        with torch.no_grad():
            model(*request.example_inputs)  # a converter traces the model
        path = request.workdir / "model.txt"
        path.write_text("probe")
        return Artifact(format=request.format, path=path)


def test_each_format_exports_from_a_model_that_has_never_run(tmp_path: Path) -> None:
    host = PluginHost(load_entry_points=False)
    recorder = _Recorder()
    host.pm.register(recorder, name="recorder")
    model = CachingHead().eval()
    spec = InputSpec([TensorSpec("x", (2, 4))]).with_dynamic_batch()
    result = modelport.export(model, ["probe_a", "probe_b"], spec, output_dir=tmp_path / "p", validate=True,
                              host=host, force=True)
    assert set(result) == {"probe_a", "probe_b"}
    # the reference run (batches 2, 4, 8) used the caller's model...
    assert (8, 4) in model.calls
    # ...while every format got its own copy, never run before, not even by the format exported before it
    for fmt in ("probe_a", "probe_b"):
        assert recorder.seen[fmt]["calls"] == [], fmt
        assert recorder.seen[fmt]["cached"] is None, fmt
        assert recorder.seen[fmt]["id"] != id(model)
    assert recorder.seen["probe_a"]["id"] != recorder.seen["probe_b"]["id"]


def test_pristine_copies_share_the_weights() -> None:
    from modelport.engine.binding import pristine_copy

    model = CachingHead()
    copy, why = pristine_copy(model)
    assert why is None and copy is not model
    assert copy.proj.weight is model.proj.weight  # no second copy of the weights in memory
    model(torch.zeros(1, 4))
    assert copy.calls == [] and copy.cached_shape is None


# ----------------------------------------------------------------------------- A4: inconclusive


class ZeroHead(nn.Module):
    """A zero-initialised head (weights and bias zero): all-zero output whatever the input."""

    def __init__(self, bias: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Linear(6, 6)
        self.head = nn.Linear(6, 3)
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.body(x), self.head(torch.relu(self.body(x)))


class NoDetections(nn.Module):
    """A detector that finds nothing on random inputs: an empty [B, 0, 6] detection tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        y = self.conv(image).flatten(2).transpose(1, 2)
        return y[:, :0]


@pytest.mark.parametrize(("bias", "why"), [(0.0, "all zero"), (0.5, "does not depend on the input")])
def test_zero_or_constant_head_is_inconclusive_not_passed(tmp_path: Path, bias: float, why: str) -> None:
    spec = InputSpec([TensorSpec("x", (2, 6))])
    r = modelport.export(ZeroHead(bias).eval(), ["pt2"], spec, output_dir=tmp_path / "z", force=True)["pt2"]
    assert r.status == "inconclusive"
    assert r.exit_code == 2
    assert "output.1" in r.error and why in r.error and "--sample-inputs" in r.error
    assert "output.0" not in r.error.split("—")[0]  # the informative output is not blamed
    assert r.path is not None and (r.path / "model.pt2").is_file()  # written, as for a failed validation
    md = json.loads((r.path / "metadata.json").read_text())
    assert md["validation"]["status"] == "inconclusive"
    record = json.loads((r.path / "export.json").read_text())
    assert record["status"] == "validation-inconclusive" and record["exit_code"] == 2

    allowed = modelport.export(ZeroHead(bias).eval(), ["pt2"], spec, output_dir=tmp_path / "z2", force=True,
                               allow_inconclusive=True)["pt2"]
    assert allowed.status == "inconclusive" and allowed.exit_code == 0 and allowed.error is None


def test_empty_detections_are_inconclusive_through_the_cli(tmp_path: Path) -> None:
    src = tmp_path / "det.py"
    src.write_text(
        "import torch\nfrom torch import nn\n\n"
        "class NoDetections(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.conv = nn.Conv2d(3, 6, 3)\n\n"
        "    def forward(self, image):\n"
        "        return self.conv(image).flatten(2).transpose(1, 2)[:, :0]\n\n"
        "def build():\n    return NoDetections()\n"
    )
    out = tmp_path / "o"
    res = _cli("export", f"{src}:build", "--vision", "3x8x8", "-f", "pt2", "--output-dir", str(out))
    assert res.exit_code == 2, res.stderr
    assert "inconclusive" in res.stderr and "output: empty in every input set" in res.stderr
    assert "--sample-inputs" in res.stderr
    res = _cli("validate", str(out))
    assert res.exit_code == 2 and "inconclusive" in res.stdout
    res = _cli("validate", str(out), "--allow-inconclusive")
    assert res.exit_code == 0
    res = _cli("export", f"{src}:build", "--vision", "3x8x8", "-f", "pt2", "--output-dir", str(out), "--force",
               "--allow-inconclusive", "-q")
    assert res.exit_code == 0, res.stderr


def test_cosine_of_two_zero_vectors_is_undefined_not_one() -> None:
    zeros = [[np.zeros((2, 3), np.float32)]]
    comp = compare_outputs(zeros, zeros, ["out"], PROFILES["fp32"])
    assert comp.outputs[0].cosine is None
    int8 = compare_outputs(zeros, zeros, ["out"], PROFILES["int8"])  # cosine is int8's only rule
    assert not int8.passed


def test_tiny_outputs_are_flagged(tmp_path: Path) -> None:
    class Tiny(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 1e-9

    r = modelport.export(Tiny(), ["pt2"], InputSpec([TensorSpec("x", (1, 5))]), output_dir=tmp_path / "t",
                         force=True)["pt2"]
    assert r.status == "passed"
    assert any("far below atol" in line for line in r.record["validation"]["checks"]["tiny_outputs"])


def test_real_outputs_still_pass(tmp_path: Path) -> None:
    ref = REFERENCE_MODELS["cnn"]
    r = modelport.export(ref.build(), ["pt2"], ref.inputs(), output_dir=tmp_path / "c", force=True)["pt2"]
    assert r.status == "passed" and r.exit_code == 0
    assert "vacuous_outputs" not in r.record["validation"]["checks"]


# ----------------------------------------------------------------------------- A7: actionable converter errors


def test_specialised_batch_names_the_guard_and_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "spec_model.py"
    src.write_text(
        "import torch\nfrom torch import nn\n\n"
        "class Specialises(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.lin = nn.Linear(6, 6)\n\n"
        "    def forward(self, x):\n"
        "        y = self.lin(x)\n"
        "        if y.shape[0] == 2:\n"
        "            return y * 2\n"
        "        return y\n\n"
        "def build():\n    return Specialises()\n"
    )
    res = _cli("export", f"{src}:build", "--input", "x:1x6", "--dynamic-batch", "-f", "pt2", "--output-dir",
               str(tmp_path / "o"), "-q")
    assert res.exit_code == 1
    line = res.stderr.strip()
    assert "\n" not in line and "Traceback" not in res.stderr
    assert "specialized it to be a constant (2)" in line
    assert "spec_model.py:11 in forward" in line  # the user's `if y.shape[0] == 2:`
    args = ["--debug", "export", f"{src}:build", "--input", "x:1x6", "--dynamic-batch", "-f", "pt2", "--output-dir",
            str(tmp_path / "o"), "-q"]
    monkeypatch.setattr("sys.argv", ["modelport", *args])  # the CLI reads --debug from the process's arguments
    res = _cli(*args)
    assert "Suggested fixes" in res.stderr  # the converter's full text, with --debug

"""``modelport debug`` on TensorRT, up to the runtime call: sub-ONNX per module, then the engine build needs a GPU."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from modelport import Artifact, ConfigError, missing_modules
from modelport.commands.debug import run_torch
from modelport.engine.pipeline import call_hook
from modelport.plugins import get_plugin_manager
from modelport.testing import debug as testing_debug


def test_each_module_becomes_its_own_onnx_then_the_build_says_what_is_missing(tmp_path: Path) -> None:
    model = testing_debug.branchy()
    run = run_torch(model, testing_debug.inputs().make_torch(), keep={"gate"}, keep_inputs={"gate"})
    artifact = Artifact(format="tensorrt", path=tmp_path / "model.engine", precision="fp16",
                        options={"fp16": True})
    runner = call_hook(get_plugin_manager(), "tensorrt", "load_intermediates", artifact=artifact,
                       options={"model": model, "modules": {c.module: c.cls for c in run.calls}})
    assert runner.mode == "per-module" and runner.fp16 and "gate" in runner.taps
    args, kwargs = run.inputs["gate"]
    sub = runner.sub_onnx("gate", args, kwargs, tmp_path)
    graph = onnx.load(str(sub)).graph
    assert [i.name for i in graph.input] == ["input_0"] and len(graph.output) == 1
    if missing_modules("tensorrt"):
        with pytest.raises(ConfigError, match="needs TensorRT and a CUDA device"):
            runner.run({}, ["gate"], run.inputs)

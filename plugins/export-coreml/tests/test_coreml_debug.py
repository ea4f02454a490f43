"""``modelport debug`` on Core ML: each module converted alone; prediction (the runtime call) needs macOS."""

from __future__ import annotations

import sys
from pathlib import Path

import modelport
import pytest
from modelport import ConfigError
from modelport.commands.debug import run_torch
from modelport.engine.pipeline import artifact_from_dir, call_hook
from modelport.plugins import get_plugin_manager
from modelport.testing import debug as testing_debug


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the path up to prediction, which runs on macOS")
def test_modules_convert_and_prediction_says_it_needs_macos(tmp_path: Path) -> None:
    model = testing_debug._seed(testing_debug.Block())
    modelport.export(model, ["coreml"], testing_debug.inputs(), output_dir=tmp_path / "ml")
    artifact = artifact_from_dir(tmp_path / "ml")
    spec = testing_debug.inputs()
    run = run_torch(model, spec.make_torch(), keep={"fc"}, keep_inputs={"fc"})
    runner = call_hook(get_plugin_manager(), "coreml", "load_intermediates", artifact=artifact,
                       options={"model": model, "modules": {c.module: c.cls for c in run.calls}})
    assert runner.mode == "per-module" and set(runner.taps) == {"fc", "act"}
    args, kwargs = run.inputs["fc"]
    converted = runner.convert("fc", args, kwargs)  # everything before the runtime call runs here
    assert len(converted.get_spec().description.input) == 1
    with pytest.raises(ConfigError, match="needs macOS"):
        runner.run({}, ["fc"], run.inputs)
    with pytest.raises(ConfigError, match="needs macOS"):  # the whole command: one clear line, exit 3
        modelport.debug(tmp_path / "ml", model)

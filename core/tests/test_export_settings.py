"""Export settings are one typed object: the CLI's flags and the API's keywords build the same ExportSettings,
so a new setting is one field in modelport.engine.settings and reaches both."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from modelport.cli.app import export as export_command
from modelport.engine.settings import ExportSettings, from_flags, from_keywords

# a non-default value for every setting that is a flag: (CLI arguments, API keyword value)
_FLAGGED: dict[str, tuple[list[str], Any]] = {
    "output_dir": (["--output-dir", "out/x"], "out/x"),
    "exports_root": (["--exports-root", "exports"], "exports"),
    "validate": (["--no-validate"], False),
    "allow_inconclusive": (["--allow-inconclusive"], True),
    "force": (["--force"], True),
    "atol": (["--atol", "0.001"], 0.001),
    "rtol": (["--rtol", "0.02"], 0.02),
    "threads": (["--threads", "2"], 2),
    "jobs": (["--jobs", "2"], 2),
    "executor": (["--executor", "ray"], "ray"),
}


def _from_cli(args: list[str]) -> ExportSettings:
    ctx = export_command.make_context("export", ["m.py:f", "-f", "onnx", *args])  # click parses, nothing runs
    return from_flags(ctx.params)


def test_every_flagged_setting_is_covered_here() -> None:
    """A field with a CLI flag that this table misses fails here, so the round trip below covers every one."""
    flagged = {f.name for f in dataclasses.fields(ExportSettings) if "cli" in f.metadata}
    assert flagged == set(_FLAGGED)


@pytest.mark.parametrize("name", sorted(_FLAGGED))
def test_a_flag_and_its_keyword_build_the_same_settings(name: str) -> None:
    """``modelport export --atol 0.001`` and ``export(..., atol=0.001)`` ask for the same export."""
    args, value = _FLAGGED[name]
    from_api, _info = from_keywords({name: value})
    assert _from_cli(args) == from_api
    assert getattr(from_api, name) == value != getattr(ExportSettings(), name)


def test_all_flags_together_and_no_flags() -> None:
    every = [a for args, _ in _FLAGGED.values() for a in args]
    assert _from_cli(every) == from_keywords({k: v for k, (_, v) in _FLAGGED.items()})[0]
    assert _from_cli([]) == ExportSettings() == from_keywords({})[0]


def test_an_unknown_keyword_is_a_type_error_naming_it() -> None:
    from modelport.engine.pipeline import export

    with pytest.raises(TypeError, match="'atoll'"):
        export(object(), ["pt2"], None, atoll=1e-3)  # type: ignore[arg-type]


def test_settings_object_reaches_the_export_and_keywords_override_it(tmp_path: Path) -> None:
    """``modelport.export(settings=...)`` drives the engine (here: where it writes); a keyword given beside it
    wins (here: validation turned off)."""
    import modelport
    import torch
    from modelport.engine.inputs import InputSpec, TensorSpec

    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU())
    spec = InputSpec([TensorSpec("x", (1, 8), "float32")])
    settings = ExportSettings(output_dir=tmp_path / "out", validate=True)
    result = modelport.export(model, ["pt2"], spec, settings=settings, validate=False, model_name="tiny")
    assert result["pt2"].status == "not-validated", result["pt2"].error
    assert result["pt2"].path == tmp_path / "out"
    assert result["pt2"].record["model_name"] == "tiny"
    assert result["pt2"].record["validation"]["status"] == "not-validated"

"""``modelport debug`` in the core: the module mapping, the bounded search, the pt2 format, the CLI and trust."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import modelport
import pytest
import torch
from click.testing import CliRunner
from modelport import hookimpl
from modelport.cli import main
from modelport.commands.debug import debug_export, module_boundaries, run_torch
from modelport.plugins import PluginHost
from modelport.plugins.types import GraphNode
from modelport.testing import debug as testing_debug


def test_module_boundaries_take_the_last_tensor_read_outside_each_module() -> None:
    nodes = [
        GraphNode("stem", ["x"], ["s1"]),
        GraphNode("stem", ["s1"], ["s2"]),          # stem's output: read by blocks.0.fc
        GraphNode("blocks.0.fc", ["s2"], ["f"]),
        GraphNode("blocks.0.act", ["f"], ["a"]),
        GraphNode("blocks.0", ["s2", "a"], ["b0"]),  # the residual add belongs to blocks.0 itself
        GraphNode(None, ["b0"], ["c"]),               # a cast a rewrite added: no module
        GraphNode("head", ["c"], ["y"]),
    ]
    taps = module_boundaries(nodes, ["y"])
    assert taps == {"stem": "s2", "blocks": "b0", "blocks.0": "b0", "blocks.0.fc": "f", "blocks.0.act": "a",
                    "head": "y"}


class _BrokenAt:
    """A fake runtime for pt2 artifacts: PyTorch itself, with one module's output scaled by 1.5 — every later tensor moves.

    Stands in for a runtime that computes one module wrongly, so the search can be checked on a deep model
    without a slow converter; it records how many boundaries each run exposed.
    """

    mode = "end-to-end"
    runtime = "fake"

    def __init__(self, model: Any, culprit: str) -> None:
        self.model = model
        self.culprit = culprit
        self.taps = {name: name for name, _ in model.named_modules() if name}
        self.unavailable: dict[str, str] = {}
        self.exposed_per_run: list[int] = []

    def run(self, inputs: Any, modules: Any, module_inputs: Any = None) -> dict[str, Any]:
        self.exposed_per_run.append(len(modules))
        found: dict[str, Any] = {}
        handles = []
        for name, mod in self.model.named_modules():
            def hook(_m: Any, _a: Any, out: Any, name: str = name) -> Any:
                if name == self.culprit:
                    out = out * 1.5
                if name in modules:
                    found[name] = out.detach().numpy().copy()
                return out
            handles.append(mod.register_forward_hook(hook))
        try:
            with torch.no_grad():
                self.model(torch.from_numpy(inputs["x"]))
        finally:
            for h in handles:
                h.remove()
        return found


class _FakePlugin:
    def __init__(self, runner: _BrokenAt) -> None:
        self.runner = runner

    @hookimpl
    def load_intermediates(self, artifact: Any, options: Any) -> Any:
        return self.runner if artifact.format == "pt2" else None


@pytest.fixture(scope="module")
def deep_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    model = testing_debug.WideMLP(8, stages=6, per_stage=10).eval()
    out = tmp_path_factory.mktemp("deep") / "pt2"
    modelport.export(model, ["pt2"], testing_debug.inputs(width=8), output_dir=out, validate=False,
                     host=PluginHost(load_entry_points=False))
    return out, model


def test_bisection_names_a_deep_module_exposing_a_bounded_set_per_run(deep_export: tuple[Path, Any]) -> None:
    out, model = deep_export
    host = PluginHost(load_entry_points=False)
    culprit = "stages.3.7.fc"
    runner = _BrokenAt(model, culprit)
    host.pm.register(_FakePlugin(runner), name="broken-runtime")
    report = debug_export(out, model, max_probes=8, host=host)
    calls = run_torch(model, testing_debug.inputs(width=8).make_torch()).calls
    assert len(calls) > 150  # deep enough that exposing everything at once is what the bound prevents
    assert report.named_module == culprit
    assert report.first_over_tolerance == culprit
    assert max(runner.exposed_per_run) <= 8
    assert report.rounds == len(runner.exposed_per_run) <= 6
    # descended through the stage and the block; nothing inside the stages before the culprit's was run
    probed = {r.module for r in report.rows if r.status in ("ok", "over tolerance")}
    assert {"stages.3", "stages.3.7"} <= probed
    assert not any(m.startswith("stages.1.") for m in probed)
    assert report.peak_rss_bytes > 0 and report.probe_bytes_max > 0
    assert report.exit_code == 2


def test_pt2_artifact_agrees_module_by_module(tmp_path: Path) -> None:
    model = testing_debug.fp16_overflow()
    result = modelport.export(model, ["pt2"], testing_debug.inputs(), output_dir=tmp_path / "pt2",
                              host=PluginHost(load_entry_points=False))
    assert result["pt2"].status == "passed"
    report = modelport.debug(tmp_path / "pt2", model, host=PluginHost(load_entry_points=False))
    called = [c.module for c in run_torch(model, testing_debug.inputs().make_torch()).calls]
    assert [r.module for r in report.rows] == called
    assert report.exposed_total == len(called) and all(r.status == "ok" for r in report.rows)
    assert report.named_module is None and report.exit_code == 0
    assert report.mode == "end-to-end"
    # a different model than the one exported is said to be one
    other = modelport.debug(tmp_path / "pt2", testing_debug.fp16_overflow(seed=1),
                            host=PluginHost(load_entry_points=False))
    assert any("does not reproduce the outputs recorded" in n for n in other.notes)


@pytest.fixture(scope="module")
def cli_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("cli")
    factory = root / "netdef.py"
    factory.write_text("from modelport.testing.debug import fp16_overflow as build\n")
    ref = f"{factory}:build"
    out = root / "exp"
    res = CliRunner().invoke(main, ["export", ref, "-f", "pt2", "--input", "x:2x16", "--output-dir", str(out), "-q"])
    assert res.exit_code == 0, res.output
    return out, ref


def test_cli_needs_trust_code_to_load_the_recorded_source(cli_export: tuple[Path, str]) -> None:
    out, ref = cli_export
    res = CliRunner().invoke(main, ["debug", str(out)])
    assert res.exit_code == 3
    assert "--trust-code" in res.output and ref in res.output
    assert "Traceback" not in res.output
    res = CliRunner().invoke(main, ["debug", str(out), "--trust-code"])
    assert res.exit_code == 0, res.output
    assert "every exposed module agrees with PyTorch" in res.output
    assert "blocks.1.amp" in res.output


def test_cli_json_and_html_plot(cli_export: tuple[Path, str], tmp_path: Path) -> None:
    out, ref = cli_export
    plot = tmp_path / "err.html"
    res = CliRunner().invoke(main, ["debug", str(out), "--model", ref, "--json", "--plot", str(plot),
                                    "--max-probes", "4"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["format"] == "pt2" and data["exit_code"] == 0 and data["named_module"] is None
    rows = {r["module"]: r for r in data["rows"]}
    # 11 modules, at most 4 per run: the 4 top-level ones agree, so nothing inside them needed running
    assert data["rounds"] == 1
    assert [m for m, r in rows.items() if r["status"] == "ok"] == ["stem", "blocks.0", "blocks.1", "head"]
    assert rows["blocks.1.amp"]["status"] == "not probed" and rows["blocks.1.amp"]["cls"] == "Amplifier"
    html = plot.read_text()
    assert "<svg" in html and "blocks.0" in html


def test_cli_refuses_bad_arguments_with_one_line(cli_export: tuple[Path, str], tmp_path: Path) -> None:
    out, ref = cli_export
    res = CliRunner().invoke(main, ["debug", str(out), "--model", ref, "--input-set", "9"])
    assert res.exit_code == 3 and "--input-set 9" in res.output
    res = CliRunner().invoke(main, ["debug", str(tmp_path / "nowhere"), "--model", ref])
    assert res.exit_code == 3 and "no such export directory" in res.output
    res = CliRunner().invoke(main, ["debug", str(out), "--model", ref, "--plot", str(tmp_path / "x.svg")])
    assert res.exit_code == 3 and ".html or .png" in res.output


def test_png_plot(cli_export: tuple[Path, str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out, ref = cli_export
    plot = tmp_path / "err.png"
    res = CliRunner().invoke(main, ["debug", str(out), "--model", ref, "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_keyword_inputs_reach_forward_by_name(tmp_path: Path) -> None:
    """A decoder given input_ids and position_ids: a positional call would feed position_ids into attention_mask."""
    from modelport.testing.models import REFERENCE_MODELS

    ref = REFERENCE_MODELS["decoder"]
    model = ref.build()
    host = PluginHost(load_entry_points=False)
    modelport.export(model, ["pt2"], ref.inputs(dynamic_batch=False), output_dir=tmp_path / "pt2", host=host)
    report = modelport.debug(tmp_path / "pt2", model, host=host)
    assert report.notes == []  # the model reproduces the recorded outputs: it was called as the export called it
    assert report.exit_code == 0 and {r.module for r in report.rows} == {"embed", "position", "head"}

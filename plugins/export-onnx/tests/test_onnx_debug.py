"""``modelport debug`` on ONNX artifacts: the first diverging module is named through the hierarchy tags."""

from __future__ import annotations

from pathlib import Path

import modelport
import pytest
from click.testing import CliRunner
from modelport.cli import main
from modelport.testing import debug as testing_debug


@pytest.fixture(scope="module")
def fp16_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("fp16")
    (root / "netdef.py").write_text("from modelport.testing.debug import fp16_overflow as build\n")
    ref = f"{root / 'netdef.py'}:build"
    out = root / "onnx"
    res = CliRunner().invoke(main, ["export", ref, "-f", "onnx", "-o", "fp16=true", "--input", "x:2x16",
                                    "--output-dir", str(out), "-q"])
    assert res.exit_code == 2, res.output  # written, validation failed: the symptom debug explains
    return out, ref


def test_fp16_export_names_the_module_that_leaves_the_fp16_range(fp16_export: tuple[Path, str]) -> None:
    out, _ref = fp16_export
    report = modelport.debug(out, testing_debug.fp16_overflow())
    assert report.named_module == "blocks.1.amp" == report.first_over_tolerance
    assert report.precision == "fp16" and report.mode == "end-to-end"
    rows = {r.module: r for r in report.rows}
    before = [r for r in report.rows if r.order < rows["blocks.1.amp"].order]
    assert before and all(r.status == "ok" for r in before)  # everything before it agrees within fp16 tolerance
    assert rows["blocks.1.amp.proj"].status == "ok" and rows["blocks.1.amp.act"].status == "ok"
    assert rows["blocks.1.amp"].rel_error > 0.1 and rows["head"].status == "over tolerance"
    assert report.fastest_growth == "blocks.1.amp"
    assert report.exit_code == 2


def test_validate_debug_on_fail_prints_the_table(fp16_export: tuple[Path, str], tmp_path: Path) -> None:
    out, ref = fp16_export
    res = CliRunner().invoke(main, ["validate", str(out), "--debug-on-fail", "--model", ref])
    assert res.exit_code == 2
    assert "validation failed" in res.output
    assert "the disagreement starts in blocks.1.amp (Amplifier)" in res.output
    assert "first over tolerance" in res.output
    # the record's source only with --trust-code
    res = CliRunner().invoke(main, ["validate", str(out), "--debug-on-fail"])
    assert res.exit_code == 3 and "--trust-code" in res.output
    plot = tmp_path / "err.html"
    res = CliRunner().invoke(main, ["debug", str(out), "--trust-code", "--plot", str(plot)])
    assert res.exit_code == 2 and "the disagreement starts in blocks.1.amp" in plot.read_text()


def test_legacy_trace_names_the_branching_module(tmp_path: Path) -> None:
    model = testing_debug.branchy()
    result = modelport.export(model, ["onnx"], testing_debug.inputs(), output_dir=tmp_path / "onnx",
                              options=["exporter=legacy"])
    assert result["onnx"].status == "failed"  # the traced graph kept one branch
    report = modelport.debug(tmp_path / "onnx", model)
    assert report.named_module == "gate"
    rows = {r.module: r for r in report.rows}
    assert rows["stem"].status == "ok" and rows["gate.fc"].status == "ok"
    assert report.input_set != 0  # the example input took the traced branch; another input set did not


def test_int8_table_shows_where_the_error_enters(tmp_path: Path) -> None:
    model = testing_debug.int8_sensitive()
    result = modelport.export(model, ["onnx"], testing_debug.inputs(), output_dir=tmp_path / "onnx",
                              options=["quantize=dynamic"])
    assert result["onnx"].status == "failed"
    report = modelport.debug(tmp_path / "onnx", model)
    rows = {r.module: r for r in report.rows}
    assert report.precision == "int8" and report.named_module == "sensitive"
    assert rows["stem"].status == "ok" and rows["stem"].cosine > 0.99
    assert rows["sensitive"].cosine < 0.9

"""``modelport debug`` on OpenVINO IR: module outputs found through friendly names, exposed with add_outputs."""

from __future__ import annotations

from pathlib import Path

import modelport
from modelport.testing import debug as testing_debug


def test_traced_branch_is_named(tmp_path: Path) -> None:
    model = testing_debug.branchy()
    result = modelport.export(model, ["openvino"], testing_debug.inputs(), output_dir=tmp_path / "ov")
    assert result["openvino"].status == "failed"  # convert_model traced one branch
    report = modelport.debug(tmp_path / "ov", model)
    assert report.named_module == "gate" and report.mode == "end-to-end"
    rows = {r.module: r for r in report.rows}
    assert rows["stem"].status == "ok" and rows["gate.fc"].status == "ok"
    assert rows["head"].status == "over tolerance"
    assert report.exposed_total == len(rows)


def test_fp16_ir_debug_agrees_with_its_validation(tmp_path: Path) -> None:
    """On a CPU without fp16 arithmetic OpenVINO runs the f16 hint in f32: validation passes, and debug agrees.

    (The weights are still stored in fp16, and the 1e5 gain of ``blocks.1.amp`` is kept in f32 by OpenVINO's
    compression, so nothing leaves the fp16 range here; on fp16 hardware the same table would name it.)
    """
    model = testing_debug.fp16_overflow()
    result = modelport.export(model, ["openvino"], testing_debug.inputs(), output_dir=tmp_path / "ov",
                              options=["precision=fp16"])
    report = modelport.debug(tmp_path / "ov", model)
    assert report.precision == "fp16"
    assert (result["openvino"].status == "passed") == (report.exit_code == 0)
    assert report.exposed_total >= 10

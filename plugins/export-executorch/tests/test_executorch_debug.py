"""``modelport debug`` on ExecuTorch: each module lowered alone with the artifact's backend and run in the runtime."""

from __future__ import annotations

from pathlib import Path

import modelport
from modelport.testing import debug as testing_debug


def test_every_module_agrees_on_a_valid_program(tmp_path: Path) -> None:
    model = testing_debug._seed(testing_debug.Block())
    result = modelport.export(model, ["executorch"], testing_debug.inputs(), output_dir=tmp_path / "et",
                              options=["backend=portable"])  # XNNPACK lowering is ~4x slower; both paths are the same code
    assert result["executorch"].status == "passed"
    report = modelport.debug(tmp_path / "et", model)
    assert report.mode == "per-module"
    assert [(r.module, r.status) for r in report.rows] == [("fc", "ok"), ("act", "ok")]
    assert report.exit_code == 0
    assert any("backend=portable" in n for n in report.notes)

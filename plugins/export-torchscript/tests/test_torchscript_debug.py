"""``modelport debug`` on TorchScript: each archived submodule run on the inputs PyTorch gave that module."""

from __future__ import annotations

from pathlib import Path

import modelport
from modelport.testing import debug as testing_debug


def test_traced_branch_is_named(tmp_path: Path) -> None:
    model = testing_debug.branchy()
    result = modelport.export(model, ["torchscript"], testing_debug.inputs(), output_dir=tmp_path / "ts")
    assert result["torchscript"].status == "failed"  # torch.jit.trace kept the example's branch
    report = modelport.debug(tmp_path / "ts", model)
    assert report.mode == "per-module"
    assert report.named_module == "gate"
    rows = {r.module: r for r in report.rows}
    # per-module: each row is that module's own error, so the head after the gate agrees again
    assert rows["gate"].status == "over tolerance" and rows["head"].status == "ok"
    assert rows["stem"].max_abs_diff == 0.0


def test_optimized_archive_says_it_exposes_nothing(tmp_path: Path) -> None:
    model = testing_debug.branchy()
    modelport.export(model, ["torchscript"], testing_debug.inputs(), output_dir=tmp_path / "ts",
                     options=["optimize_for_inference=true"])
    report = modelport.debug(tmp_path / "ts", model)
    assert report.exposed_total == 0
    assert all(r.status == "not exposed" for r in report.rows)
    assert any("no submodules" in n for n in report.notes)

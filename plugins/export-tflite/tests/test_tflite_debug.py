"""``modelport debug`` on TFLite: preserve-all-tensors mode and litert-torch's module-stack tensor names."""

from __future__ import annotations

from pathlib import Path

import modelport
from modelport.testing import debug as testing_debug
from modelport_tflite.intermediates import resolve


def test_tensor_names_resolve_through_containers() -> None:
    modules = {"stem": "Linear", "blocks.0": "Block", "blocks.0.fc": "Linear", "blocks.1": "Block",
               "blocks.1.fc": "Linear", "out_proj": "Linear"}
    assert resolve("m.Net/m.Block_1/torch.nn.modules.linear.Linear_fc", modules) == "blocks.1.fc"
    assert resolve("m.Net/torch.nn.modules.linear.Linear_out_proj", modules) == "out_proj"
    assert resolve("w.ModelportTFLiteWrapper/m.Net_model/torch.nn.modules.linear.Linear_stem", modules) == "stem"
    assert resolve("w.ModelportTFLiteWrapper/b.ModelportBound_model/m.Net_model/m.Block_0/torch.nn.modules.linear."
                   "Linear_fc", modules) == "blocks.0.fc"  # inputs bound by name: one more wrapper
    assert resolve("m.Net/m.Other_9", modules) is None


def test_int8_table_shows_where_the_error_enters(tmp_path: Path) -> None:
    model = testing_debug.int8_sensitive()
    result = modelport.export(model, ["tflite"], testing_debug.inputs(), output_dir=tmp_path / "tfl",
                              options=["quantize=dynamic_int8"])
    assert result["tflite"].status == "failed"
    report = modelport.debug(tmp_path / "tfl", model)
    assert report.precision == "int8" and report.named_module == "sensitive"
    rows = {r.module: r for r in report.rows}
    assert rows["stem"].status == "ok"
    assert rows["sensitive"].cosine < rows["stem"].cosine

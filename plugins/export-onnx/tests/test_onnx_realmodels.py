"""onnxslim's result is checked against the unsimplified model and reverted when it differs (issue 14 A3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import modelport
import onnxslim
import pytest
from modelport.testing.models import REFERENCE_MODELS
from onnx import TensorProto, helper


def _keeps_first_sample_only(real: Any) -> Any:
    """onnxslim followed by the Mask R-CNN symptom seen in the field: output [N, ...] folded to [1, ...]."""

    def slim(model: Any, *args: Any, **kwargs: Any) -> Any:
        slimmed = real(model, *args, **kwargs)
        out = slimmed.graph.output[0]
        producer = next(n for n in slimmed.graph.node if out.name in n.output)
        producer.output[list(producer.output).index(out.name)] = out.name + "_all"
        for name, value in (("fold_starts", 0), ("fold_ends", 1), ("fold_axes", 0)):
            slimmed.graph.initializer.append(helper.make_tensor(name, TensorProto.INT64, [1], [value]))
        slimmed.graph.node.append(helper.make_node("Slice", [out.name + "_all", "fold_starts", "fold_ends",
                                                             "fold_axes"], [out.name]))
        out.type.tensor_type.ClearField("shape")
        return slimmed

    return slim


def test_simplification_that_changes_results_is_reverted_and_recorded(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ref = REFERENCE_MODELS["cnn"]
    monkeypatch.setattr(onnxslim, "slim", _keeps_first_sample_only(onnxslim.slim))
    r = modelport.export(ref.build(), ["onnx"], ref.inputs(dynamic_batch=True), output_dir=tmp_path / "m",
                         force=True)["onnx"]
    assert r.status == "passed", r.error  # the unsimplified model was kept, and it is right
    simplify = r.record["details"]["simplify"]
    assert simplify["applied"] is False
    assert "output: shape [1, 10] instead of [2, 10]" in simplify["reverted"]
    assert any("onnxslim changed the model's results" in n and "kept the unsimplified model" in n
               for n in r.record["notes"])
    assert r.record["details"]["exporter_check"]["matches_pytorch"] is True


def test_a_faithful_simplification_is_kept(tmp_path: Path) -> None:
    ref = REFERENCE_MODELS["decoder"]
    r = modelport.export(ref.build(), ["onnx"], ref.inputs(dynamic_batch=True), output_dir=tmp_path / "d",
                         force=True)["onnx"]
    assert r.status == "passed", r.error
    simplify = r.record["details"]["simplify"]
    assert simplify["applied"] is True and simplify["check"]["same_results"] is True
    assert simplify["check"]["batches"] == [2, 3]
    assert r.record["binding"]["inputs"] == {"input_ids": "keyword", "position_ids": "keyword"}

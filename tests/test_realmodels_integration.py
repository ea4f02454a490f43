"""Real-model behaviour across plugins (issue 14): transformers' KV cache hint."""

from __future__ import annotations

from pathlib import Path

import modelport
import pytest
from modelport.engine.inputs import InputSpec, TensorSpec
from modelport.errors import ModelLoadError


def test_a_decoder_returning_its_dynamic_cache_gets_an_actionable_hint(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=16, use_cache=True)
    model = transformers.GPT2LMHeadModel(config).eval()
    spec = InputSpec([TensorSpec("input_ids", (1, 6), "int64", low=0, high=50)])
    with pytest.raises(ModelLoadError) as info:
        modelport.export(model, ["pt2"], spec, output_dir=tmp_path / "g", force=True)
    msg = str(info.value)
    assert "DynamicCache" in msg and "use_cache=False" in msg and "past keys/values" in msg
    assert not (tmp_path / "g").exists()

    config.use_cache = False  # what the hint says: the same model exports and validates
    r = modelport.export(transformers.GPT2LMHeadModel(config).eval(), ["pt2"], spec, output_dir=tmp_path / "g2",
                         force=True)["pt2"]
    assert r.status == "passed", r.error

"""hf: checkpoints through the real converters: ONNX and OpenVINO (and the other formats that hold them).

Tiny checkpoints shaped like real ones (BERT, GPT-2, T5, ViT), saved in the test and exported with no --input
flags. The KV-cache decoder is then run as a user runs it — a greedy loop in onnxruntime that feeds each step's
``present.*`` back as ``past_key_values_*`` — and must generate the tokens ``model.generate`` does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("modelport_hf")

from modelport_hf import testing


def _export(*args: str) -> tuple[int, str, str]:
    from click.testing import CliRunner
    from modelport.cli import main

    r = CliRunner().invoke(main, ["export", *args])
    return r.exit_code, r.stdout, r.stderr


def _results(stdout: str) -> dict[str, dict]:
    return json.loads(stdout)["results"]


def _needs(*formats: str) -> None:
    from modelport.plugins import get_plugin_manager

    rows = {r.name: r for r in get_plugin_manager().format_statuses()}
    for f in formats:
        if f not in rows or not rows[f].can_export:
            pytest.skip(f"format {f} is not available here")


def test_bert_classifier_to_onnx_and_openvino_with_real_text(tmp_path: Path) -> None:
    _needs("onnx", "openvino")
    folder = testing.bert(tmp_path / "ckpt", head="sequence")
    code, out, err = _export(f"hf:{folder}", "-f", "onnx,openvino", "--output-dir", str(tmp_path / "o"),
                             "--input-text", "the cat was very good", "--json")
    assert code == 0, err
    results = _results(out)
    for fmt in ("onnx", "openvino"):
        assert results[fmt]["status"] == "passed", results[fmt]
        md = json.loads((tmp_path / "o" / fmt / "metadata.json").read_text())
        assert md["class_names"] == ["negative", "neutral", "positive"]
        assert md["input_shape"]["attention_mask"] == ["batch", "sequence_length"]
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "o" / "onnx" / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask", "token_type_ids"]


def test_gpt2_with_past_in_onnxruntime_generates_what_generate_does(tmp_path: Path) -> None:
    _needs("onnx", "openvino")
    import onnxruntime as ort
    import torch
    from transformers import AutoModelForCausalLM

    folder = testing.gpt2(tmp_path / "ckpt")
    code, out, err = _export(f"hf:{folder}", "-f", "onnx,openvino", "--task", "text-generation-with-past",
                             "--output-dir", str(tmp_path / "o"), "--json")
    assert code == 0, err
    results = _results(out)
    assert sorted(results) == ["decoder/onnx", "decoder/openvino", "decoder_with_past/onnx",
                               "decoder_with_past/openvino"]
    assert all(r["status"] == "passed" for r in results.values()), results
    prefill = ort.InferenceSession(str(tmp_path / "o" / "decoder" / "onnx" / "model.onnx"))
    step = ort.InferenceSession(str(tmp_path / "o" / "decoder_with_past" / "onnx" / "model.onnx"))
    ids = np.array([[9, 15, 16, 17, 18]], np.int64)
    mask = np.ones_like(ids)
    names = [o.name for o in prefill.get_outputs()]
    outs = dict(zip(names, prefill.run(None, {"input_ids": ids, "attention_mask": mask}), strict=True))
    tokens = []
    for _ in range(5):
        nxt = outs["logits"][:, -1:].argmax(-1).astype(np.int64)
        tokens.append(int(nxt[0, 0]))
        mask = np.concatenate([mask, np.ones((1, 1), np.int64)], axis=1)
        feed = {"input_ids": nxt, "attention_mask": mask}
        for name, value in outs.items():
            if name.startswith("present."):
                _, i, kv = name.split(".")
                feed[f"past_key_values_{i}_{kv}"] = value
        step_names = [o.name for o in step.get_outputs()]
        outs = dict(zip(step_names, step.run(None, feed), strict=True))
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    want = model.generate(torch.from_numpy(ids), attention_mask=torch.ones_like(torch.from_numpy(ids)),
                          max_new_tokens=5, do_sample=False, pad_token_id=0)[0, 5:].tolist()
    assert tokens == want


def test_vit_to_every_image_format_here(tmp_path: Path) -> None:
    formats = ["onnx", "openvino", "torchscript", "tflite", "executorch"]
    from modelport.plugins import get_plugin_manager

    rows = {r.name: r for r in get_plugin_manager().format_statuses()}
    formats = [f for f in formats if f in rows and rows[f].can_export]
    if not formats:
        pytest.skip("no format plugin installed")
    folder = testing.vit(tmp_path / "ckpt")
    code, out, err = _export(f"hf:{folder}", "-f", ",".join(formats), "--output-dir", str(tmp_path / "o"), "--json")
    results = _results(out)
    assert code == 0, (err, results)
    for fmt in formats:
        assert results[fmt]["status"] in ("passed", "structure-only"), (fmt, results[fmt])
        md = json.loads((tmp_path / "o" / fmt / "metadata.json").read_text())
        assert md["preprocessing"]["mean"] == [0.5, 0.4, 0.3]

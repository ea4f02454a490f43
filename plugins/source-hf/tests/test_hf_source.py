"""hf:PATH_OR_ID end to end with only the core installed (format pt2): tasks, inputs, metadata, KV cache, safety."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import modelport
import numpy as np
import pytest
from conftest import read, run_export
from modelport.errors import ConfigError
from modelport_hf.tasks import infer_task


def test_the_source_is_registered_and_listed() -> None:
    from modelport.plugins import PluginHost

    host = PluginHost()
    spec, owner = host.sources["hf"]
    assert host.plugin_of(owner).distribution == "modelport-source-hf"  # type: ignore[union-attr]
    assert host.availability_of(spec.availability).available
    from click.testing import CliRunner
    from modelport.cli import main

    listed = {p["name"]: p for p in json.loads(CliRunner().invoke(main, ["plugins", "--json"]).stdout)}
    assert listed["source-hf"]["status"] == "loaded"
    assert listed["source-hf"]["hooks"] == ["register_sources"]


@pytest.mark.parametrize(("arch", "extra", "task"), [
    ("BertForSequenceClassification", {}, "text-classification"),
    ("BertForTokenClassification", {}, "token-classification"),
    ("BertForQuestionAnswering", {}, "question-answering"),
    ("BertModel", {}, "feature-extraction"),
    ("GPT2LMHeadModel", {}, "text-generation"),
    ("LlamaForCausalLM", {}, "text-generation"),
    ("T5ForConditionalGeneration", {"is_encoder_decoder": True}, "text2text-generation"),
    ("WhisperForConditionalGeneration", {"is_encoder_decoder": True}, "automatic-speech-recognition"),
    ("ViTForImageClassification", {}, "image-classification"),
    ("Wav2Vec2ForCTC", {}, "automatic-speech-recognition"),
    ("Wav2Vec2ForSequenceClassification", {}, "audio-classification"),
    ("CLIPModel", {"model_type": "clip"}, "zero-shot-image-classification"),
])
def test_the_task_comes_from_the_architecture_like_optimums_table(arch: str, extra: dict, task: str) -> None:
    from types import SimpleNamespace

    config = SimpleNamespace(architectures=[arch], model_type=extra.get("model_type", "x"),
                             is_encoder_decoder=extra.get("is_encoder_decoder", False))
    choice = infer_task(config, None)
    assert choice.task.name == task
    assert not choice.with_past
    assert arch in choice.how or choice.how.startswith("model_type")


def test_task_flag_overrides_and_is_checked() -> None:
    from types import SimpleNamespace

    config = SimpleNamespace(architectures=["GPT2LMHeadModel"], model_type="gpt2", is_encoder_decoder=False)
    choice = infer_task(config, "text-generation-with-past")
    assert choice.with_past and choice.task.name == "text-generation" and choice.how == "--task"
    with pytest.raises(ConfigError, match="not a Hugging Face task"):
        infer_task(config, "summarise-everything")
    bert = SimpleNamespace(architectures=["BertModel"], model_type="bert", is_encoder_decoder=False)
    with pytest.raises(ConfigError, match="only generative tasks"):
        infer_task(bert, "feature-extraction-with-past")


def test_bert_classifier_exports_with_no_input_flags_and_real_text(checkpoint, tmp_path: Path) -> None:
    folder = checkpoint("bert", head="sequence")
    out = tmp_path / "bert"
    r = run_export(f"hf:{folder}", "-f", "pt2", "--output-dir", str(out), "--input-text", "the cat sat on the mat")
    assert r.exit_code == 0, r.stderr
    md = read(out)
    assert md["task_type"] == "text-classification"
    assert md["class_names"] == ["negative", "neutral", "positive"]
    assert list(md["input_shape"]) == ["input_ids", "attention_mask", "token_type_ids"]
    assert md["input_shape"]["input_ids"] == ["batch", "sequence_length"]
    assert md["input_dtype"]["input_ids"] == "int64"
    hf = md["extra_metadata"]["huggingface"]
    assert hf["task"] == "text-classification"
    assert hf["tokenizer"]["special_tokens"]["cls_token"] == {"token": "[CLS]", "id": 2}
    assert hf["tokenizer"]["model_max_length"] == 128
    record = read(out, "export.json")
    assert record["source"]["task_inferred_from"] == "config.json architectures: BertForSequenceClassification"
    assert record["source"]["input_text"] == "the cat sat on the mat"
    assert record["validation"]["status"] == "passed"
    # the first reference set is the text, tokenized by the saved tokenizer ([CLS] the cat sat on the mat [SEP])
    with np.load(out / "reference.npz") as ref:
        assert ref["0/in/input_ids"].tolist() == [[2, 9, 10, 11, 12, 9, 13, 3]]
        # and the model's logits on it are what PyTorch gives for that text
        import torch
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        with torch.no_grad():
            want = model(input_ids=torch.tensor(ref["0/in/input_ids"]),
                         token_type_ids=torch.zeros_like(torch.tensor(ref["0/in/input_ids"]))).logits.numpy()
        np.testing.assert_allclose(ref["0/out/0"], want, atol=1e-5)


def _greedy_with_artifacts(prefill, step, ids: np.ndarray, n: int) -> list[int]:
    """Generate ``n`` tokens with the exported decoder / decoder_with_past, feeding each present back as past."""
    import torch

    mask = np.ones_like(ids)
    outs = prefill(torch.from_numpy(ids), torch.from_numpy(mask))  # a loaded .pt2 takes positional inputs
    tokens = []
    for _ in range(n):
        nxt = outs["logits"][:, -1:].argmax(-1)
        tokens.append(int(nxt[0, 0]))
        mask = np.concatenate([mask, np.ones((1, 1), np.int64)], axis=1)
        past = [outs[f"present.{i}.{kv}"] for i in range(len(outs) // 2) for kv in ("key", "value")]
        outs = step(nxt, torch.from_numpy(mask), *past)
    return tokens


@pytest.mark.parametrize("arch", ["llama"])  # GPT-2: tests/test_hf_formats.py, in onnxruntime
def test_decoder_with_past_generates_what_generate_does(checkpoint, tmp_path: Path, arch: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    folder = checkpoint(arch)
    out = tmp_path / arch
    r = run_export(f"hf:{folder}", "-f", "pt2", "--task", "text-generation-with-past", "--output-dir", str(out),
                   "--input-text", "the dog ran fast")
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["decoder", "decoder_with_past"]
    step_md = read(out / "decoder_with_past")
    assert step_md["model_name"] == f"{folder.name}-decoder_with_past"
    assert step_md["input_shape"]["past_key_values_0_key"][0] == "batch"
    assert step_md["input_shape"]["past_key_values_0_key"][2] == "past_sequence_length"
    assert "present.1.value" in step_md["output_shape"]
    record = read(out / "decoder_with_past", "export.json")
    assert record["validation"]["status"] == "passed"
    assert record["source"]["decode_steps_validated"] == 2
    with np.load(out / "decoder_with_past" / "reference.npz") as ref:  # two chained real steps come first
        assert ref["0/in/past_key_values_0_key"].shape[2] == 4
        assert ref["1/in/past_key_values_0_key"].shape[2] == 5
    prefill = torch.export.load(str(out / "decoder" / "model.pt2")).module()
    step = torch.export.load(str(out / "decoder_with_past" / "model.pt2")).module()
    ids = np.array([[9, 15, 16, 17]], np.int64)
    got = _greedy_with_artifacts(prefill, step, ids, 4)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    want = model.generate(torch.from_numpy(ids), attention_mask=torch.ones(1, 4, dtype=torch.long), max_new_tokens=4,
                          do_sample=False, pad_token_id=0)[0, 4:].tolist()
    assert got == want


def test_t5_with_past_exports_encoder_decoder_and_decoder_with_past(checkpoint, tmp_path: Path) -> None:
    folder = checkpoint("t5")
    out = tmp_path / "t5"
    r = run_export(f"hf:{folder}", "-f", "pt2", "--task", "text2text-generation-with-past", "--output-dir", str(out),
                   "--json")
    assert r.exit_code == 0, r.stderr
    payload = json.loads(r.stdout)
    assert sorted(payload["results"]) == ["decoder/pt2", "decoder_with_past/pt2", "encoder/pt2"]
    assert all(v["status"] == "passed" for v in payload["results"].values())
    enc = read(out / "encoder")
    assert list(enc["input_shape"]) == ["input_ids", "attention_mask"]
    dec = read(out / "decoder_with_past")
    assert "past_key_values_1_encoder_value" in dec["input_shape"]
    assert "present.1.decoder.key" in dec["output_shape"]
    assert "present.1.encoder.key" not in dec["output_shape"]  # the cross-attention cache does not change


def test_vit_classifier_gets_size_preprocessing_and_labels_from_the_folder(checkpoint, tmp_path: Path) -> None:
    out = tmp_path / "vit"
    r = run_export(f"hf:{checkpoint('vit')}", "-f", "pt2", "--output-dir", str(out))
    assert r.exit_code == 0, r.stderr
    md = read(out)
    assert md["task_type"] == "classification"
    assert md["input_shape"] == {"pixel_values": ["batch", 3, 32, 32]}
    assert md["class_names"] == [f"class_{i}" for i in range(5)]
    assert md["preprocessing"]["mean"] == [0.5, 0.4, 0.3]
    assert md["preprocessing"]["std"] == [0.2, 0.25, 0.3]
    assert md["preprocessing"]["input_size"] == [32, 32]
    assert md["validation"]["status"] == "passed"


def test_whisper_clip_and_wav2vec2_export_with_no_input_flags(checkpoint, tmp_path: Path) -> None:
    cases = {"whisper": ("automatic-speech-recognition", {"input_features": ["batch", 8, 32],
                                                          "decoder_input_ids": ["batch", "decoder_sequence_length"]}),
             "clip": ("zero-shot-image-classification", None),
             "wav2vec2": ("automatic-speech-recognition", {"input_values": ["batch", "audio_length"]})}
    for kind, (task, shapes) in cases.items():
        out = tmp_path / kind
        r = run_export(f"hf:{checkpoint(kind)}", "-f", "pt2", "--output-dir", str(out))
        assert r.exit_code == 0, (kind, r.stderr)
        md = read(out)
        assert md["task_type"] == task
        assert md["validation"]["status"] == "passed", kind
        if shapes:
            assert md["input_shape"] == shapes
    clip = read(tmp_path / "clip")
    assert list(clip["output_shape"]) == ["logits_per_image", "logits_per_text", "text_embeds", "image_embeds"]
    assert read(tmp_path / "wav2vec2")["preprocessing"]["sampling_rate"] == 4000


def test_pickle_only_weights_are_refused(checkpoint, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(checkpoint("bert", head="sequence"), folder)
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    r = run_export(f"hf:{folder}", "-f", "pt2", "--output-dir", str(tmp_path / "o"))
    assert r.exit_code == 1
    assert r.stderr.startswith("error: hf:")
    assert "only in pytorch_model.bin (pickle" in r.stderr and "safetensors only" in r.stderr
    assert not (tmp_path / "o").exists()


def test_custom_code_needs_trust_code(checkpoint, tmp_path: Path) -> None:
    folder = tmp_path / "custom"
    shutil.copytree(checkpoint("bert", head="sequence"), folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForSequenceClassification": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "modeling_evil.py").write_text("raise SystemExit('custom code ran')\n")
    r = run_export(f"hf:{folder}", "-f", "pt2", "--output-dir", str(tmp_path / "o"))
    assert r.exit_code == 3
    assert "ships its own Python code" in r.stderr and "--trust-code" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_hub_id_is_found_in_the_local_cache_offline(checkpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = cache / "models--acme--tiny-vit" / "snapshots" / commit
    shutil.copytree(checkpoint("vit"), snap)
    (cache / "models--acme--tiny-vit" / "refs").mkdir()
    (cache / "models--acme--tiny-vit" / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    resolved = modelport.resolve("hf:acme/tiny-vit")
    assert resolved.source["repo_id"] == "acme/tiny-vit"
    assert resolved.source["commit"] == commit and resolved.source["from_cache"] is True
    assert resolved.model_name == "tiny-vit"
    # the Python API exports a hub id as the CLI does
    result = modelport.export("hf:acme/tiny-vit", "pt2", output_dir=tmp_path / "api")
    assert result["pt2"].status == "passed"
    assert read(tmp_path / "api")["model_name"] == "tiny-vit"
    assert read(tmp_path / "api", "export.json")["source"]["repo_id"] == "acme/tiny-vit"
    with pytest.raises(modelport.ModelLoadError, match="not in the local Hugging Face cache"):
        modelport.resolve("hf:acme/absent")

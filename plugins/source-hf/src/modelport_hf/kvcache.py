"""Decoders exported with their KV cache, as Optimum's ``*-with-past`` tasks: separate step artifacts.

Causal LM (``text-generation-with-past``): ``decoder`` (the prefill: ids + mask → logits + ``present.*``) and
``decoder_with_past`` (one step: the new token, the mask, ``past_key_values_*`` → logits + the grown
``present.*``). Encoder-decoders (``text2text-generation-with-past``, Whisper-style
``automatic-speech-recognition-with-past``): ``encoder``, ``decoder`` and ``decoder_with_past``.

The example and validation inputs of ``decoder_with_past`` are a real chain of :data:`DECODE_STEPS` greedy
decoding steps run by the PyTorch model with its own cache (``DynamicCache``/``EncoderDecoderCache``), so each
artifact is compared with the model exactly as ``generate`` runs it. Before anything is exported, the wrapper's
outputs on that chain are checked against the model's own cached outputs: a cache laid out wrongly stops here.
"""

from __future__ import annotations

from typing import Any

from modelport import InputSpec, ModelLoadError, ResolvedModel, TensorSpec

from modelport_hf import wrappers
from modelport_hf.source import (
    DECODE_STEPS,
    TEXT_AXES,
    Loaded,
    _audio_features,
    _decoder_ids,
    _resolved,
    _text_facts,
    _text_inputs,
)

_STEP_ATOL = 1e-4


def _np(t: Any) -> Any:
    return t.detach().clone().cpu().numpy()


def _n_layers(pairs: list[Any]) -> int:
    if not pairs:
        raise ModelLoadError("the model returned no KV cache (use_cache=True gave none); it cannot be exported "
                             "with past; use the task without -with-past")
    return len(pairs)


def _check_steps(module: Any, sets: list[dict[str, Any]], expected: list[Any], what: str) -> None:
    """The wrapper on each step's inputs must give the logits the model gave with its own cache."""
    import torch

    with torch.no_grad():
        for i, (s, want) in enumerate(zip(sets, expected, strict=True)):
            got = module(**{k: torch.from_numpy(v) for k, v in s.items()})["logits"]
            diff = float((got - want).abs().max())
            if diff > _STEP_ATOL:
                raise ModelLoadError(f"{what}: decoding step {i + 1} through the explicit cache differs from the "
                                     f"model's own cache by {diff:.2e}; this architecture's cache layout is not "
                                     "supported")


def _past_specs(names: list[str], arrays: dict[str, Any], seq_axis_label: str) -> list[TensorSpec]:
    return [TensorSpec(n, tuple(arrays[n].shape), "float32", dynamic={0: "batch", 2: seq_axis_label})
            for n in names]


def causal_components(loaded: Loaded) -> ResolvedModel:
    """``decoder`` + ``decoder_with_past`` for a causal LM, with a validated chain of decoding steps."""
    import numpy as np
    import torch

    model = loaded.model
    ckw = wrappers.cache_kwarg(model)
    specs, arrays = _text_inputs(loaded)
    specs = [s for s in specs if s.name in ("input_ids", "attention_mask")]
    if arrays is None:
        arrays = InputSpec(list(specs)).make_numpy(seed=0)
    arrays = {s.name: arrays[s.name] for s in specs}
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(arrays["input_ids"]),
                    attention_mask=torch.from_numpy(arrays["attention_mask"]), use_cache=True, return_dict=True)
        cache = wrappers.output_cache(out)
        n_layers = _n_layers(wrappers.cache_layers(cache))
        mask = torch.from_numpy(arrays["attention_mask"])
        steps: list[dict[str, Any]] = []
        expected = []
        for _ in range(DECODE_STEPS):
            nxt = out.logits[:, -1:].argmax(-1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            step = {"input_ids": _np(nxt), "attention_mask": _np(mask)}
            names = wrappers.past_names(n_layers)
            for i, (k, v) in enumerate(wrappers.cache_layers(cache)):
                step[names[2 * i]], step[names[2 * i + 1]] = _np(k), _np(v)
            steps.append(step)
            out = model(input_ids=nxt, attention_mask=mask, use_cache=True, return_dict=True, **{ckw: cache})
            expected.append(out.logits.detach().clone())
    facts = _text_facts(loaded)

    prefill = wrappers.CausalLMWithCache(model, n_layers, with_past=False)
    decoder = _resolved(loaded, prefill, specs, [arrays], None, {**facts, "component": "decoder"})
    past_inputs = [
        TensorSpec("input_ids", (loaded.batch, 1), "int64", dynamic={0: "batch"}, low=0, high=specs[0].high),
        TensorSpec("attention_mask", tuple(steps[0]["attention_mask"].shape), "int64",
                   dynamic={0: "batch", 1: "total_sequence_length"}),
        *_past_specs(wrappers.past_names(n_layers), steps[0], "past_sequence_length"),
    ]
    stepper = wrappers.CausalLMWithCache(model, n_layers, with_past=True)
    with_past = _resolved(loaded, stepper, past_inputs, steps, None,
                          {**facts, "component": "decoder_with_past", "num_layers": n_layers})
    _check_steps(stepper, steps, expected, "decoder_with_past")
    del np
    return ResolvedModel(module=model, task="text-generation", components={
        "decoder": decoder, "decoder_with_past": with_past,
    }, source={"decode_steps_validated": DECODE_STEPS})


def seq2seq_components(loaded: Loaded) -> ResolvedModel:
    """``encoder`` + ``decoder`` + ``decoder_with_past`` for a T5/BART/Whisper-style encoder-decoder."""
    import numpy as np
    import torch

    model = loaded.model
    ckw = wrappers.cache_kwarg(model)
    audio = loaded.choice.modality == "audio"
    if audio:
        enc_specs = [_audio_features(loaded)]
        enc_arrays = InputSpec(list(enc_specs)).make_numpy(seed=0)
        enc_sets = None
    else:
        enc_specs, text_arrays = _text_inputs(loaded)
        enc_specs = [s for s in enc_specs if s.name in ("input_ids", "attention_mask")]
        enc_arrays = text_arrays if text_arrays is not None else InputSpec(list(enc_specs)).make_numpy(seed=0)
        enc_arrays = {s.name: enc_arrays[s.name] for s in enc_specs}
        enc_sets = [enc_arrays] if text_arrays is not None else None
    uses_mask = "attention_mask" in enc_arrays
    facts = _text_facts(loaded)
    encoder = _resolved(loaded, wrappers.Seq2SeqEncoder(model), enc_specs, enc_sets, None,
                        {**facts, "component": "encoder"})
    start = int(getattr(model.config, "decoder_start_token_id", None) or 0)
    b = loaded.batch
    with torch.no_grad():
        hidden = encoder.module(**{k: torch.from_numpy(v) for k, v in enc_arrays.items()})["last_hidden_state"]
        rng = np.random.default_rng(0)
        first = rng.integers(0, _decoder_ids(loaded).high or 2, size=(b, 2)).astype(np.int64)
        dec_ids = np.concatenate([np.full((b, 1), start, np.int64), first], axis=1)
        dec_arrays: dict[str, Any] = {"decoder_input_ids": dec_ids, "encoder_hidden_states": _np(hidden)}
        kwargs: dict[str, Any] = {}
        if uses_mask:
            dec_arrays["encoder_attention_mask"] = enc_arrays["attention_mask"]
            kwargs["attention_mask"] = torch.from_numpy(enc_arrays["attention_mask"])
        from transformers.modeling_outputs import BaseModelOutput

        enc_out = BaseModelOutput(last_hidden_state=hidden)
        out = model(decoder_input_ids=torch.from_numpy(dec_ids), encoder_outputs=enc_out, use_cache=True,
                    return_dict=True, **kwargs)
        cache = wrappers.output_cache(out)
        n_layers = _n_layers(wrappers.cache_layers(cache.self_attention_cache))
        names = wrappers.past_names(n_layers, ("decoder", "encoder"))
        steps: list[dict[str, Any]] = []
        expected = []
        for _ in range(DECODE_STEPS):
            nxt = out.logits[:, -1:].argmax(-1)
            step: dict[str, Any] = {"decoder_input_ids": _np(nxt)}
            if uses_mask:
                step["encoder_attention_mask"] = enc_arrays["attention_mask"]
            selfs = wrappers.cache_layers(cache.self_attention_cache)
            cross = wrappers.cache_layers(cache.cross_attention_cache)
            for i in range(n_layers):
                dk, dv, ek, ev = names[4 * i: 4 * i + 4]
                step[dk], step[dv] = _np(selfs[i][0]), _np(selfs[i][1])
                step[ek], step[ev] = _np(cross[i][0]), _np(cross[i][1])
            steps.append(step)
            out = model(decoder_input_ids=nxt, encoder_outputs=enc_out, use_cache=True, return_dict=True,
                        **{ckw: cache}, **kwargs)
            expected.append(out.logits.detach().clone())
    vocab_high = _decoder_ids(loaded).high
    dec_specs = [
        _decoder_ids(loaded, dec_ids.shape[1]),
        TensorSpec("encoder_hidden_states", tuple(hidden.shape), "float32",
                   dynamic={0: "batch", 1: "encoder_sequence_length"} if not audio else {0: "batch"}),
    ]
    if uses_mask:
        dec_specs.append(TensorSpec("encoder_attention_mask", tuple(enc_arrays["attention_mask"].shape), "int64",
                                    dynamic=dict(TEXT_AXES) | {1: "encoder_sequence_length"}))
    decoder = _resolved(loaded, wrappers.Seq2SeqDecoder(model, n_layers, False, uses_mask), dec_specs,
                        [dec_arrays], None, {**facts, "component": "decoder"})
    enc_axis = "encoder_sequence_length"
    past_specs = [TensorSpec("decoder_input_ids", (b, 1), "int64", dynamic={0: "batch"}, low=0, high=vocab_high)]
    if uses_mask:
        past_specs.append(TensorSpec("encoder_attention_mask", tuple(enc_arrays["attention_mask"].shape), "int64",
                                     dynamic={0: "batch", 1: enc_axis}))
    for n in names:
        label = "past_decoder_sequence_length" if "_decoder_" in n else enc_axis
        dyn = {0: "batch", 2: label} if (not audio or label != enc_axis) else {0: "batch"}
        past_specs.append(TensorSpec(n, tuple(steps[0][n].shape), "float32", dynamic=dyn))
    stepper = wrappers.Seq2SeqDecoder(model, n_layers, True, uses_mask)
    with_past = _resolved(loaded, stepper, past_specs, steps, None,
                          {**facts, "component": "decoder_with_past", "num_layers": n_layers})
    _check_steps(stepper, steps, expected, "decoder_with_past")
    return ResolvedModel(module=model, task=encoder.task, components={
        "encoder": encoder, "decoder": decoder, "decoder_with_past": with_past,
    }, source={"decode_steps_validated": DECODE_STEPS})

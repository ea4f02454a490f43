"""Modules that put a transformers model behind a forward whose parameters are its inputs' names.

Every format binds inputs to the forward's parameters by name, so each wrapper gets a forward with one named
parameter per input (``input_ids, attention_mask, past_key_values_0_key, ...``) — generated from our own
template with identifier names we built, never from anything in the checkpoint. The wrapped forward returns a
dict of plain tensors (``logits``, ``present.0.key``...), so the export has named outputs and no Cache objects.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch


def _named_forward(names: Sequence[str]) -> Callable[..., Any]:
    for n in names:
        if not n.isidentifier():
            raise ValueError(f"input name {n!r} is not an identifier")
    params = ", ".join(names)
    mapping = ", ".join(f"{n!r}: {n}" for n in names)
    namespace: dict[str, Any] = {}
    exec(f"def forward(self, {params}):\n    return self.run({{{mapping}}})\n", namespace)
    return namespace["forward"]


def with_named_forward(module: torch.nn.Module, names: Sequence[str]) -> torch.nn.Module:
    """Give ``module`` (whose ``run(dict)`` does the work) a forward taking exactly ``names``, in order."""
    cls = type(module)
    named = type(cls.__name__, (cls,), {"forward": _named_forward(names), "__module__": cls.__module__,
                                        "__qualname__": cls.__qualname__})
    module.__class__ = named
    return module


def _pick(out: Any, keys: Sequence[str] | None) -> dict[str, torch.Tensor]:
    result: dict[str, torch.Tensor] = {}
    items = out.items() if hasattr(out, "items") else []
    for k, v in items:
        if keys is not None and k not in keys:
            continue
        if isinstance(v, torch.Tensor):
            result[k] = v
    if keys is not None:
        result = {k: result[k] for k in keys if k in result}
    return result


class TaskModel(torch.nn.Module):
    """A task model without cache: named inputs in, the task's outputs (``logits``...) out."""

    def __init__(self, model: torch.nn.Module, outputs: Sequence[str] | None, extra: Mapping[str, Any] | None = None):
        super().__init__()
        self.model = model
        self.outputs = tuple(outputs) if outputs else None
        self.extra = dict(extra or {})

    def run(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = self.model(**inputs, **self.extra, return_dict=True)
        picked = _pick(out, self.outputs)
        if not picked:
            raise RuntimeError(f"the model returned none of the outputs {self.outputs}")
        return picked


# ----------------------------------------------------------------------------- KV cache


def cache_layers(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(key, value) per layer from a transformers Cache (5.x layers, 4.x key_cache lists) or legacy tuples."""
    if cache is None:
        return []
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return [(layer.keys, layer.values) for layer in layers]
    if hasattr(cache, "key_cache"):
        return list(zip(cache.key_cache, cache.value_cache, strict=True))
    return [(k, v) for k, v, *_ in cache]


def cache_kwarg(model: Any) -> str:
    """The forward's cache argument: ``cache`` (transformers >= 5.24) or ``past_key_values`` (earlier)."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def output_cache(out: Any) -> Any:
    """The cache a model output carries (``cache`` or, before transformers 5.24, ``past_key_values``)."""
    cache = out.get("cache") if hasattr(out, "get") else None
    return cache if cache is not None else getattr(out, "past_key_values", None)


@functools.cache
def _export_layer() -> type:
    """A DynamicLayer whose first update stores the tensors instead of concatenating onto an empty 1-D tensor.

    ``DynamicLayer.update`` on an empty layer does ``cat([tensor([]), keys], dim=-2)``, which torch tolerates
    but converters do not (OpenVINO: "Axis -2 out of the tensor rank range"). Same values, no such node.
    """
    from transformers.cache_utils import DynamicLayer

    class ExportDynamicLayer(DynamicLayer):
        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> Any:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
                self.keys, self.values = key_states, value_states
                return self.keys, self.values
            return super().update(key_states, value_states, *args, **kwargs)

    return ExportDynamicLayer


def new_cache() -> Any:
    """An empty DynamicCache whose layers export cleanly (see :func:`_export_layer`)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    if getattr(cache, "layer_class_to_replicate", None) is not None:
        cache.layer_class_to_replicate = _export_layer()
    return cache


def build_cache(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> Any:
    """A DynamicCache holding ``pairs`` (one (key, value) per layer)."""
    cache = new_cache()
    for i, (k, v) in enumerate(pairs):
        cache.update(k, v, i)
    return cache


def past_names(n_layers: int, kinds: Sequence[str] = ("",)) -> list[str]:
    """Input names of the past: ``past_key_values_0_key`` (decoder-only) or ``past_key_values_0_decoder_key``."""
    names = []
    for i in range(n_layers):
        for kind in kinds:
            for kv in ("key", "value"):
                names.append(f"past_key_values_{i}_{kind + '_' if kind else ''}{kv}")
    return names


def present_name(i: int, kv: str, kind: str = "") -> str:
    """Output names as Optimum writes them: ``present.0.key`` / ``present.0.decoder.key``."""
    return f"present.{i}.{kind + '.' if kind else ''}{kv}"


class CausalLMWithCache(torch.nn.Module):
    """A causal LM step: ``input_ids``, ``attention_mask`` [, the past per layer] → ``logits`` + ``present.*``.

    Without past it is the prefill (``decoder``); with past, one decoding step (``decoder_with_past``).
    The past goes into a DynamicCache exactly as ``generate`` would hold it, so the PyTorch reference is the
    model running with its own cache.
    """

    def __init__(self, model: torch.nn.Module, n_layers: int, with_past: bool):
        super().__init__()
        self.model = model
        self.n_layers = n_layers
        self.with_past = with_past

    def run(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cache = None
        if self.with_past:
            names = past_names(self.n_layers)
            pairs = [(inputs[names[2 * i]], inputs[names[2 * i + 1]]) for i in range(self.n_layers)]
            cache = build_cache(pairs)
        kwargs = {cache_kwarg(self.model): cache if cache is not None else new_cache()}
        out = self.model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=True,
                         return_dict=True, **kwargs)
        result = {"logits": out.logits}
        for i, (k, v) in enumerate(cache_layers(output_cache(out))):
            result[present_name(i, "key")] = k
            result[present_name(i, "value")] = v
        return result


class Seq2SeqEncoder(torch.nn.Module):
    """The encoder of an encoder-decoder: its inputs → ``last_hidden_state``."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def run(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = self.model.get_encoder()(**inputs, return_dict=True)
        return {"last_hidden_state": out.last_hidden_state}


class Seq2SeqDecoder(torch.nn.Module):
    """An encoder-decoder's decoder step: ``decoder_input_ids``, the encoder's output [and mask] [, the past].

    Without past (``decoder``): returns ``logits`` and the self- and cross-attention ``present.*``.
    With past (``decoder_with_past``): takes both caches as ``past_key_values_{i}_{decoder,encoder}_{key,value}``
    and returns ``logits`` and the grown self-attention ``present.{i}.decoder.*`` (the cross-attention cache
    does not change after the first step, as in Optimum).
    """

    def __init__(self, model: torch.nn.Module, n_layers: int, with_past: bool, uses_mask: bool):
        super().__init__()
        self.model = model
        self.n_layers = n_layers
        self.with_past = with_past
        self.uses_mask = uses_mask

    def run(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        from transformers import EncoderDecoderCache
        from transformers.modeling_outputs import BaseModelOutput

        kwargs: dict[str, Any] = {"decoder_input_ids": inputs["decoder_input_ids"], "use_cache": True,
                                  "return_dict": True}
        if self.uses_mask:
            kwargs["attention_mask"] = inputs["encoder_attention_mask"]
        if self.with_past:
            names = past_names(self.n_layers, ("decoder", "encoder"))
            self_pairs, cross_pairs = [], []
            for i in range(self.n_layers):
                dk, dv, ek, ev = (inputs[n] for n in names[4 * i: 4 * i + 4])
                self_pairs.append((dk, dv))
                cross_pairs.append((ek, ev))
            cache = EncoderDecoderCache(build_cache(self_pairs), build_cache(cross_pairs))
            ek0 = cross_pairs[0][0]
            # the cross-attention keys are cached: the decoder reads only the shape of the encoder's output
            hidden = ek0.new_zeros((ek0.shape[0], ek0.shape[2], self.model.config.d_model))
        else:
            cache = EncoderDecoderCache(new_cache(), new_cache())
            hidden = inputs["encoder_hidden_states"]
        kwargs[cache_kwarg(self.model)] = cache
        kwargs["encoder_outputs"] = BaseModelOutput(last_hidden_state=hidden)
        out = self.model(**kwargs)
        result = {"logits": out.logits}
        pkv = output_cache(out)
        self_layers = cache_layers(pkv.self_attention_cache)
        cross_layers = cache_layers(pkv.cross_attention_cache)
        for i, (k, v) in enumerate(self_layers):
            result[present_name(i, "key", "decoder")] = k
            result[present_name(i, "value", "decoder")] = v
            if not self.with_past:
                result[present_name(i, "key", "encoder")] = cross_layers[i][0]
                result[present_name(i, "value", "encoder")] = cross_layers[i][1]
        return result

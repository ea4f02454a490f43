"""``hf:PATH_OR_ID`` → a ResolvedModel: the task model behind a named forward, its inputs, labels, preprocessing.

Steps: find the folder and refuse unsafe ones (:mod:`modelport_hf.locate`), read the config, pick the task
(:mod:`modelport_hf.tasks`), load the weights (safetensors only), then build the inputs the task takes —
names, dtypes, dynamic axes, sizes from the processor config — and real example inputs (``--input-text``
tokenized with the saved tokenizer; for ``-with-past`` tasks, a chain of decoding steps run by the PyTorch
model with its own cache).
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport import ConfigError, InputSpec, ModelLoadError, ResolvedModel, SourceRequest, TensorSpec

from modelport_hf import describe, wrappers
from modelport_hf.locate import Checkpoint, locate
from modelport_hf.tasks import TaskChoice, class_names_from, infer_task

DEFAULT_SEQ_LEN = 16
DEFAULT_DECODER_LEN = 4
DECODE_STEPS = 2
TEXT_AXES = {0: "batch", 1: "sequence_length"}


@dataclass
class Loaded:
    """The checkpoint, its config, the chosen task, the loaded model and what the folder says about inputs."""

    ckpt: Checkpoint
    config: Any
    choice: TaskChoice
    model: Any
    tokenizer: Any
    proc: dict[str, Any]
    batch: int
    text: str | None
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def forward_params(self) -> list[str]:
        try:
            return list(inspect.signature(self.model.forward).parameters)
        except (TypeError, ValueError):
            return []


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Keep transformers' progress bars, info logs and warnings off the user's terminal (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def resolve(request: SourceRequest) -> ResolvedModel:
    """Resolve ``hf:REF`` (the hf source's ``resolve``)."""
    with quiet_transformers():
        return _resolve(request)


def _resolve(request: SourceRequest) -> ResolvedModel:
    if request.checkpoint:
        raise ConfigError("--checkpoint does not apply to hf: references (the weights are the folder's safetensors)")
    if request.model_kwargs:
        raise ConfigError("--model-kwargs does not apply to hf: references; use --task, or edit config.json")
    ckpt = locate(request.reference, request.trust_code)
    loaded = _load(ckpt, request)
    builder = _BUILDERS.get(loaded.choice.task.name)
    if loaded.choice.with_past:
        resolved = _with_past(loaded)
    elif builder is not None:
        resolved = builder(loaded)
    else:  # pragma: no cover - every table row has a builder
        raise ConfigError(f"hf:{request.reference}: task {loaded.choice.task.name} has no input builder")
    resolved.source = {**loaded.facts, **resolved.source}
    resolved.model_name = resolved.model_name or _model_name(ckpt)
    return resolved


def _model_name(ckpt: Checkpoint) -> str:
    from modelport.folder.store import slug

    if ckpt.repo_id:
        return slug(ckpt.repo_id.split("/")[-1])
    return slug(Path(ckpt.folder).resolve().name)


def _load(ckpt: Checkpoint, request: SourceRequest) -> Loaded:
    import transformers

    trust = bool(request.trust_code)
    try:
        config = transformers.AutoConfig.from_pretrained(str(ckpt.folder), trust_remote_code=trust)
    except Exception as exc:
        raise ModelLoadError(f"hf:{request.reference}: cannot read config.json: {type(exc).__name__}: "
                             f"{_first_line(exc)}") from None
    choice = infer_task(config, request.task)
    auto = getattr(transformers, choice.task.auto_class)
    try:
        model = auto.from_pretrained(str(ckpt.folder), use_safetensors=True, trust_remote_code=trust)
    except ValueError as exc:
        raise ModelLoadError(f"hf:{request.reference}: {choice.task.auto_class} cannot load a "
                             f"{getattr(config, 'model_type', '?')} model for task {choice.task.name} "
                             f"({_first_line(exc)}); pick another --task") from None
    except Exception as exc:
        raise ModelLoadError(f"hf:{request.reference}: loading the weights failed: {type(exc).__name__}: "
                             f"{_first_line(exc)}") from None
    model.eval()
    if getattr(model.config, "_attn_implementation", None) not in (None, "eager"):
        model.config._attn_implementation = "eager"  # sdpa's masks branch on data; eager exports everywhere
    tokenizer = None
    if choice.modality in ("text", "multimodal") or choice.task.generative:
        try:
            tokenizer = describe.load_tokenizer(ckpt.folder, trust)
        except Exception as exc:
            if request.input_text:
                raise ModelLoadError(f"hf:{request.reference}: --input-text needs the saved tokenizer, which did "
                                     f"not load: {type(exc).__name__}: {_first_line(exc)}") from None
    if request.input_text and tokenizer is None:
        raise ConfigError(f"hf:{request.reference}: --input-text needs a tokenizer saved in the folder; it has none")
    facts = {**ckpt.facts(), "task": choice.task.name + ("-with-past" if choice.with_past else ""),
             "task_inferred_from": choice.how, "model_type": getattr(config, "model_type", None),
             "architecture": type(model).__name__, "transformers": transformers.__version__,
             "trust_code": trust}
    if request.input_text:
        facts["input_text"] = request.input_text
    return Loaded(ckpt, config, choice, model, tokenizer, describe.processor_config(ckpt.folder),
                  request.batch or 1, request.input_text, facts)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:300]


# ----------------------------------------------------------------------------- inputs


def _vocab(config: Any) -> int:
    text = getattr(config, "text_config", None) or getattr(config, "decoder", None) or config
    return int(getattr(text, "vocab_size", None) or getattr(config, "vocab_size", 1000))


def _text_inputs(loaded: Loaded, *, mask: bool = True) -> tuple[list[TensorSpec], dict[str, Any] | None]:
    """input_ids (+ attention_mask, token_type_ids when the forward takes them) and tokenized --input-text."""
    import numpy as np

    params = loaded.forward_params
    b = loaded.batch
    arrays: dict[str, Any] | None = None
    seq = DEFAULT_SEQ_LEN
    if loaded.text is not None:
        enc = loaded.tokenizer([loaded.text] * b, return_tensors="np")
        arrays = {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}
        seq = int(arrays["input_ids"].shape[1])
    vocab = _vocab(loaded.config)
    specs = [TensorSpec("input_ids", (b, seq), "int64", dynamic=dict(TEXT_AXES), low=0, high=vocab)]
    if mask and "attention_mask" in params:
        specs.append(TensorSpec("attention_mask", (b, seq), "int64", dynamic=dict(TEXT_AXES)))
    type_vocab = int(getattr(loaded.config, "type_vocab_size", 0) or 0)
    if "token_type_ids" in params and type_vocab >= 1:
        specs.append(TensorSpec("token_type_ids", (b, seq), "int64", dynamic=dict(TEXT_AXES), low=0, high=1))
    if arrays is not None:
        arrays = {s.name: arrays.get(s.name, np.zeros((b, seq), np.int64)) for s in specs}
    return specs, arrays


def _text_facts(loaded: Loaded) -> dict[str, Any]:
    facts = describe.tokenizer_facts(loaded.tokenizer)
    return {"tokenizer": facts} if facts else {}


def _image_input(loaded: Loaded) -> tuple[TensorSpec, dict[str, Any]]:
    h, w = describe.image_size(loaded.proc, loaded.config)
    vision = getattr(loaded.config, "vision_config", None) or loaded.config
    channels = int(getattr(vision, "num_channels", 3) or 3)
    spec = TensorSpec("pixel_values", (loaded.batch, channels, h, w), "float32", dynamic={0: "batch"})
    return spec, describe.image_preprocessing(loaded.proc, (h, w))


def _resolved(loaded: Loaded, module: Any, specs: list[TensorSpec], sets: list[dict[str, Any]] | None,
              preprocessing: dict[str, Any] | None, extra: dict[str, Any] | None = None) -> ResolvedModel:
    task = loaded.choice.task
    names = [s.name for s in specs]
    wrappers.with_named_forward(module, names)
    module.eval()
    extras = {"extra_metadata": {"huggingface": {k: v for k, v in {
        "task": task.name, "model_type": getattr(loaded.config, "model_type", None),
        "architecture": type(loaded.model).__name__, **(extra or {}),
    }.items() if v is not None}}}
    return ResolvedModel(
        module=module, inputs=InputSpec(specs), input_sets=sets, task=task.metadata_task,
        class_names=class_names_from(loaded.config, task), preprocessing=preprocessing or None,
        task_extras=extras,
    )


def _text_task(loaded: Loaded) -> ResolvedModel:
    specs, arrays = _text_inputs(loaded)
    extra = {"use_cache": False} if loaded.choice.task.generative else None
    module = wrappers.TaskModel(loaded.model, loaded.choice.task.outputs, extra)
    return _resolved(loaded, module, specs, [arrays] if arrays else None, None, _text_facts(loaded))


def _image_task(loaded: Loaded) -> ResolvedModel:
    spec, pre = _image_input(loaded)
    module = wrappers.TaskModel(loaded.model, loaded.choice.task.outputs)
    return _resolved(loaded, module, [spec], None, pre)


def _audio_task(loaded: Loaded) -> ResolvedModel:
    rate = int(loaded.proc.get("sampling_rate") or 16000)
    spec = TensorSpec("input_values", (loaded.batch, rate), "float32", dynamic={0: "batch", 1: "audio_length"})
    module = wrappers.TaskModel(loaded.model, loaded.choice.task.outputs)
    return _resolved(loaded, module, [spec], None, describe.audio_preprocessing(loaded.proc))


def _audio_features(loaded: Loaded) -> TensorSpec:
    cfg = loaded.config
    mels = int(getattr(cfg, "num_mel_bins", None) or loaded.proc.get("feature_size") or 80)
    frames = 2 * int(getattr(cfg, "max_source_positions", 1500))
    return TensorSpec("input_features", (loaded.batch, mels, frames), "float32", dynamic={0: "batch"})


def _decoder_ids(loaded: Loaded, length: int = DEFAULT_DECODER_LEN) -> TensorSpec:
    return TensorSpec("decoder_input_ids", (loaded.batch, length), "int64",
                      dynamic={0: "batch", 1: "decoder_sequence_length"}, low=0, high=_vocab(loaded.config))


def _seq2seq_task(loaded: Loaded) -> ResolvedModel:
    """An encoder-decoder as one artifact: encoder inputs + ``decoder_input_ids`` → ``logits`` (no cache)."""
    module = wrappers.TaskModel(loaded.model, ("logits",), {"use_cache": False})
    if loaded.choice.modality == "audio":
        specs = [_audio_features(loaded), _decoder_ids(loaded)]
        return _resolved(loaded, module, specs, None, describe.audio_preprocessing(loaded.proc))
    specs, arrays = _text_inputs(loaded)
    specs = [*specs, _decoder_ids(loaded)]
    sets = None
    if arrays is not None:
        arrays["decoder_input_ids"] = _shift_right(loaded, arrays["input_ids"])
        specs[-1] = _decoder_ids(loaded, arrays["decoder_input_ids"].shape[1])
        sets = [arrays]
    return _resolved(loaded, module, specs, sets, None, _text_facts(loaded))


def _shift_right(loaded: Loaded, ids: Any) -> Any:
    import numpy as np

    start = int(getattr(loaded.config, "decoder_start_token_id", None) or 0)
    return np.concatenate([np.full((ids.shape[0], 1), start, np.int64), ids[:, :-1]], axis=1)


def _zero_shot(loaded: Loaded) -> ResolvedModel:
    specs, arrays = _text_inputs(loaded)
    image, pre = _image_input(loaded)
    specs = [*specs, image]
    module = wrappers.TaskModel(loaded.model, loaded.choice.task.outputs)
    sets = None
    if arrays is not None:
        import numpy as np

        rng = np.random.default_rng(0)
        arrays["pixel_values"] = rng.standard_normal(image.shape, dtype=np.float32)
        sets = [arrays]
    return _resolved(loaded, module, specs, sets, pre, _text_facts(loaded))


def _speech(loaded: Loaded) -> ResolvedModel:
    if loaded.choice.task.auto_class == "AutoModelForSpeechSeq2Seq":
        return _seq2seq_task(loaded)
    return _audio_task(loaded)


def _with_past(loaded: Loaded) -> ResolvedModel:
    from modelport_hf import kvcache

    if loaded.choice.task.name == "text-generation":
        return kvcache.causal_components(loaded)
    return kvcache.seq2seq_components(loaded)


def _classify(loaded: Loaded) -> ResolvedModel:
    if loaded.choice.modality == "image":
        return _image_task(loaded)
    if loaded.choice.modality == "audio":
        return _audio_task(loaded)
    return _text_task(loaded)


_BUILDERS = {
    "feature-extraction": _classify,
    "fill-mask": _text_task,
    "text-classification": _text_task,
    "token-classification": _text_task,
    "question-answering": _text_task,
    "image-classification": _image_task,
    "audio-classification": _audio_task,
    "automatic-speech-recognition": _speech,
    "text2text-generation": _seq2seq_task,
    "text-generation": _text_task,
    "zero-shot-image-classification": _zero_shot,
}

"""The task table: which task a checkpoint is for, the transformers Auto class that loads it, its inputs' kind.

Names follow Hugging Face Optimum's ``TasksManager`` (``text-classification``, ``text-generation-with-past``...),
so a user who knows ``optimum-cli export onnx --task`` knows ours. The task is inferred from the config's
``architectures`` (the head class names it) and the model's main input (text, image or audio).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelport import ConfigError


@dataclass(frozen=True)
class Task:
    """One row of the task table.

    :param name: Optimum's task name.
    :param auto_class: the ``transformers`` Auto class that loads the model with the right head.
    :param metadata_task: ``task_type`` written to metadata.json.
    :param outputs: the model outputs an artifact returns, in order (``None``: every tensor output).
    :param generative: a decoder that can be exported with its KV cache (``-with-past``).
    """

    name: str
    auto_class: str
    metadata_task: str
    outputs: tuple[str, ...] | None
    generative: bool = False
    classifier: bool = False


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("feature-extraction", "AutoModel", "feature-extraction", ("last_hidden_state", "pooler_output")),
    Task("fill-mask", "AutoModelForMaskedLM", "fill-mask", ("logits",)),
    Task("text-classification", "AutoModelForSequenceClassification", "text-classification", ("logits",), classifier=True),
    Task("token-classification", "AutoModelForTokenClassification", "token-classification", ("logits",), classifier=True),
    Task("question-answering", "AutoModelForQuestionAnswering", "question-answering", ("start_logits", "end_logits")),
    Task("image-classification", "AutoModelForImageClassification", "classification", ("logits",), classifier=True),
    Task("audio-classification", "AutoModelForAudioClassification", "audio-classification", ("logits",), classifier=True),
    Task("automatic-speech-recognition", "AutoModelForCTC", "automatic-speech-recognition", ("logits",)),
    Task("text2text-generation", "AutoModelForSeq2SeqLM", "text2text-generation", ("logits",), generative=True),
    Task("text-generation", "AutoModelForCausalLM", "text-generation", ("logits",), generative=True),
    Task("zero-shot-image-classification", "AutoModel", "zero-shot-image-classification",
         ("logits_per_image", "logits_per_text", "text_embeds", "image_embeds")),
)}
# Whisper-style speech encoder-decoders use another Auto class for the same task name
SPEECH_SEQ2SEQ = Task("automatic-speech-recognition", "AutoModelForSpeechSeq2Seq", "automatic-speech-recognition",
                      ("logits",), generative=True)

_HEAD_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForMaskedLM", "fill-mask"),
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("ForImageClassification", "image-classification"),
    ("ForAudioClassification", "audio-classification"),
    ("ForCTC", "automatic-speech-recognition"),
    ("ForConditionalGeneration", "text2text-generation"),
    ("ForSpeechSeq2Seq", "automatic-speech-recognition"),
)
_ZERO_SHOT_TYPES = ("clip", "siglip", "chinese_clip", "altclip")


@dataclass(frozen=True)
class TaskChoice:
    """The resolved task: the table row, whether the KV cache is exported, and how the choice was made."""

    task: Task
    with_past: bool
    modality: str  # text | image | audio | multimodal
    how: str


def modality_of(config: Any, main_input: str | None) -> str:
    """text, image, audio or multimodal, from the model's main input name and config."""
    if getattr(config, "model_type", "") in _ZERO_SHOT_TYPES or (
        hasattr(config, "text_config") and hasattr(config, "vision_config")
    ):
        return "multimodal"
    if main_input in ("pixel_values",):
        return "image"
    if main_input in ("input_values", "input_features"):
        return "audio"
    return "text"


def main_input_of(config: Any) -> str | None:
    """The ``main_input_name`` of the config's architecture class (read from the class, nothing instantiated)."""
    import transformers

    for arch in getattr(config, "architectures", None) or ():
        cls = getattr(transformers, arch, None)
        if cls is not None:
            return getattr(cls, "main_input_name", None)
    model_type = getattr(config, "model_type", "")
    if model_type in ("whisper", "speech_to_text"):
        return "input_features"
    if model_type in ("wav2vec2", "hubert", "wavlm", "data2vec-audio"):
        return "input_values"
    if model_type in ("vit", "deit", "convnext", "resnet", "swin", "beit", "dinov2"):
        return "pixel_values"
    return "input_ids"


def infer_task(config: Any, requested: str | None) -> TaskChoice:
    """Pick the task: ``requested`` (``--task``, Optimum's names) when given, else from ``architectures``."""
    main_input = main_input_of(config)
    modality = modality_of(config, main_input)
    if requested:
        name = requested.strip().lower()
        with_past = name.endswith("-with-past")
        base = name.removesuffix("-with-past")
        aliases = {"sequence-classification": "text-classification", "causal-lm": "text-generation",
                   "seq2seq-lm": "text2text-generation", "masked-lm": "fill-mask", "default": "feature-extraction",
                   "ctc": "automatic-speech-recognition", "speech2seq-lm": "automatic-speech-recognition"}
        base = aliases.get(base, base)
        if base not in TASKS:
            raise ConfigError(f"--task {requested!r}: not a Hugging Face task modelport knows; use one of "
                              f"{', '.join(sorted(TASKS))} (add -with-past to a generative one for its KV cache)")
        task = _speech_variant(TASKS[base], config, modality)
        if with_past and not task.generative:
            raise ConfigError(f"--task {requested!r}: only generative tasks (text-generation, text2text-generation, "
                              "automatic-speech-recognition with an encoder-decoder) have a KV cache to export")
        return TaskChoice(task, with_past, modality, "--task")
    archs = list(getattr(config, "architectures", None) or ())
    for arch in archs:
        for suffix, name in _HEAD_SUFFIXES:
            if arch.endswith(suffix):
                if name == "text-classification" and modality == "audio":
                    name = "audio-classification"
                if name == "text2text-generation" and not getattr(config, "is_encoder_decoder", False):
                    continue  # vision-language "ForConditionalGeneration" models: not in the table
                task = _speech_variant(TASKS[name], config, modality)
                return TaskChoice(task, False, modality, f"config.json architectures: {arch}")
    if modality == "multimodal":
        return TaskChoice(TASKS["zero-shot-image-classification"], False, modality, f"model_type {config.model_type}")
    return TaskChoice(TASKS["feature-extraction"], False, modality,
                      f"no task head in architectures {archs or '[]'}: the base model")


def _speech_variant(task: Task, config: Any, modality: str) -> Task:
    if task.name in ("automatic-speech-recognition", "text2text-generation") and modality == "audio" and getattr(
        config, "is_encoder_decoder", False
    ):
        return SPEECH_SEQ2SEQ
    return task


def class_names_from(config: Any, task: Task) -> list[str] | None:
    """Class names from ``id2label`` for classifier heads (``LABEL_0``... kept as the config says them)."""
    if not task.classifier:
        return None
    id2label: Mapping[Any, str] | None = getattr(config, "id2label", None)
    if not id2label:
        return None
    try:
        return [str(id2label[k]) for k in sorted(id2label, key=lambda k: int(k))]
    except (TypeError, ValueError):
        return [str(v) for v in id2label.values()]

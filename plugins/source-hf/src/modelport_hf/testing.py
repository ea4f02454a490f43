"""Tiny checkpoints shaped like real ones, built in code and saved with ``save_pretrained`` — for tests and docs.

Each builder writes a folder (config.json, model.safetensors, a word-level tokenizer or a processor config)
that ``hf:FOLDER`` loads exactly like a downloaded checkpoint. Weights are random (seeded); sizes are a few
hundred kilobytes, so a test exports them in seconds. Nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

WORDS = ("hello", "world", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "fast", "slow", "good", "bad",
         "is", "was", "very", "not", "and", "or")
SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<s>", "</s>")


def save_tokenizer(folder: Path, *, bos: str | None = None, eos: str | None = None, pad: str = "[PAD]",
                   cls_sep: bool = False, vocab_size: int = 64) -> Any:
    """A word-level fast tokenizer over :data:`WORDS` (ids below ``vocab_size``), saved into ``folder``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate((*SPECIAL, *WORDS))}
    assert len(vocab) <= vocab_size
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if cls_sep:
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
        )
    kwargs: dict[str, Any] = {"unk_token": "[UNK]", "pad_token": pad, "model_max_length": 128}
    if cls_sep:
        kwargs.update(cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    if bos:
        kwargs["bos_token"] = bos
    if eos:
        kwargs["eos_token"] = eos
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)
    fast.save_pretrained(str(folder))
    return fast


def _save(model: Any, folder: Path) -> Path:
    import torch

    torch.manual_seed(0)
    model.eval()
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder


def _seeded(build: Callable[[], Any]) -> Any:
    import torch

    torch.manual_seed(0)
    return build()


def bert(folder: Path, head: str = "sequence", num_labels: int = 3) -> Path:
    """BERT-style encoder: ``sequence`` / ``token`` / ``qa`` / ``base`` / ``masked`` head, with a tokenizer."""
    import transformers as tf

    if head == "qa":
        num_labels = 2  # start and end logits: a QA head has exactly two
    cfg = tf.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
                        id2label={i: ["negative", "neutral", "positive", "other"][i % 4] + ("" if i < 4 else str(i))
                                  for i in range(num_labels)})
    cls = {"sequence": tf.BertForSequenceClassification, "token": tf.BertForTokenClassification,
           "qa": tf.BertForQuestionAnswering, "base": tf.BertModel, "masked": tf.BertForMaskedLM}[head]
    _save(_seeded(lambda: cls(cfg)), folder)
    save_tokenizer(folder, cls_sep=True)
    return folder


def gpt2(folder: Path) -> Path:
    """GPT-2-style decoder (``GPT2LMHeadModel``) with a tokenizer."""
    import transformers as tf

    cfg = tf.GPT2Config(vocab_size=64, n_positions=64, n_embd=32, n_layer=2, n_head=2, bos_token_id=5,
                        eos_token_id=6)
    _save(_seeded(lambda: tf.GPT2LMHeadModel(cfg)), folder)
    save_tokenizer(folder, bos="<s>", eos="</s>")
    return folder


def llama(folder: Path) -> Path:
    """Llama-style decoder (rotary positions, grouped-query attention) with a tokenizer."""
    import transformers as tf

    cfg = tf.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         bos_token_id=5, eos_token_id=6, pad_token_id=0)
    _save(_seeded(lambda: tf.LlamaForCausalLM(cfg)), folder)
    save_tokenizer(folder, bos="<s>", eos="</s>")
    return folder


def t5(folder: Path) -> Path:
    """T5-style encoder-decoder (relative position bias, shared embeddings) with a tokenizer."""
    import transformers as tf

    cfg = tf.T5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
                      num_heads=4, decoder_start_token_id=0, pad_token_id=0, eos_token_id=6)
    _save(_seeded(lambda: tf.T5ForConditionalGeneration(cfg)), folder)
    save_tokenizer(folder, eos="</s>")
    return folder


def vit(folder: Path, num_labels: int = 5, image_size: int = 32) -> Path:
    """ViT-style image classifier with a processor config (mean/std/size) and ``id2label``."""
    import transformers as tf

    cfg = tf.ViTConfig(image_size=image_size, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64,
                       id2label={i: f"class_{i}" for i in range(num_labels)})
    _save(_seeded(lambda: tf.ViTForImageClassification(cfg)), folder)
    tf.ViTImageProcessor(size={"height": image_size, "width": image_size}, image_mean=[0.5, 0.4, 0.3],
                         image_std=[0.2, 0.25, 0.3]).save_pretrained(str(folder))
    return folder


def whisper(folder: Path) -> Path:
    """Whisper-style speech encoder-decoder (log-mel input features) with its feature extractor config."""
    import transformers as tf

    cfg = tf.WhisperConfig(vocab_size=64, num_mel_bins=8, encoder_layers=2, encoder_attention_heads=2,
                           decoder_layers=2, decoder_attention_heads=2, d_model=32, encoder_ffn_dim=64,
                           decoder_ffn_dim=64, max_source_positions=16, max_target_positions=32,
                           decoder_start_token_id=1, pad_token_id=0, bos_token_id=5, eos_token_id=6,
                           begin_suppress_tokens=None, suppress_tokens=None)
    _save(_seeded(lambda: tf.WhisperForConditionalGeneration(cfg)), folder)
    tf.WhisperFeatureExtractor(feature_size=8, sampling_rate=16000, hop_length=160, chunk_length=1,
                               n_fft=64).save_pretrained(str(folder))
    return folder


def clip(folder: Path, image_size: int = 32) -> Path:
    """CLIP-style dual encoder (text + vision towers, logits per image/text) with tokenizer and processor."""
    import transformers as tf

    text = tf.CLIPTextConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=2, max_position_embeddings=32, bos_token_id=5, eos_token_id=6,
                             pad_token_id=0)
    vision = tf.CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                 image_size=image_size, patch_size=8)
    cfg = tf.CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16)
    _save(_seeded(lambda: tf.CLIPModel(cfg)), folder)
    save_tokenizer(folder, bos="<s>", eos="</s>")
    tf.CLIPImageProcessor(size={"shortest_edge": image_size},
                          crop_size={"height": image_size, "width": image_size}).save_pretrained(str(folder))
    return folder


def wav2vec2(folder: Path, head: str = "ctc") -> Path:
    """wav2vec2-style audio model (raw waveform input): ``ctc`` or ``classification`` head."""
    import transformers as tf

    cfg = tf.Wav2Vec2Config(vocab_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8),
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                            id2label={0: "yes", 1: "no"}, do_stable_layer_norm=False)
    cls = tf.Wav2Vec2ForCTC if head == "ctc" else tf.Wav2Vec2ForSequenceClassification
    _save(_seeded(lambda: cls(cfg)), folder)
    tf.Wav2Vec2FeatureExtractor(sampling_rate=4000, feature_size=1).save_pretrained(str(folder))
    return folder


BUILDERS: dict[str, Callable[..., Path]] = {
    "bert": bert, "gpt2": gpt2, "llama": llama, "t5": t5, "vit": vit, "whisper": whisper, "clip": clip,
    "wav2vec2": wav2vec2,
}

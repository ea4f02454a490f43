"""Measure which Hugging Face tasks export and validate in which format on this machine (docs/huggingface.md).

    python benchmarks/hf_tasks.py [--formats pt2,onnx,...] [--cases bert-sequence,gpt2-past,...] [--json out.json]

Each case is a tiny checkpoint built and saved in code (``modelport_hf.testing``), exported through
``modelport.export("hf:FOLDER", ...)`` with no input flags, one format at a time; the table cell is the
validation status (``passed``, ``structure-only``, ``failed``, or the error's first words).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

CASES: dict[str, tuple[str, dict, str | None]] = {
    "bert-feature-extraction": ("bert", {"head": "base"}, None),
    "bert-fill-mask": ("bert", {"head": "masked"}, None),
    "bert-text-classification": ("bert", {"head": "sequence"}, None),
    "bert-token-classification": ("bert", {"head": "token"}, None),
    "bert-question-answering": ("bert", {"head": "qa"}, None),
    "vit-image-classification": ("vit", {}, None),
    "wav2vec2-ctc": ("wav2vec2", {"head": "ctc"}, None),
    "wav2vec2-audio-classification": ("wav2vec2", {"head": "classification"}, None),
    "clip-zero-shot": ("clip", {}, None),
    "gpt2-text-generation": ("gpt2", {}, None),
    "gpt2-text-generation-with-past": ("gpt2", {}, "text-generation-with-past"),
    "llama-text-generation-with-past": ("llama", {}, "text-generation-with-past"),
    "t5-text2text-generation": ("t5", {}, None),
    "t5-text2text-generation-with-past": ("t5", {}, "text2text-generation-with-past"),
    "whisper-asr": ("whisper", {}, None),
    "whisper-asr-with-past": ("whisper", {}, "automatic-speech-recognition-with-past"),
}
FORMATS = ("pt2", "onnx", "openvino", "torchscript", "tflite", "executorch", "coreml")


def _cell(result: object) -> str:
    statuses = {}
    for key, r in result.items():  # type: ignore[attr-defined]
        statuses[key] = r.status if r.status != "error" else "error: " + (r.error or "")[:90]
    if len(statuses) == 1:
        return next(iter(statuses.values()))
    if len(set(statuses.values())) == 1:
        return next(iter(statuses.values())) + f" ({len(statuses)} artifacts)"
    return "; ".join(f"{k.split('/')[0]}: {v}" for k, v in statuses.items())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--json")
    args = parser.parse_args()
    import modelport
    from modelport.plugins import get_plugin_manager
    from modelport_hf import testing

    host = get_plugin_manager()
    rows = {r.name: r for r in host.format_statuses()}
    formats = [f for f in args.formats.split(",") if f in rows and rows[f].can_export]
    table: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            kind, kwargs, task = CASES[case]
            folder = testing.BUILDERS[kind](Path(tmp) / case, **kwargs)
            table[case] = {}
            for fmt in formats:
                t0 = time.perf_counter()
                try:
                    result = modelport.export(f"hf:{folder}", [fmt], output_dir=Path(tmp) / "out" / case / fmt,
                                              task=task, host=host)
                    cell = _cell(result)
                except Exception as exc:  # a configuration error is a cell, not the end of the run
                    cell = f"error: {type(exc).__name__}: {str(exc)[:90]}"
                table[case][fmt] = cell
                print(f"{case:36s} {fmt:12s} {time.perf_counter() - t0:6.1f}s {cell}", file=sys.stderr, flush=True)
    print("| case | " + " | ".join(formats) + " |")
    print("|---|" + "---|" * len(formats))
    for case, cells in table.items():
        print(f"| {case} | " + " | ".join(cells[f] for f in formats) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

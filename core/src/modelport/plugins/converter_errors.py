"""Keep the actionable part of a converter's error: one line for stderr, the full text for the record.

Converters write pages, and their first line is often the least useful (OpenVINO: "Check 'false' failed at
src/frontends/..."; torch.export: "Constraints violated (batch)!"). :func:`explain` finds what a user can act on:

* torch.export's guard explanation: which expression specialised the batch, and the user's line that did it;
* OpenVINO's list of operations it has no conversion rule for;
* a ``DynamicCache`` (transformers' KV cache object) among the outputs: export with ``use_cache=False``, or the
  decoder with its cache as explicit inputs and outputs.

Plugins raise ``converter_error(prefix, exc)``; the core prints the line, and keeps ``detail`` in the failed
format's record (shown with ``--debug``).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator

from modelport.errors import ExportFailed

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
DETAIL_LIMIT = 20_000
CACHE_HINT = ("the model returns a transformers DynamicCache (its KV cache): export with use_cache=False "
              "(e.g. --model-kwargs or config.use_cache=False), or export the decoder with past keys/values as "
              "explicit inputs and present keys/values as outputs")


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in _ANSI.sub("", text).splitlines() if ln.strip()]


def full_text(exc: BaseException) -> str:
    """The exception and its causes, every line (for the record)."""
    parts = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        parts.append(f"{type(cur).__name__}: {_ANSI.sub('', str(cur)).strip()}")
        cur = cur.__cause__ or cur.__context__
    return "\n--- caused by ---\n".join(parts)[:DETAIL_LIMIT]


def openvino_unconverted(text: str) -> str | None:
    """OpenVINO's summary of operations it could not convert, as one clause."""
    lines = _lines(text)
    if "Summary:" not in lines:
        return None
    summary = lines[lines.index("Summary:") + 1:]
    items = [ln.removeprefix("-- ").strip() for ln in summary if ln.startswith("--")]
    return "; ".join(items) if items else None


_SHAPES_LOGGER = "torch.fx.experimental.symbolic_shapes"
_GUARD = re.compile(r"eval (.+?) \[guard added\].*?\(([^()]+?:\d+ in \w+)\)")


class _GuardHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.INFO)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
        except Exception:  # a log record that cannot format itself is not ours to fix
            return
        m = _GUARD.search(msg)
        if m:
            where = m.group(2).strip().rsplit("/", 1)[-1]  # torch shortens the path oddly; the file name is enough
            self.sink.append(f"guard {m.group(1)} added at {where}")


@contextlib.contextmanager
def guard_log() -> Iterator[list[str]]:
    """Collect the guards torch.export adds, with the user's line for each ("at model.py:11 in forward").

    torch.export's error says *that* a dynamic dimension was specialised; its shape log says *where*.
    """
    logger = logging.getLogger(_SHAPES_LOGGER)
    sink: list[str] = []
    handler = _GuardHandler(sink)
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False  # collected here, not printed
    logger.addHandler(handler)
    try:
        yield sink
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def guard_explanation(text: str) -> str | None:
    """torch.export's reason a dynamic dimension was specialised, with the user's line when it names one."""
    lines = _lines(text)
    reason = next((ln.removeprefix("- ") for ln in lines
                   if "specialized it to be a constant" in ln or "satisfy the generated guard" in ln
                   or "Could not guard on data-dependent expression" in ln), None)
    if reason is None:
        return None
    reason = re.sub(r"\s*If you're using mark_dynamic.*$", "", reason)
    frame = None
    for i, ln in enumerate(lines):
        m = re.match(r'File "([^"]+)", line (\d+), in (\w+)', ln)
        if m and "site-packages" not in m.group(1) and "/torch/" not in m.group(1):
            code = lines[i + 1] if i + 1 < len(lines) and not lines[i + 1].startswith("File ") else ""
            frame = f"{m.group(1).rsplit('/', 1)[-1]}:{m.group(2)} in {m.group(3)}" + (f": {code}" if code else "")
    return reason + (f" (at {frame})" if frame else "")


def mentions_cache(text: str) -> bool:
    return "DynamicCache" in text or "StaticCache" in text or "EncoderDecoderCache" in text


def explain(exc: BaseException, guards: list[str] | None = None) -> str:
    """The most actionable one-line summary of ``exc`` (falls back to its first line).

    ``guards`` (from :func:`guard_log`) add where a specialised dimension's guard came from.
    """
    text = full_text(exc)
    parts = []
    ov = openvino_unconverted(text)
    if ov:
        parts.append(f"OpenVINO cannot convert: {ov}")
    guard = guard_explanation(text)
    if guard:
        if guards and "(at " not in guard:
            guard += f" ({guards[-1]})"
        parts.append(guard)
    if not parts:
        lines = _lines(str(exc))
        first = next((ln for ln in lines if not ln.startswith("Check '")), lines[0] if lines else "")
        parts.append(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)
    if mentions_cache(text):
        parts.append(CACHE_HINT)
    return " — ".join(parts)


def converter_error(prefix: str, exc: BaseException, suffix: str = "", limit: int = 800,
                    guards: list[str] | None = None) -> ExportFailed:
    """ExportFailed with ``prefix: <actionable line><suffix>`` and the full text as ``detail`` (for the record)."""
    err = ExportFailed(f"{prefix}: {explain(exc, guards)}"[: max(limit - len(suffix), 200)] + suffix)
    detail = full_text(exc)
    if guards:
        detail += "\n--- guards torch.export added ---\n" + "\n".join(guards[-50:])
    err.detail = detail  # type: ignore[attr-defined]
    return err

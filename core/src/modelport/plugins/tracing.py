"""Hook tracing for plugin authors: ``MODELPORT_TRACE_PLUGINS=1 modelport export ...``.

Every hook call prints, on the terminal's stderr, which hook ran with what arguments, which plugins
implement it (in call order), what it returned or raised, and how long it took — as datasette's
``DATASETTE_TRACE_PLUGINS`` does, through pluggy's ``add_hookcall_monitoring``. The lines go to the stderr
the command started with, so they stay visible while modelport captures what converters print.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

ENV = "MODELPORT_TRACE_PLUGINS"
_LIMIT = 300


def enabled() -> bool:
    """Whether ``MODELPORT_TRACE_PLUGINS`` asks for tracing (any value but empty, 0, false, no)."""
    return os.environ.get(ENV, "").strip().lower() not in ("", "0", "false", "no")


def _terminal_stderr() -> TextIO:
    """The stderr the command started with: a copy of fd 2 when sys.stderr is fd 2, else sys.stderr itself."""
    try:
        if sys.stderr.fileno() == 2:
            return os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    except (AttributeError, OSError, ValueError):
        pass
    return sys.stderr


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a plugin's object with a broken __repr__ must not break the trace
        text = f"<{type(value).__name__}: repr raised {type(exc).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= _LIMIT else text[: _LIMIT - 3] + "..."


class Tracer:
    """Prints one line before and one after each hook call; ``call`` traces a single implementation."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.out = stream or _terminal_stderr()
        self._started: list[float] = []

    def before(self, hook_name: str, hook_impls: list[Any], kwargs: dict[str, Any]) -> None:
        args = ", ".join(f"{k}={_short(v)}" for k, v in kwargs.items() if k != "register")
        impls = ", ".join(impl.plugin_name for impl in reversed(hook_impls)) or "none"
        print(f"modelport trace: {hook_name}({args}) -> plugins: {impls}", file=self.out, flush=True)
        self._started.append(time.perf_counter())

    def after(self, outcome: Any, hook_name: str, hook_impls: list[Any], kwargs: dict[str, Any]) -> None:
        elapsed = time.perf_counter() - self._started.pop() if self._started else 0.0
        exc = getattr(outcome, "exception", None)
        what = f"raised {type(exc).__name__}: {_short(str(exc))}" if exc is not None else \
            f"returned {_short(outcome.get_result())}"
        print(f"modelport trace: {hook_name} {what} ({elapsed * 1000:.1f} ms)", file=self.out, flush=True)

    def call(self, hook_name: str, impl: Any, **kwargs: Any) -> Any:
        """Call one hook implementation directly (as the core does for registration and metadata), traced."""
        import pluggy

        self.before(hook_name, [impl], kwargs)
        outcome = pluggy.Result.from_call(lambda: impl.function(**kwargs))
        self.after(outcome, hook_name, [impl], kwargs)
        return outcome.get_result()


def install(pm: Any, stream: TextIO | None = None) -> Tracer:
    """Trace every hook call of the pluggy manager ``pm`` to ``stream`` (default: the terminal's stderr)."""
    tracer = Tracer(stream)
    pm.add_hookcall_monitoring(tracer.before, tracer.after)
    return tracer

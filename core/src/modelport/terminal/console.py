"""What a modelport command shows in a terminal, and what it keeps out of it.

Converters and models print: C++ libraries write to file descriptors 1 and 2, Python libraries draw progress bars
and warnings on ``sys.stderr``, a model's ``forward`` may ``print()``. None of that is modelport's output: while a
command works, both descriptors (and the Python streams) go to a temporary file — the text lands in the export's
record, or on stderr with ``--debug`` — and only our own progress line reaches the terminal, through a copy of
the original stderr made before the capture. Our tables and JSON are written after the work, when the real
streams are back. ``MODELPORT_NO_CAPTURE=1`` lets everything through (for debugging a converter).

Everything here is cheap to import: ``modelport formats`` stays fast.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_STDERR_COPY: Any = None
# True while a command given --debug runs: set by the CLI from its own arguments (not sys.argv, so it is right
# in-process under click's CliRunner too).
_DEBUG = False


def debug_enabled() -> bool:
    """Whether the running command was given ``--debug`` (tracebacks and captured output are shown)."""
    return _DEBUG


def set_debug(on: bool) -> bool:
    """Set the ``--debug`` state for the command about to run; returns the previous one to restore."""
    global _DEBUG
    previous, _DEBUG = _DEBUG, on
    return previous


def escape(value: Any) -> str:
    """``value`` as text that rich prints literally: ``[runtime]`` stays ``[runtime]``, never markup."""
    from rich.markup import escape as _escape

    return _escape("" if value is None else str(value))


def stderr_console() -> Any:
    """A rich console on a copy of the original stderr, so progress shows while stderr itself is captured."""
    global _STDERR_COPY
    from rich.console import Console

    if _STDERR_COPY is None:
        try:
            _STDERR_COPY = os.fdopen(os.dup(2), "w", buffering=1)
        except OSError:
            _STDERR_COPY = sys.stderr
        else:
            import atexit

            atexit.register(_STDERR_COPY.close)  # else "ResourceWarning: unclosed file" at exit
    return Console(file=_STDERR_COPY, highlight=False)


def stdout_console() -> Any:
    """The console for tables on stdout: the terminal's width in a terminal (or ``$COLUMNS``), wide when piped."""
    from rich.console import Console

    wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(highlight=False, width=200 if wide else None)


def fmt_seconds(s: float | None) -> str:
    """Seconds as a person reads them: ``0.42 s``, ``3.1 s``, ``2 min 05 s``."""
    if s is None:
        return ""
    if s < 10:
        return f"{s:.2f} s" if s < 1 else f"{s:.1f} s"
    if s < 120:
        return f"{s:.0f} s"
    return f"{int(s // 60)} min {int(s % 60):02d} s"


def shown_path(path: str | Path | None) -> str:
    """A path relative to the current folder when it is inside it, else as given."""
    if path is None:
        return ""
    p = Path(path)
    try:
        rel = os.path.relpath(p.resolve(), Path.cwd().resolve())
    except (ValueError, OSError):
        return str(p)
    return str(p) if rel.startswith("..") else rel


class CapturedOutput:
    """Text that converters wrote to stdout/stderr while captured (C++ libraries included)."""

    def __init__(self) -> None:
        self.text = ""

    def tail(self, limit: int = 4000) -> str:
        from modelport.terminal.redaction import redact

        return redact(self.text[-limit:])


def _swap_python_streams(buf: io.StringIO) -> dict[str, Any]:
    """Point sys.stdout/sys.stderr at ``buf`` where they are not the process's descriptors 1 and 2 (an
    in-process test runner's buffers): the descriptor capture alone would miss what Python code prints there."""
    swapped: dict[str, Any] = {}
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        try:
            real = stream.fileno() == fd
        except Exception:
            real = False
        if not real:
            swapped[name] = stream
            setattr(sys, name, buf)
    return swapped


_OURS: list[Any] = []  # innermost capture last: the stream our own progress lines go to while it runs


def say(message: str) -> None:
    """One line of modelport's own progress on stderr — also while third-party output is being captured."""
    stream = _OURS[-1] if _OURS else sys.stderr
    stream.write(message + "\n")
    stream.flush()


@contextlib.contextmanager
def capture_fds() -> Iterator[CapturedOutput]:
    """Redirect file descriptors 1 and 2 to a temp file, so converter logs land in export.json, not the terminal.

    Set ``MODELPORT_NO_CAPTURE=1`` to let them through.
    """
    out = CapturedOutput()
    if os.environ.get("MODELPORT_NO_CAPTURE"):
        yield out
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    buf = io.StringIO()
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        swapped = _swap_python_streams(buf)
        # where our own lines (say()) go meanwhile: the runner's stream in-process, else the saved descriptor 2
        _OURS.append(swapped.get("stderr") or os.fdopen(saved[1], "w", buffering=1, closefd=False))
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            yield out
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            for name, stream in swapped.items():
                setattr(sys, name, stream)
            with contextlib.suppress(Exception):
                _OURS.pop().flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            tmp.seek(0)
            out.text = tmp.read().decode("utf-8", "replace") + buf.getvalue()


class _Spinner:
    """One spinner line on the console. Unlike ``Console.status`` it leaves sys.stdout/sys.stderr alone: rich's
    Live would route Python-level prints through the console to the terminal, past the capture."""

    def __init__(self, console: Any) -> None:
        from rich.live import Live
        from rich.spinner import Spinner

        self.spinner = Spinner("dots", text="starting", style="status.spinner")
        self.live = Live(self.spinner, console=console, refresh_per_second=12.5, transient=True,
                         redirect_stdout=False, redirect_stderr=False)

    def start(self) -> None:
        self.live.start()

    def update(self, text: str) -> None:
        self.spinner.update(text=text)

    def stop(self) -> None:
        self.live.stop()


class CommandProgress:
    """While a command works: third-party output captured, and our progress as one rich spinner line on stderr
    (interactive terminals only; silent with ``quiet``). ``stop()`` ends both; with ``--debug`` the captured
    text is then shown on stderr."""

    def __init__(self, quiet: bool, *, capture: bool = True) -> None:
        self.status: Any = None
        self.captured: CapturedOutput | None = None
        self._capture: Any = None
        if not quiet and sys.stderr.isatty():
            self.status = _Spinner(stderr_console())
            self.status.start()
        if capture:
            self._capture = capture_fds()
            self.captured = self._capture.__enter__()
        _ACTIVE.append(self)

    def __call__(self, message: str) -> None:
        if self.status is not None:
            self.status.update(escape(message))

    def __enter__(self) -> CommandProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if self._capture is not None:
            capture, self._capture = self._capture, None
            capture.__exit__(None, None, None)
        if self.status is not None:
            self.status.stop()
            self.status = None
        if self.captured is not None and self.captured.text.strip() and _DEBUG:
            from modelport.terminal.redaction import redact

            sys.stderr.write("captured third-party output:\n" + redact(self.captured.text).rstrip() + "\n")
            sys.stderr.flush()


_ACTIVE: list[CommandProgress] = []


def end_captures() -> None:
    """Stop every capture still running (newest first): a command that raised gets its terminal back."""
    while _ACTIVE:
        _ACTIVE[-1].stop()


def quiet_work() -> CommandProgress:
    """``with quiet_work():`` around a command's work: third-party output captured, no spinner."""
    return CommandProgress(True)

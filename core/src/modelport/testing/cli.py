"""Run the ``modelport`` CLI inside the test process, as a fresh ``python -m modelport`` would see it.

:func:`modelport.testing.kit.run_cli` uses this by default: a subprocess costs an interpreter start and a torch
import (seconds on a small machine) per call, an in-process run costs neither and its failures are debuggable.
What a command reads from or changes in its process is set up as a child would have it and put back
afterwards: the environment (``env`` replaces it, as ``subprocess.run(env=...)`` does), the working folder,
the import path (``PYTHONPATH`` entries and the working folder first, as ``python -m`` puts them), the
process-wide plugin host (rebuilt for the run, so entry points and ``MODELPORT_*`` switches are read
again), the commands plugins added to the group (``register_commands``), modules imported from outside
the installed packages (a plugin written into a temp folder, a model file) and torch's thread count.

What cannot be faked in a process stays a subprocess: import weight, signals, crashes, a terminal
(``run_cli(..., in_process=False)`` or :mod:`subprocess` directly).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["IMPORT_TIME_ENV_MODULES", "run_cli_in_process"]

#: Top-level modules that read their configuration from the environment when first imported
#: (huggingface_hub: HF_ENDPOINT, HF_HOME, HF_HUB_DISABLE_XET... into ``huggingface_hub.constants``). A run
#: given its own ``env`` imports them afresh, and they are forgotten afterwards, as a new process would see
#: them. Add a library's name here when a test of yours sets such a variable.
IMPORT_TIME_ENV_MODULES: list[str] = ["huggingface_hub"]


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so the CLI's own ``except Exception`` does not swallow it."""


def run_cli_in_process(args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | Path | None = None,
                       timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``modelport ARGS`` in this process under click's ``CliRunner``; the result as a subprocess gives it.

    ``returncode``, ``stdout`` and ``stderr`` are what the real command gives (an exception that escaped the
    CLI prints its traceback on stderr and exits 1, as the interpreter would). ``timeout`` is enforced with
    an alarm in the main thread and raises :class:`subprocess.TimeoutExpired`.
    """
    from click.testing import CliRunner

    from modelport.cli.app import main

    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:
        runner = CliRunner()
    argv = [str(a) for a in args]
    with _process_state(env, cwd), _alarm(timeout, argv):
        result = runner.invoke(main, argv, prog_name="modelport", catch_exceptions=True)
    stderr = result.stderr
    code = result.exit_code
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        stderr += "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        code = 1
    return subprocess.CompletedProcess(["modelport", *argv], code, result.stdout, stderr)


@contextlib.contextmanager
def _alarm(timeout: float | None, argv: list[str]) -> Iterator[None]:
    if not timeout or threading.current_thread() is not threading.main_thread():
        yield
        return

    def fire(signum: int, frame: Any) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    except _Timeout:
        raise subprocess.TimeoutExpired(["modelport", *argv], timeout) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _process_state(env: Mapping[str, str] | None, cwd: str | Path | None) -> Iterator[None]:
    """The process as ``python -m modelport`` started with ``env`` in ``cwd`` would have it; restored after."""
    from modelport.folder import store
    from modelport.plugins import host as plugins

    saved_env, saved_path, saved_modules = dict(os.environ), list(sys.path), set(sys.modules)
    saved_cwd, saved_host = os.getcwd(), plugins._HOST
    from modelport.cli.app import main as group  # plugin commands (register_commands) are added to it on first use

    saved_commands = dict(group.commands)
    saved_loaded = group.__dict__.get("_plugin_commands_loaded")
    saved_load_flag = group.__dict__.get("load_plugin_commands")
    torch_threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update({str(k): str(v) for k, v in env.items()})
            _forget(IMPORT_TIME_ENV_MODULES)
        if cwd is not None:
            os.chdir(cwd)
        extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[0:0] = [os.getcwd(), *(str(Path(p).resolve()) for p in extra)]
        importlib.invalidate_caches()
        plugins._HOST = None
        store.INTERRUPTED = False
        # a fresh process starts with the core commands only; plugin commands load again with this run's host
        for name in [n for n, c in group.commands.items()
                     if not (getattr(c.callback, "__module__", "") or "modelport.").startswith("modelport.")]:
            del group.commands[name]
        group._plugin_commands_loaded = False  # type: ignore[attr-defined]
        group.__dict__.pop("load_plugin_commands", None)  # the class default, as in a fresh process
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.path[:] = saved_path
        importlib.invalidate_caches()
        _forget_modules_from_outside(saved_modules)
        if env is not None:
            _forget(IMPORT_TIME_ENV_MODULES)
        plugins._HOST = saved_host
        store.INTERRUPTED = False
        group.commands.clear()
        group.commands.update(saved_commands)
        if saved_loaded is None:
            group.__dict__.pop("_plugin_commands_loaded", None)
        else:
            group._plugin_commands_loaded = saved_loaded  # type: ignore[attr-defined]
        if saved_load_flag is not None:
            group.load_plugin_commands = saved_load_flag  # type: ignore[attr-defined]
        if torch_threads is not None and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(torch_threads)


def _forget_modules_from_outside(before: set[str]) -> None:
    """Drop modules this run imported from outside the installed packages (a temp plugin, a model file).

    A fresh process would import them again; keeping them would hand the next run a stale module of the
    same name (two tests writing different ``plugin.py`` files).
    """
    installed: dict[str, bool] = {}
    for name in [n for n in sys.modules if n not in before]:
        top = name.partition(".")[0]
        if top not in installed:
            installed[top] = _is_installed(top)
        if not installed[top]:
            sys.modules.pop(name, None)


def _forget(tops: list[str]) -> None:
    for name in [n for n in sys.modules if n.partition(".")[0] in tops]:
        sys.modules.pop(name, None)


def _is_installed(top: str) -> bool:
    """Whether ``top`` is importable from the (restored) import path, not from sys.modules."""
    if top in sys.builtin_module_names:
        return True
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            if find(top, None) is not None:
                return True
        except Exception:
            continue
    return False

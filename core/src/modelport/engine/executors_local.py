"""``--jobs N``: an export's formats in N worker processes on this machine (see :mod:`modelport.engine.executors`).

Workers are fresh interpreters (never forked from a parent that has run torch threads, never re-running the
caller's ``__main__``); each receives the shared state once and then exports formats one after another, sending progress lines and each
format's result back over its pipe. What a worker's libraries print goes to its log, never to the terminal.
A worker that dies fails the format it was exporting (one line, with the signal); a new worker takes the rest.
Ctrl-C stops every worker (they remove their staging folders) and removes what a killed one left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.engine.jobs import (
    FormatJobs,
    Payload,
    Progress,
    clean_staging,
    crashed_result,
    export_format,
    unpack,
    usable_cores,
)

if TYPE_CHECKING:  # pragma: no cover
    from modelport.engine.pipeline import FormatResult

_STOP_GRACE_S = 10.0


@dataclass
class _Worker:
    proc: Any  # subprocess.Popen
    conn: Any  # multiprocessing.connection.Connection over a socketpair
    log: Path
    fmt: str | None = None
    ready: bool = False
    dead: bool = False
    restart: bool = False  # it died exporting a format: a new worker takes its place
    threads: int = 1


def worker_entry() -> None:
    """``python -c "...worker_entry()" FD THREADS``: a worker process talking over the inherited socket FD."""
    from multiprocessing.connection import Connection

    worker_main(Connection(int(sys.argv[1])), int(sys.argv[2]))


def worker_main(conn: Any, threads: int) -> None:
    """A worker process: the shared state loaded, then one format per ``run`` message."""
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)
    sys.path[:0] = [p for p in conn.recv() if p not in sys.path]  # the parent's sys.path: its plugins, its models
    import torch

    from modelport.plugins.host import get_plugin_manager

    torch.set_num_threads(threads)
    host = get_plugin_manager()  # while the parent still loads the model (see prestart)
    payload: Payload = conn.recv()
    try:
        jobs = unpack(payload)
        missing = [f for f in payload.formats if f not in host.formats]
        if missing:
            raise RuntimeError(f"the worker does not know format(s) {', '.join(missing)}")
    except Exception as exc:
        conn.send(("fatal", f"{type(exc).__name__}: {str(exc).strip()[:200]}"))
        return
    conn.send(("ready",))

    def progress(line: str) -> None:
        conn.send(("progress", line))

    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            sys.stdout.flush()
            os._exit(0)  # at once: nothing is left to send, and library threads must not hold the exit up
        _, fmt, produced = msg
        try:
            result = export_format(host, jobs, fmt, produced, progress, threads=threads)
        except Exception as exc:  # what the pipeline would have raised here: this format fails, one line
            result = crashed_result(jobs, fmt, f"{type(exc).__name__}: {str(exc).strip()[:300]}")
        try:
            conn.send(("result", fmt, result))
        except Exception as exc:  # a result that cannot be pickled back: its folder is written, say so
            conn.send(("result", fmt, crashed_result(jobs, fmt, f"its result could not be sent back ({exc})")))


def _interrupted(signum: int, frame: object) -> None:
    """Ctrl-C (or the parent's SIGINT) once: unwind so the staging folder is removed; a second one is ignored."""
    from modelport.folder import store

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    store.INTERRUPTED = True
    raise KeyboardInterrupt


_WARM: list[_Worker] = []  # started by prestart(), before the model is loaded; taken by run_in_workers
_WARM_DIR: list[tempfile.TemporaryDirectory[str]] = []


def prestart(jobs: int | None, n_formats: int) -> None:
    """Start the workers an export will use now, so their start-up overlaps loading the model and the reference
    run (the CLI calls this; :func:`release_warm` stops what was not used)."""
    from modelport.engine.jobs import resolve_jobs

    n = resolve_jobs(jobs, n_formats)
    if n < 2 or _WARM:
        return
    _WARM_DIR.append(tempfile.TemporaryDirectory(prefix="modelport-workers-"))
    threads = max(1, usable_cores() // n)
    _WARM.extend(_start(None, threads, Path(_WARM_DIR[-1].name)) for _ in range(n))


def release_warm() -> None:
    """Stop the prestarted workers no export took, and remove their logs."""
    workers, _WARM[:] = list(_WARM), []
    for w in workers:  # they hold nothing yet: no payload, no staging folder
        w.proc.kill()
        w.proc.wait()
        w.conn.close()
    while _WARM_DIR:
        _WARM_DIR.pop().cleanup()


def _start(payload: Payload | None, threads: int, logdir: Path) -> _Worker:
    """A fresh interpreter (nothing inherited from this process's torch threads, and never the user's
    ``__main__`` run again) connected by a socket pair; its output goes to its log."""
    import socket
    import subprocess
    from multiprocessing.connection import Connection

    ours, theirs = socket.socketpair()
    fd, log_name = tempfile.mkstemp(prefix="worker-", suffix=".log", dir=logdir)
    code = "from modelport.engine.executors_local import worker_entry; worker_entry()"
    try:
        proc = subprocess.Popen([sys.executable, "-c", code, str(theirs.fileno()), str(threads)],
                                stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT,
                                pass_fds=(theirs.fileno(),))
    finally:
        theirs.close()
        os.close(fd)
    conn = Connection(ours.detach())
    conn.send(list(sys.path))
    if payload is not None:
        conn.send(payload)
    return _Worker(proc, conn, Path(log_name), threads=threads)


def run_in_workers(jobs: FormatJobs, payload: Payload, n: int, done: dict[str, FormatResult],
                   progress: Progress, run_here: Callable[[str, int], FormatResult]) -> list[str]:
    """Export ``jobs`` in ``n`` worker processes, filling ``done``; notes when workers could not take part (the
    formats then run here, in order)."""
    threads = max(1, usable_cores() // n)
    pending = jobs.order()
    progress(f"exporting {len(pending)} formats in {n} worker processes")
    with tempfile.TemporaryDirectory(prefix="modelport-workers-") as tmp:
        workers = [w for w in _WARM if w.threads == threads and w.proc.poll() is None][:n]
        _WARM[:] = [w for w in _WARM if w not in workers]
        for w in workers:
            w.conn.send(payload)
        workers += [_start(payload, threads, Path(tmp)) for _ in range(n - len(workers))]
        try:
            return _schedule(jobs, workers, pending, done, progress, lambda: _start(payload, threads, Path(tmp)),
                             lambda fmt: run_here(fmt, threads))
        except BaseException:
            _stop_all(workers, interrupt=True)
            raise
        finally:
            if _stop_all(workers, interrupt=False):
                clean_staging(jobs)


def _schedule(jobs: FormatJobs, workers: list[_Worker], pending: list[str], done: dict[str, FormatResult],
              progress: Progress, restart: Callable[[], _Worker],
              run_here: Callable[[str], FormatResult]) -> list[str]:
    """Hand ready formats to idle workers and collect what they send; here, in order, when no worker is left."""
    notes: list[str] = []
    while pending or any(w.fmt for w in workers):
        ready = jobs.ready(pending, done)
        if not ready and pending and not any(w.fmt for w in workers):
            ready = [pending[0]]  # upstream formats that cannot come first (a cycle): as given
        for w in workers:
            if w.ready and w.fmt is None and not w.dead and ready:
                w.fmt = ready.pop(0)
                pending.remove(w.fmt)
                w.conn.send(("run", w.fmt, jobs.produced(w.fmt, done)))
        if workers:
            _collect(jobs, workers, done, progress, notes, timeout=None)
        elif ready:  # no worker could take part
            pending.remove(ready[0])
            done[ready[0]] = run_here(ready[0])
        crashed = [w for w in workers if w.restart]
        workers[:] = [w for w in workers if not w.dead]
        if pending and crashed:
            workers.append(restart())
    return notes


def _collect(jobs: FormatJobs, workers: list[_Worker], done: dict[str, FormatResult], progress: Progress,
             notes: list[str], timeout: float | None) -> None:
    """Read what workers sent (waiting up to ``timeout``); bury the ones that died."""
    from multiprocessing.connection import wait

    live = {w.conn: w for w in workers if not w.dead}
    for obj in wait(list(live), timeout) if live else ():
        w = live[obj]
        note = _receive(w, done, progress)
        if note is not None:
            notes.append(note)
            w.dead = True
            with contextlib.suppress(OSError):
                w.conn.send(("stop",))
        elif w.dead:
            if not w.ready:
                notes.append(f"note: a worker process died while starting ({_how(w)}); its formats ran here")
            _bury(jobs, w, done, progress)


def _receive(w: _Worker, done: dict[str, FormatResult], progress: Progress) -> str | None:
    """Read what a worker sent; a note means it could not load the shared state."""
    try:
        msg = w.conn.recv()
    except (EOFError, OSError):
        w.dead = True  # its end of the socket closed: the process is gone or going
        return None
    if msg[0] == "ready":
        w.ready = True
    elif msg[0] == "progress":
        progress(msg[1])
    elif msg[0] == "result":
        done[msg[1]] = msg[2]
        w.fmt = None
    elif msg[0] == "fatal":
        return f"note: a worker process could not load the model ({msg[1]}); its formats ran here"[:300]
    return None


def _bury(jobs: FormatJobs, w: _Worker, done: dict[str, FormatResult], progress: Progress) -> None:
    """A worker died: fail the format it had (one line naming how it died), remove what it left half-written."""
    how = _how(w)
    if w.fmt is not None:
        log = w.log.read_text(errors="replace") if w.log.exists() else ""
        done[w.fmt] = crashed_result(jobs, w.fmt, f"the export worker died ({how}) before it finished", log)
        progress(f"{w.fmt}: the export worker died ({how})")
        from modelport.folder.store import remove_stale_staging

        remove_stale_staging(jobs.targets[w.fmt].parent)
        w.fmt = None
        w.restart = True


def _how(w: _Worker) -> str:
    with contextlib.suppress(Exception):
        w.proc.wait(5)
    code = w.proc.returncode
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"


def _stop_all(workers: list[_Worker], *, interrupt: bool) -> bool:
    """Ask every worker to stop (SIGINT when interrupted: it unwinds and removes its staging folder); True when
    one had to be killed or was interrupted (what it left is then removed)."""
    stopped = False
    for w in workers:
        if w.proc.poll() is not None:
            continue
        with contextlib.suppress(OSError, ValueError):
            if interrupt:
                w.proc.send_signal(signal.SIGINT)
                stopped = True
            else:
                w.conn.send(("stop",))
    deadline = time.monotonic() + _STOP_GRACE_S
    for w in workers:
        try:
            w.proc.wait(max(0.1, deadline - time.monotonic()))
        except Exception:  # subprocess.TimeoutExpired: it does not stop
            w.proc.kill()
            w.proc.wait()
            stopped = True
        with contextlib.suppress(OSError):
            w.conn.close()
    return stopped

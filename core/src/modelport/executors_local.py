"""``--jobs N``: an export's formats in N worker processes on this machine (see :mod:`modelport.executors`).

Workers are fresh interpreters (``spawn``: nothing inherited from a parent that has run torch threads); each
receives the shared state once and then exports formats one after another, sending progress lines and each
format's result back over its pipe. What a worker's libraries print goes to its log, never to the terminal.
A worker that dies fails the format it was exporting (one line, with the signal); a new worker takes the rest.
Ctrl-C stops every worker (they remove their staging folders) and removes what a killed one left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.executors import FormatJobs, Payload, Progress, crashed_result, export_format, unpack, usable_cores

if TYPE_CHECKING:  # pragma: no cover
    from modelport.pipeline import FormatResult

_STOP_GRACE_S = 10.0


@dataclass
class _Worker:
    proc: Any
    conn: Any
    log: Path
    fmt: str | None = None
    ready: bool = False


def worker_main(conn: Any, log_path: str, threads: int) -> None:
    """A worker process: output to its log, the shared state loaded, then one format per ``run`` message."""
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)
    import torch

    torch.set_num_threads(threads)
    payload: Payload = conn.recv()
    try:
        jobs = unpack(payload)
        from modelport.plugins import get_plugin_manager

        host = get_plugin_manager()
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
            return
        _, fmt, produced = msg
        try:
            result = export_format(host, jobs, fmt, produced, progress, threads=threads)
        except Exception as exc:  # what the pipeline would have raised here: this format fails, one line
            result = crashed_result(fmt, f"{type(exc).__name__}: {str(exc).strip()[:300]}")
        try:
            conn.send(("result", fmt, result))
        except Exception as exc:  # a result that cannot be pickled back: its folder is written, say so
            conn.send(("result", fmt, crashed_result(fmt, f"its result could not be sent back ({exc})")))


def _interrupted(signum: int, frame: object) -> None:
    """Ctrl-C (or the parent's SIGINT) once: unwind so the staging folder is removed; a second one is ignored."""
    from modelport import store

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    store.INTERRUPTED = True
    raise KeyboardInterrupt


def _start(ctx: Any, payload: Payload, threads: int, logdir: Path) -> _Worker:
    parent_conn, child_conn = ctx.Pipe()
    log = Path(tempfile.mkstemp(prefix="worker-", suffix=".log", dir=logdir)[1])
    proc = ctx.Process(target=worker_main, args=(child_conn, str(log), threads), daemon=True)
    proc.start()
    child_conn.close()
    parent_conn.send(payload)
    return _Worker(proc, parent_conn, log)


def run_in_workers(jobs: FormatJobs, payload: Payload, n: int, done: dict[str, FormatResult],
                   progress: Progress) -> str | None:
    """Export ``jobs`` in ``n`` worker processes, filling ``done``; a note when the workers could not load the
    shared state (the caller then exports the rest here, in order)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    threads = max(1, usable_cores() // n)
    pending = jobs.order()
    progress(f"exporting {len(pending)} formats in {n} worker processes")
    with tempfile.TemporaryDirectory(prefix="modelport-workers-") as tmp:
        workers = [_start(ctx, payload, threads, Path(tmp)) for _ in range(n)]
        try:
            return _schedule(jobs, workers, pending, done, progress, lambda: _start(ctx, payload, threads, Path(tmp)))
        except BaseException:
            _stop_all(workers, interrupt=True)
            raise
        finally:
            if _stop_all(workers, interrupt=False):
                _clean_staging(jobs)


def _schedule(jobs: FormatJobs, workers: list[_Worker], pending: list[str], done: dict[str, FormatResult],
              progress: Progress, restart: Any) -> str | None:
    """Hand ready formats to idle workers and collect what they send until every format is done."""
    from multiprocessing.connection import wait

    while pending or any(w.fmt for w in workers):
        for w in workers:
            ready = jobs.ready([f for f in pending if f not in done], done)
            if w.ready and w.fmt is None and ready:
                w.fmt = ready[0]
                pending.remove(w.fmt)
                w.conn.send(("run", w.fmt, jobs.produced(w.fmt, done)))
        if not workers:
            return None
        waitables = {w.conn: w for w in workers} | {w.proc.sentinel: w for w in workers}
        for obj in wait(list(waitables)):
            w = waitables[obj]
            if w not in workers:
                continue
            note = _receive(w, done, progress) if obj is w.conn else None
            if note is not None:
                pending[:0] = [w.fmt] if w.fmt else []
                return note
            if not w.proc.is_alive() and not _has_data(w):
                if not w.ready:
                    return f"note: running formats one at a time here: a worker died while starting ({_how(w)})"
                _bury(jobs, w, workers, done, progress)
                if pending:
                    workers.append(restart())
    return None


def _receive(w: _Worker, done: dict[str, FormatResult], progress: Progress) -> str | None:
    """Read what a worker sent; a note means it could not load the shared state."""
    try:
        msg = w.conn.recv()
    except (EOFError, OSError):
        return None  # it died: its sentinel says so
    if msg[0] == "ready":
        w.ready = True
    elif msg[0] == "progress":
        progress(msg[1])
    elif msg[0] == "result":
        done[msg[1]] = msg[2]
        w.fmt = None
    elif msg[0] == "fatal":
        return f"note: running formats one at a time here: a worker could not load the model ({msg[1]})"[:300]
    return None


def _bury(jobs: FormatJobs, w: _Worker, workers: list[_Worker], done: dict[str, FormatResult],
          progress: Progress) -> None:
    """A worker died: fail the format it had (one line naming how it died), remove what it left half-written."""
    workers.remove(w)
    how = _how(w)
    if w.fmt is not None:
        log = w.log.read_text(errors="replace") if w.log.exists() else ""
        done[w.fmt] = crashed_result(w.fmt, f"the export worker died ({how}) before it finished", log)
        progress(f"{w.fmt}: the export worker died ({how})")
        from modelport.store import remove_stale_staging

        remove_stale_staging(jobs.targets[w.fmt].parent)
        w.fmt = None


def _how(w: _Worker) -> str:
    w.proc.join(1)
    code = w.proc.exitcode
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"


def _has_data(w: _Worker) -> bool:
    try:
        return bool(w.conn.poll())
    except (OSError, EOFError):
        return False


def _stop_all(workers: list[_Worker], *, interrupt: bool) -> bool:
    """Ask every worker to stop (SIGINT when interrupted: it unwinds and removes its staging folder); True when
    one had to be killed or was interrupted (what it left is then removed)."""
    stopped = False
    for w in workers:
        if not w.proc.is_alive():
            continue
        with contextlib.suppress(OSError, ValueError):
            if interrupt:
                os.kill(w.proc.pid, signal.SIGINT)
                stopped = True
            else:
                w.conn.send(("stop",))
    deadline = time.monotonic() + _STOP_GRACE_S
    for w in workers:
        w.proc.join(max(0.0, deadline - time.monotonic()))
        if w.proc.is_alive():
            w.proc.kill()
            w.proc.join(2)
            stopped = True
        with contextlib.suppress(OSError):
            w.conn.close()
    return stopped


def _clean_staging(jobs: FormatJobs) -> None:
    from modelport.store import remove_stale_staging

    for parent in dict.fromkeys(t.parent for t in jobs.targets.values()):
        remove_stale_staging(parent)

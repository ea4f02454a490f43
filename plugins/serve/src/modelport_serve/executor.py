"""Executors run export jobs away from the server process: :class:`LocalExecutor` on a pool of warm worker
processes on this machine; ``modelport_serve.ray_executor.RayExecutor`` on a Ray cluster.

Both speak the same small protocol to the service: ``submit(spec)``, ``cancel(job_id)``, ``free_slots()`` and
``poll(timeout)``, which returns :class:`Message` objects — a phase event, a result, or the news that the
process running a job died (a crash, an out-of-memory kill, a ``kill -9``).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Protocol


@dataclass
class Message:
    """Something an executor reports about a job: ``event`` (data), ``result`` (data) or ``died`` (reason)."""

    kind: str
    job_id: str
    data: dict[str, Any] = field(default_factory=dict)


class Executor(Protocol):
    name: str

    def start(self) -> None: ...
    def free_slots(self) -> int: ...
    def submit(self, spec: dict[str, Any]) -> int | None: ...
    def cancel(self, job_id: str) -> bool: ...
    def poll(self, timeout: float) -> list[Message]: ...
    def shutdown(self) -> None: ...
    def status(self) -> dict[str, Any]: ...


@dataclass
class _Slot:
    process: Any
    conn: Any
    job_id: str | None = None
    ready: bool = False
    jobs_done: int = 0


def _signal_name(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class LocalExecutor:
    """A fixed pool of worker processes (the concurrency limit); one job per worker at a time.

    A worker that dies is replaced by a fresh one; a cancelled or timed-out job's worker is killed
    (SIGKILL after a short SIGTERM grace) and replaced, so every job always starts in a clean process.
    """

    name = "local"

    def __init__(self, workers: int = 2, *, warm: bool = True, threads: int | None = None) -> None:
        self.size = max(1, workers)
        self.warm = warm
        self.threads = threads
        self._ctx = mp.get_context("spawn")
        self._slots: list[_Slot] = []
        self._lock = threading.RLock()
        self._pending: list[Message] = []

    # ------------------------------------------------------------------ pool

    def _spawn(self) -> _Slot:
        from modelport_serve.worker import worker_main

        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=worker_main, args=(child_conn, os.getpid(), self.warm, self.threads),
                                 name="modelport-serve-worker", daemon=True)
        proc.start()
        child_conn.close()
        return _Slot(proc, parent_conn)

    def start(self) -> None:
        with self._lock:
            while len(self._slots) < self.size:
                self._slots.append(self._spawn())

    def status(self) -> dict[str, Any]:
        """Workers in the pool, how many finished warming up, how many run a job."""
        with self._lock:
            return {"workers": len(self._slots), "ready": sum(s.ready for s in self._slots),
                    "busy": sum(s.job_id is not None for s in self._slots), "warm": self.warm}

    def free_slots(self) -> int:
        with self._lock:
            return sum(1 for s in self._slots if self._idle(s))

    @staticmethod
    def _idle(slot: _Slot) -> bool:
        """Ready (warmed up) and not running a job: a job's clock starts when a worker can really run it."""
        return slot.ready and slot.job_id is None and slot.process.is_alive()

    def submit(self, spec: dict[str, Any]) -> int | None:
        """Send the job to an idle worker; returns the worker's pid."""
        with self._lock:
            for slot in self._slots:
                if self._idle(slot):
                    slot.job_id = spec["job_id"]
                    slot.conn.send(spec)
                    return int(slot.process.pid)
        raise RuntimeError("no idle worker")

    def _kill(self, slot: _Slot) -> None:
        proc = slot.process
        if proc.is_alive():
            proc.terminate()
            proc.join(2)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        slot.conn.close()

    def _replace(self, slot: _Slot) -> None:
        idx = self._slots.index(slot)
        self._slots[idx] = self._spawn()

    def cancel(self, job_id: str) -> bool:
        """Kill the worker running ``job_id`` and start a fresh one in its place."""
        with self._lock:
            for slot in self._slots:
                if slot.job_id == job_id:
                    slot.job_id = None
                    self._kill(slot)
                    self._replace(slot)
                    return True
        return False

    def poll(self, timeout: float) -> list[Message]:
        with self._lock:
            slots = list(self._slots)
        waitables = [s.conn for s in slots] + [s.process.sentinel for s in slots]
        try:
            ready = set(wait(waitables, timeout=timeout))
        except (OSError, ValueError):  # a connection was closed by a concurrent cancel
            ready = set()
        out: list[Message] = []
        with self._lock:
            for slot in slots:
                if slot not in self._slots:
                    continue
                if slot.conn in ready:
                    out.extend(self._drain(slot))
            for slot in slots:
                if slot in self._slots and (slot.process.sentinel in ready or not slot.process.is_alive()):
                    slot.process.join(1)
                    out.extend(self._drain(slot))
                    if slot.job_id is not None:
                        reason = f"the worker process running this job died ({_signal_name(slot.process.exitcode)})"
                        out.append(Message("died", slot.job_id, {"reason": reason, "pid": slot.process.pid}))
                        slot.job_id = None
                    slot.conn.close()
                    self._replace(slot)
        return out

    def _drain(self, slot: _Slot) -> list[Message]:
        out = []
        while True:
            try:
                if slot.conn.closed or not slot.conn.poll():
                    break
                msg = slot.conn.recv()
            except (EOFError, OSError):
                break
            kind = msg.get("type")
            if kind == "ready":
                slot.ready = True
                out.append(Message("ready", "", msg))
            elif kind == "result":
                if msg.get("job") == slot.job_id:
                    out.append(Message("result", msg["job"], msg["result"]))
                    slot.job_id = None
                    slot.jobs_done += 1
            elif msg.get("job") == slot.job_id and slot.job_id is not None:
                out.append(Message("event", msg["job"], msg))
        return out

    def shutdown(self) -> None:
        with self._lock:
            for slot in self._slots:
                try:
                    slot.conn.send(None)
                except (OSError, ValueError):
                    pass
            deadline = time.monotonic() + 2
            for slot in self._slots:
                slot.process.join(max(0.0, deadline - time.monotonic()))
                if slot.process.is_alive():
                    self._kill(slot)
            self._slots.clear()

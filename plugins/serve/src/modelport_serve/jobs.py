"""Export jobs and their events, persisted in SQLite beside the exports store (``<exports-root>/.serve/jobs.sqlite``).

A job's coarse ``state`` is one of :data:`STATES`; its ``phase`` says where a running job is (``loading``,
``exporting onnx``, ``validating onnx``, ``writing onnx``). Events (phase changes, results) are rows too, so a
client that reconnects to the event stream replays what it missed. The queue *is* this table: a restarted
server finds queued jobs still queued, and marks the ones that were running as failed with the reason.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUEUED, RUNNING, SUCCEEDED, FAILED, VALIDATION_FAILED, CANCELLED = (
    "queued", "running", "succeeded", "failed", "validation-failed", "cancelled")
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, VALIDATION_FAILED, CANCELLED)
TERMINAL = (SUCCEEDED, FAILED, VALIDATION_FAILED, CANCELLED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    state TEXT NOT NULL,
    phase TEXT,
    request TEXT NOT NULL,
    upload TEXT,
    result TEXT,
    error TEXT,
    exit_code INTEGER,
    worker_pid INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    ts REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_job ON events(job_id, seq);
"""


@dataclass
class Job:
    """One export job as stored: the request it came with, where it is, and what it produced."""

    id: str
    state: str
    request: dict[str, Any]
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    phase: str | None = None
    upload: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    exit_code: int | None = None
    worker_pid: int | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def public(self) -> dict[str, Any]:
        """The job as the API returns it (no server paths, no worker internals beyond the pid)."""
        req = {k: v for k, v in self.request.items() if not k.startswith("_")}
        return {
            "id": self.id, "state": self.state, "phase": self.phase, "request": req,
            "created_at": _iso(self.created_at), "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration_s": round(self.finished_at - self.started_at, 3) if self.finished_at and self.started_at else None,
            "exit_code": self.exit_code, "error": self.error, "worker_pid": self.worker_pid,
            "formats": self.result.get("formats", {}),
        }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_job_id() -> str:
    return f"job-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"


class JobStore:
    """Thread-safe access to the jobs database (one connection, WAL journal, a lock around each statement)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ jobs

    def add(self, request: dict[str, Any], upload: str | None = None, job_id: str | None = None) -> Job:
        job = Job(id=job_id or new_job_id(), state=QUEUED, request=request, created_at=time.time(), upload=upload)
        with self._tx() as db:
            db.execute("INSERT INTO jobs (id, created_at, state, request, upload) VALUES (?, ?, ?, ?, ?)",
                       (job.id, job.created_at, job.state, json.dumps(request), upload))
            self._event(db, job.id, {"type": "state", "state": QUEUED})
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def jobs(self, *, state: str | None = None, model: str | None = None, fmt: str | None = None,
             limit: int = 100) -> list[Job]:
        sql, args = "SELECT * FROM jobs", []
        if state:
            sql += " WHERE state = ?"
            args.append(state)
        sql += " ORDER BY seq DESC"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        jobs = [_job(r) for r in rows]
        if model:
            jobs = [j for j in jobs if j.request.get("model") == model]
        if fmt:
            jobs = [j for j in jobs if fmt in (j.request.get("formats") or [])]
        return jobs[:limit]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {r[0]: r[1] for r in rows}

    def claim_next(self) -> Job | None:
        """Move the oldest queued job to running and return it (None when the queue is empty)."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM jobs WHERE state = ? ORDER BY seq LIMIT 1", (QUEUED,)).fetchone()
            if row is None:
                return None
            now = time.time()
            db.execute("UPDATE jobs SET state = ?, started_at = ?, phase = ? WHERE id = ?",
                       (RUNNING, now, "starting", row["id"]))
            self._event(db, row["id"], {"type": "state", "state": RUNNING})
        job = _job(row)
        job.state, job.started_at, job.phase = RUNNING, now, "starting"
        return job

    def set_worker(self, job_id: str, pid: int | None) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET worker_pid = ? WHERE id = ?", (pid, job_id))

    def set_phase(self, job_id: str, phase: str, message: str | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET phase = ? WHERE id = ? AND state = ?", (phase, job_id, RUNNING))
            self._event(db, job_id, {"type": "phase", "phase": phase, "message": message})

    def add_event(self, job_id: str, data: dict[str, Any]) -> None:
        with self._tx() as db:
            self._event(db, job_id, data)

    def finish(self, job_id: str, state: str, *, result: dict[str, Any] | None = None, error: str | None = None,
               exit_code: int | None = None) -> bool:
        """Set a terminal state once; returns False when the job was already finished (or is gone)."""
        assert state in TERMINAL
        with self._tx() as db:
            cur = db.execute(
                "UPDATE jobs SET state = ?, phase = NULL, finished_at = ?, result = ?, error = ?, exit_code = ? "
                "WHERE id = ? AND state IN (?, ?)",
                (state, time.time(), json.dumps(result or {}), error, exit_code, job_id, QUEUED, RUNNING))
            if cur.rowcount:
                self._event(db, job_id, {"type": "state", "state": state, "error": error, "exit_code": exit_code,
                                         "result": result or {}})
            return bool(cur.rowcount)

    def delete(self, job_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            db.execute("DELETE FROM events WHERE job_id = ?", (job_id,))

    # ------------------------------------------------------------------ events

    @staticmethod
    def _event(db: sqlite3.Connection, job_id: str, data: dict[str, Any]) -> None:
        db.execute("INSERT INTO events (job_id, ts, data) VALUES (?, ?, ?)", (job_id, time.time(), json.dumps(data)))

    def events_after(self, job_id: str, after: int) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute("SELECT seq, data FROM events WHERE job_id = ? AND seq > ? ORDER BY seq",
                                    (job_id, after)).fetchall()
        return [(r[0], json.loads(r[1])) for r in rows]


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"], state=row["state"], request=json.loads(row["request"]), created_at=row["created_at"],
        started_at=row["started_at"], finished_at=row["finished_at"], phase=row["phase"], upload=row["upload"],
        result=json.loads(row["result"]) if row["result"] else {}, error=row["error"], exit_code=row["exit_code"],
        worker_pid=row["worker_pid"],
    )

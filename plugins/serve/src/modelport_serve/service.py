"""The export service: checks requests, queues jobs in SQLite, feeds them to an executor, records what happens.

One background thread owns the dispatch loop: it claims queued jobs while the executor has free slots,
turns the executor's messages into phase events and final states, and kills jobs that run past the
per-job timeout. The HTTP layer (``modelport_serve.app``) only calls the methods below.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError

from modelport_serve.catalog import ModelCatalog, ModelEntry
from modelport_serve.config import ServeConfig
from modelport_serve.executor import Executor, LocalExecutor, Message
from modelport_serve.jobs import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    VALIDATION_FAILED,
    Job,
    JobStore,
)
from modelport_serve.worker import remove_job_exports

log = logging.getLogger("modelport.serve")
MAX_ELEMENTS = 1 << 26  # per input tensor: a request cannot ask for a multi-GB example input
MAX_FORMATS = 16


@dataclass
class CheckedRequest:
    """A request after every check that needs no torch: the model exists, formats and options are valid."""

    data: dict[str, Any]
    entry: ModelEntry


def _spec_string(t: Any) -> str:
    text = f"{t.name}:{'x'.join(str(d) for d in t.shape)}:{t.dtype}"
    if t.low is not None and t.high is not None:
        text += f":{t.low},{t.high}"
    return text


class ExportService:
    """Owns the job store, the model catalog and the executor; thread-safe."""

    def __init__(self, config: ServeConfig, executor: Executor | None = None) -> None:
        self.config = config
        config.exports_root.mkdir(parents=True, exist_ok=True)
        (config.state_dir / "uploads").mkdir(parents=True, exist_ok=True)
        self.store = JobStore(config.state_dir / "jobs.sqlite")
        self.catalog = ModelCatalog(config.models_dir)
        self.executor: Executor = executor or self._make_executor()
        self._lock = threading.RLock()
        self._running: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _make_executor(self) -> Executor:
        if self.config.executor == "ray":
            from modelport_serve.ray_executor import RayExecutor

            return RayExecutor(address=self.config.ray_address, max_jobs=self.config.workers,
                               threads=self.config.threads)
        return LocalExecutor(self.config.workers, warm=self.config.warm, threads=self.config.threads)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.recover()
        self.executor.start()
        self._thread = threading.Thread(target=self._loop, name="modelport-serve-dispatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop dispatching, stop the workers; jobs still running are failed with the reason, queued ones stay."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            self.executor.shutdown()
            for job_id in list(self._running):
                self._fail_and_clean(job_id, FAILED, "the server was shut down while this job was running; "
                                     "submit it again")
            self._running.clear()
        self.store.close()

    def recover(self) -> None:
        """After a restart: jobs left running are failed (their worker died with the old server); queued ones resume."""
        for job in self.store.jobs(state=RUNNING, limit=1_000_000):
            _kill_stale_worker(job.worker_pid)
            self._fail_and_clean(job.id, FAILED, "the server stopped while this job was running (it was restarted); "
                                 "partial output was removed; submit it again")
        queued = self.store.counts().get(QUEUED, 0)
        if queued:
            log.info("resuming %d queued job(s)", queued)

    # ------------------------------------------------------------------ requests

    def check_request(self, body: dict[str, Any], *, upload: bool = False) -> CheckedRequest:
        """Resolve and check a request without importing torch; a ConfigError here is the client's error (4xx)."""
        from modelport.engine.inputs import parse_input
        from modelport.plugins import get_plugin_manager
        from modelport.plugins.options import resolve_options

        entry = self.catalog.get(str(body["model"]))
        checkpoint = body.get("checkpoint")
        if upload:
            if checkpoint:
                raise ConfigError("give either an uploaded checkpoint file or a checkpoint name, not both")
        elif checkpoint is not None and checkpoint not in entry.checkpoints:
            known = ", ".join(entry.checkpoints) or "none"
            raise ConfigError(f"model {entry.name!r} has no checkpoint {checkpoint!r}; known: {known}")
        formats = list(dict.fromkeys(str(f).strip().lower() for f in body["formats"]))
        if not formats or len(formats) > MAX_FORMATS:
            raise ConfigError(f"give between 1 and {MAX_FORMATS} formats")
        host = get_plugin_manager()
        specs = {f: host.require_format(f) for f in formats}
        options = body.get("options") or {}
        for key, value in options.items():
            if key not in specs:
                raise ConfigError(f"options for {key!r}, which is not one of the requested formats ({', '.join(formats)})")
            if not isinstance(value, dict):
                raise ConfigError(f"options.{key} must be an object of option name -> value")
        resolve_options(specs, (), options)
        tensors = [parse_input(s) for s in (body.get("inputs") or entry.inputs)]
        names = [t.name for t in tensors]
        if len(set(names)) != len(names):
            raise ConfigError(f"input names must be unique: {', '.join(names)}")
        batch = body.get("batch")
        for t in tensors:
            if batch:
                t.shape = (int(batch), *t.shape[1:])
            n = 1
            for d in t.shape:
                n *= d
            if n > MAX_ELEMENTS:
                raise ConfigError(f"input {t.name} {list(t.shape)} is too large ({n} elements; at most {MAX_ELEMENTS})")
        dynamic = body.get("dynamic_batch")
        data = {
            "model": entry.name, "checkpoint": checkpoint, "formats": formats,
            "inputs": [_spec_string(t) for t in tensors],
            "dynamic_batch": entry.dynamic_batch if dynamic is None else bool(dynamic),
            "options": options, "validate": bool(body.get("validate", True)),
        }
        return CheckedRequest(data, entry)

    def submit(self, checked: CheckedRequest, upload: Path | None = None, upload_name: str | None = None) -> Job:
        from modelport_serve.jobs import new_job_id

        job_id = new_job_id()
        stored = None
        if upload is not None:
            stored = self.config.state_dir / "uploads" / f"{job_id}.pt"
            os.replace(upload, stored)
            checked.data["checkpoint"] = f"upload:{upload_name or 'checkpoint'}"
        return self.store.add(checked.data, upload=str(stored) if stored else None, job_id=job_id)

    def cancel_or_delete(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job (kill its worker, remove partial output); delete a finished one."""
        with self._lock:
            job = self.store.get(job_id)
            if job is None:
                raise KeyError(job_id)
            if job.state == QUEUED:
                self.store.finish(job_id, CANCELLED, error="cancelled before it started")
                self._remove_upload(job)
                return {"id": job_id, "state": CANCELLED, "removed_exports": []}
            if job.state == RUNNING:
                self.executor.cancel(job_id)
                removed = self._fail_and_clean(job_id, CANCELLED, "cancelled while running; its worker was stopped "
                                               "and partial output removed")
                return {"id": job_id, "state": CANCELLED, "removed_exports": removed}
            removed = remove_job_exports(self.config.exports_root, job_id)
            self._remove_upload(job)
            self.store.delete(job_id)
            return {"id": job_id, "state": "deleted", "removed_exports": removed}

    # ------------------------------------------------------------------ dispatch loop

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self.executor.poll(0.2)
                with self._lock:
                    for msg in messages:
                        self._handle(msg)
                    self._check_timeouts()
                    self._dispatch()
            except Exception:  # the loop must survive anything a job throws at it
                log.exception("dispatch loop error")
                time.sleep(0.5)

    def _dispatch(self) -> None:
        while self.executor.free_slots() > 0:
            job = self.store.claim_next()
            if job is None:
                return
            try:
                spec = self._job_spec(job)
            except ConfigError as exc:  # the configuration changed since the job was queued
                self.store.finish(job.id, FAILED, error=str(exc), exit_code=3)
                self._remove_upload(job)
                continue
            pid = self.executor.submit(spec)
            self._running[job.id] = time.monotonic()
            self.store.set_worker(job.id, pid)

    def _job_spec(self, job: Job) -> dict[str, Any]:
        req = job.request
        entry = self.catalog.get(req["model"])
        checkpoint, label = None, None
        if job.upload:
            checkpoint, label = job.upload, req.get("checkpoint")
        elif req.get("checkpoint"):
            if req["checkpoint"] not in entry.checkpoints:
                raise ConfigError(f"checkpoint {req['checkpoint']!r} of model {entry.name!r} is gone from the server")
            checkpoint, label = str(entry.checkpoints[req["checkpoint"]]), req["checkpoint"]
        return {
            "job_id": job.id, "exports_root": str(self.config.exports_root), "factory": entry.factory_ref,
            "model_kwargs": entry.model_kwargs, "checkpoint": checkpoint, "checkpoint_label": label,
            "checkpoint_prefix": entry.checkpoint_prefix, "inputs": req["inputs"],
            "dynamic_batch": req["dynamic_batch"], "formats": req["formats"], "config": req.get("options") or {},
            "validate": req.get("validate", True), "task": entry.task, "class_names": entry.class_names,
            "preprocessing": entry.preprocessing, "model_name": entry.name, "threads": self.config.threads,
        }

    def _handle(self, msg: Message) -> None:
        if msg.kind == "event" and msg.data.get("type") == "phase":
            self.store.set_phase(msg.job_id, str(msg.data.get("phase")), msg.data.get("message"))
        elif msg.kind == "result":
            self._running.pop(msg.job_id, None)
            res = msg.data
            code = int(res.get("exit_code", 1))
            state = SUCCEEDED if code == 0 else VALIDATION_FAILED if code == 2 else FAILED
            tb = res.pop("traceback", None)
            if tb:
                log.debug("job %s failed:\n%s", msg.job_id, tb)
            self.store.finish(msg.job_id, state, result=res, error=res.get("error"), exit_code=code)
            job = self.store.get(msg.job_id)
            if job is not None:
                self._remove_upload(job)
        elif msg.kind == "died":
            self._running.pop(msg.job_id, None)
            self._fail_and_clean(msg.job_id, FAILED, msg.data.get("reason", "the worker process died"))

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        for job_id, started in list(self._running.items()):
            if now - started > self.config.job_timeout_s:
                self.executor.cancel(job_id)
                self._fail_and_clean(job_id, FAILED, f"timed out after {self.config.job_timeout_s:g} s "
                                     "(--job-timeout); its worker was stopped and partial output removed")

    def _fail_and_clean(self, job_id: str, state: str, reason: str) -> list[str]:
        self._running.pop(job_id, None)
        removed = remove_job_exports(self.config.exports_root, job_id)
        self.store.finish(job_id, state, error=reason, exit_code=1 if state == FAILED else None,
                          result={"formats": {}, "removed_exports": removed})
        job = self.store.get(job_id)
        if job is not None:
            self._remove_upload(job)
        return removed

    def _remove_upload(self, job: Job) -> None:
        if job.upload:
            with contextlib.suppress(OSError):
                Path(job.upload).unlink()

    # ------------------------------------------------------------------ exports on disk

    def export_dir(self, job: Job, fmt: str | None) -> tuple[str, Path, dict[str, Any]]:
        """The export folder of one format of a finished job: (format, folder, its result)."""
        from modelport.folder.store import safe_name

        formats = job.result.get("formats") or {}
        done = {f: r for f, r in formats.items() if r.get("export_id")}
        if not done:
            raise LookupError(f"job {job.id} has no exported files (state: {job.state})")
        if fmt is None:
            if len(done) > 1:
                raise ConfigError(f"job {job.id} exported several formats; add ?format= one of {', '.join(done)}")
            fmt = next(iter(done))
        if fmt not in done:
            raise LookupError(f"job {job.id} has no {fmt!r} export; it has: {', '.join(done)}")
        folder = self.config.exports_root / safe_name(str(done[fmt]["export_id"]), "export id")
        if not folder.is_dir():
            raise LookupError(f"the {fmt} export of job {job.id} is no longer in the store")
        return fmt, folder, done[fmt]


def _kill_stale_worker(pid: int | None) -> None:
    """Kill a worker left by a server that died, if that pid is still one of our worker processes."""
    if not pid:
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if b"multiprocessing" not in cmdline and b"spawn_main" not in cmdline:
        return
    import signal

    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.05)


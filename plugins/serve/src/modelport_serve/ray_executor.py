"""Run export jobs on Ray: each format of a job is one Ray task with its resources declared.

``modelport serve --executor ray [--ray-address ADDR]`` joins a Ray cluster (or starts a local instance when no
address is given and ``RAY_ADDRESS`` is unset). Tasks write into the exports root, which must be storage
shared by every node (NFS, a mounted bucket); phase events stream back through a Ray queue. TensorRT tasks
ask for a GPU, so an engine is built on a GPU of the kind it will run on. See docs/scale-out.md.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from typing import Any

from modelport.errors import ConfigError

from modelport_serve.executor import Message


def check_ray() -> None:
    if importlib.util.find_spec("ray") is None:
        raise ConfigError("--executor ray needs Ray: pip install 'modelport-serve[ray]'")


def task_options(fmt: str, threads: int | None) -> dict[str, Any]:
    """The ``.options()`` of one format's task: CPUs (the job's thread count), a GPU when the format's spec says
    ``needs_gpu`` (TensorRT), no retries — the same rule as ``modelport export --executor ray``."""
    from modelport.engine.executors_ray import task_options as core_task_options
    from modelport.plugins import get_plugin_manager

    entry = get_plugin_manager().formats.get(fmt)
    return core_task_options(entry[0] if entry else None, threads)


def export_format_task(spec: dict[str, Any], events: Any) -> dict[str, Any]:
    """Body of one Ray task: the same job runner as a local worker, for one format."""
    from modelport_serve.worker import TOKEN_ENV, run_export_job

    os.environ.pop(TOKEN_ENV, None)
    fmt = spec["formats"][0]

    def emit(data: dict[str, Any]) -> None:
        try:
            events.put_nowait({**data, "job": spec["job_id"], "format": fmt})
        except Exception:  # progress is best effort; the result is what counts
            pass

    return run_export_job(spec, emit)


@dataclass
class _RayJob:
    refs: dict[Any, str]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


def merge_results(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One job result from its per-format task results: the worst exit code (1 before 2), every format."""
    codes = [int(r.get("exit_code", 1)) for r in results.values()]
    code = next((c for c in (1, 3, 2) if c in codes), max(codes, default=0))
    formats: dict[str, Any] = {}
    errors = []
    for fmt, r in results.items():
        formats.update(r.get("formats") or {})
        if not r.get("formats") and r.get("error"):
            formats[fmt] = {"format": fmt, "status": "error", "exit_code": r.get("exit_code", 1), "error": r["error"],
                            "export_id": None, "files": {}, "validation": {}}
        if r.get("error"):
            errors.append(r["error"])
    return {"exit_code": code, "formats": formats, "error": "; ".join(errors) or None,
            "elapsed_s": max((r.get("elapsed_s") or 0 for r in results.values()), default=0)}


class RayExecutor:
    """Jobs as groups of Ray tasks (one per format); at most ``max_jobs`` jobs in flight."""

    name = "ray"

    def __init__(self, address: str | None = None, max_jobs: int = 2, threads: int | None = None) -> None:
        check_ray()
        self.address = address
        self.max_jobs = max(1, max_jobs)
        self.threads = threads
        self._jobs: dict[str, _RayJob] = {}
        self._events: Any = None
        self._remote: Any = None

    def start(self) -> None:
        import ray
        from modelport.engine.executors_ray import ray_init
        from ray.util.queue import Queue

        ray_init(self.address)  # RAY_ADDRESS, else a local instance — as `modelport export --executor ray`
        self._events = Queue(actor_options={"num_cpus": 0})
        self._remote = ray.remote(export_format_task)

    def status(self) -> dict[str, Any]:
        return {"max_jobs": self.max_jobs, "in_flight": len(self._jobs), "address": self.address or "local"}

    def free_slots(self) -> int:
        return self.max_jobs - len(self._jobs)

    def submit(self, spec: dict[str, Any]) -> int | None:
        refs = {}
        for fmt in spec["formats"]:
            one = {**spec, "formats": [fmt], "config": {k: v for k, v in (spec.get("config") or {}).items() if k == fmt}}
            ref = self._remote.options(**task_options(fmt, self.threads)).remote(one, self._events)
            refs[ref] = fmt
        self._jobs[spec["job_id"]] = _RayJob(refs)
        return None

    def cancel(self, job_id: str) -> bool:
        import ray

        job = self._jobs.pop(job_id, None)
        if job is None:
            return False
        for ref in job.refs:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # already finished
                pass
        return True

    def poll(self, timeout: float) -> list[Message]:
        import ray

        out: list[Message] = []
        try:
            for data in self._events.get_nowait_batch(self._events.qsize()):
                if data.get("job") in self._jobs:
                    out.append(Message("event", data["job"], data))
        except Exception:
            pass
        pending = [ref for job in self._jobs.values() for ref in job.refs if job.refs[ref] not in job.results]
        if not pending:
            import time

            time.sleep(timeout)
            return out
        done, _ = ray.wait(pending, num_returns=len(pending), timeout=timeout)
        for ref in done:
            job_id = next((j for j, job in self._jobs.items() if ref in job.refs), None)
            if job_id is None:
                continue
            job = self._jobs[job_id]
            fmt = job.refs[ref]
            try:
                job.results[fmt] = ray.get(ref)
            except Exception as exc:  # the task's worker died (OOM, node lost) or the task raised
                self._jobs.pop(job_id)
                self.cancel_refs(job)
                out.append(Message("died", job_id, {"reason": f"the Ray task exporting {fmt} failed: "
                                                    f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}))
                continue
            if len(job.results) == len(job.refs):
                self._jobs.pop(job_id)
                out.append(Message("result", job_id, merge_results(job.results)))
        return out

    @staticmethod
    def cancel_refs(job: _RayJob) -> None:
        import ray

        for ref in job.refs:
            try:
                ray.cancel(ref, force=True)
            except Exception:
                pass

    def shutdown(self) -> None:
        for job_id in list(self._jobs):
            self.cancel(job_id)

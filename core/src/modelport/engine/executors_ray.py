"""``--executor ray``: each format of an export one Ray task, its resources declared (see docs/scale-out.md).

The driver joins the cluster named by ``RAY_ADDRESS`` or starts a small local Ray instance (and stops it at the
end). The shared state (model, reference set) goes into Ray's object store once; every task writes its export
folder itself, so on a cluster the output folder must be storage every node mounts at the same path (NFS, a
mounted bucket), and the task's result (a small record) comes back to the driver. A task asks for
``num_cpus`` (``--threads`` or 1) and one GPU when its format's spec says ``needs_gpu`` (TensorRT: the engine
is built on the kind of GPU it will run on).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from modelport.engine.jobs import FormatJobs, Payload, Progress, clean_staging, crashed_result, export_format, unpack
from modelport.errors import ConfigError
from modelport.terminal.console import capture_fds
from modelport.terminal.redaction import register_token_env

if TYPE_CHECKING:  # pragma: no cover
    from modelport.engine.pipeline import FormatResult
    from modelport.plugins.host import PluginHost

_LOADED: dict[str, FormatJobs] = {}  # per Ray worker process: the shared state of the export it last ran


def ray_init(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to ``address`` / ``RAY_ADDRESS``, or start a local instance; True when this call started Ray."""
    import logging

    import ray

    if ray.is_initialized():
        return False
    register_token_env(["RAY_AUTH_TOKEN"])  # a cluster's token, should Ray's output ever quote it, is redacted
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                              "log_to_driver": False, "ignore_reinit_error": True}
    if address is None:  # a local instance: its daemons inherit our descriptors, so nothing is captured here
        ray.init(num_cpus=num_cpus, **kwargs)
        return True
    _probe(address)
    try:
        with capture_fds():  # Ray's C++ client logs each failed connection attempt to descriptor 2
            ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError) as exc:
        raise ConfigError(_join_failure(address, exc)) from exc
    return True


def _probe(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds when nothing listens at a ``HOST:PORT`` address: Ray itself retries for minutes, silently."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address or not host:
        return  # "auto", "ray://…" (Ray Client) and other forms are Ray's to resolve
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot join the Ray cluster at {address}: nothing answers there ({reason}); start "
                          "it with `ray start --head` or fix --ray-address / RAY_ADDRESS") from exc


def _join_failure(address: str, exc: BaseException) -> str:
    """One line for a cluster Ray could not join; a token-auth refusal names Ray's fix (an explicit address
    never turns token auth on by itself, so a driver with ``~/.ray/auth_token`` still connects without it)."""
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in chain:
        chain.append(link)
        link = link.__cause__ or link.__context__
    if any(type(e).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(e) for e in chain):
        return (f"the Ray cluster at {address} refused this driver's authentication: it uses token "
                "authentication, so set RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN, "
                "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)")
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"cannot join the Ray cluster at {address}: {reason} (is `ray start --head` running there?)"


def task_options(spec: Any, threads: int | None) -> dict[str, Any]:
    """A format task's ``.options()``: its CPUs, a GPU when the format needs one, no retries (exports write)."""
    opts: dict[str, Any] = {"num_cpus": threads or 1, "max_retries": 0}
    if getattr(spec, "needs_gpu", False):
        opts["num_gpus"] = 1
    return opts


def ray_export_task(payload: Payload, fmt: str, produced: dict[str, FormatResult],
                    threads: int | None) -> FormatResult:
    """Body of one format's Ray task: the shared state loaded (once per Ray worker), the format exported."""
    import torch

    from modelport.plugins.host import get_plugin_manager

    key = payload.token
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = unpack(payload)
    if threads:
        torch.set_num_threads(threads)
    jobs = _LOADED[key]
    try:
        return export_format(get_plugin_manager(), jobs, fmt, produced, lambda _line: None, threads=threads)
    except Exception as exc:  # what the pipeline would have raised: this format fails, one line
        return crashed_result(jobs, fmt, f"{type(exc).__name__}: {str(exc).strip()[:300]}")


def run_on_ray(host: PluginHost, jobs: FormatJobs, payload: Payload, done: dict[str, FormatResult],
               progress: Progress) -> None:
    """Export every format of ``jobs`` as Ray tasks (upstream formats first), filling ``done``."""
    import ray

    threads = jobs.run.settings.threads
    started = ray_init(num_cpus=None)
    try:
        progress(f"exporting {len(jobs.formats)} formats as Ray tasks")
        remote = ray.remote(ray_export_task)
        payload_ref = ray.put(payload)
        pending = jobs.order()
        running: dict[Any, str] = {}
        while pending or running:
            ready = jobs.ready(pending, done) or ([] if running else pending[:1])  # a cycle: as given
            for fmt in ready:
                pending.remove(fmt)
                opts = task_options(host.require_format(fmt), threads)
                running[remote.options(**opts).remote(payload_ref, fmt, jobs.produced(fmt, done), threads)] = fmt
                progress(f"{fmt}: submitted to Ray ({', '.join(f'{k}={v}' for k, v in opts.items())})")
            finished, _ = ray.wait(list(running), num_returns=1)
            for ref in finished:
                fmt = running.pop(ref)
                try:
                    done[fmt] = ray.get(ref)
                except Exception as exc:  # the task's worker died (OOM, node lost) or could not load the model
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    done[fmt] = crashed_result(jobs, fmt, f"the Ray task failed: {type(exc).__name__}: {first[:300]}")
                progress(f"{fmt}: {done[fmt].status}")
    except KeyboardInterrupt:
        for ref in list(locals().get("running") or {}):
            ray.cancel(ref, force=True)
        clean_staging(jobs)
        raise
    finally:
        if started:
            ray.shutdown()

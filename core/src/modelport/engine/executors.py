"""Where an export's formats run: one after another here (``--jobs 1``), in worker processes here (``--jobs N``,
:mod:`modelport.engine.executors_local`) or as Ray tasks (``--executor ray``, :mod:`modelport.engine.executors_ray`).

The shared state and the per-format adapter are in :mod:`modelport.engine.jobs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from modelport.engine.jobs import FormatJobs, Progress, check_executor, export_format, first_line, pack, resolve_jobs

if TYPE_CHECKING:  # pragma: no cover
    from modelport.engine.pipeline import FormatResult
    from modelport.plugins.host import PluginHost


def run_formats(host: PluginHost, jobs: FormatJobs, *, n_jobs: int | None = None, executor: str = "local",
                progress: Progress) -> tuple[dict[str, FormatResult], list[str]]:
    """Every format's result (in the order given) and notes for the user (a fallback to running in order)."""
    check_executor(executor)
    notes: list[str] = []
    done: dict[str, FormatResult] = {}
    n = resolve_jobs(n_jobs, len(jobs.formats))
    if executor == "ray" or n > 1:
        try:
            payload = pack(jobs, absolute=executor == "ray")
        except Exception as exc:  # a model pickle cannot carry: run here, in order
            notes.append(f"note: running formats one at a time here: the model cannot be sent to a worker "
                         f"({type(exc).__name__}: {first_line(exc)})"[:300])
        else:
            if executor == "ray":
                from modelport.engine.executors_ray import run_on_ray

                run_on_ray(host, jobs, payload, done, progress)
            else:
                from modelport.engine.executors_local import run_in_workers

                notes += run_in_workers(jobs, payload, n, done, progress,
                                        lambda fmt, threads: _run_here(host, jobs, fmt, done, progress, threads))
    for fmt in jobs.order():  # sequential path (jobs=1), and what a fallback left
        if fmt not in done:
            done[fmt] = export_format(host, jobs, fmt, jobs.produced(fmt, done), progress)
    return {f: done[f] for f in jobs.formats}, notes


def _run_here(host: PluginHost, jobs: FormatJobs, fmt: str, done: Mapping[str, FormatResult], progress: Progress,
              threads: int) -> FormatResult:
    """One format in this process, with its share of the cores while workers run beside it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(jobs.run.settings.threads or threads)
    try:
        return export_format(host, jobs, fmt, jobs.produced(fmt, done), progress, threads=threads)
    finally:
        torch.set_num_threads(before)

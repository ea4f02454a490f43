"""What the formats of one export share, and how it travels to a worker process or a Ray task.

The parent does what every format shares once — load the model, run the PyTorch reference — and hands each
worker that state: the model is pickled (its classes re-imported in the worker from the files they came from:
a ``file.py:factory`` model's module, an installed package's), the reference set travels with it, so every
format is validated against the same outputs. A format whose spec lists ``upstream`` formats (TensorRT from
ONNX) starts after them, and an upstream artifact this run already produced with the same options is reused
(:func:`reuse_upstream`), not exported again. A worker that dies fails its format only; the others finish.
:func:`export_format` is the one caller of the pipeline's per-format step (``FormatJobs.step``).
Where formats run is :mod:`modelport.engine.executors`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from modelport.engine.pipeline import ExportRun, FormatResult
    from modelport.plugins.host import PluginHost
    from modelport.plugins.types import Artifact

EXECUTORS = ("local", "ray")
RAY_HINT = "pip install 'modelport[ray]'"
Progress = Callable[[str], None]


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve_jobs(jobs: int | None, n_formats: int) -> int:
    """How many formats run at once: ``jobs`` (``MODELPORT_JOBS`` when None; 0 or None = auto =
    min(formats, usable cores / 2): a converter keeps at least two cores, so a 2-core machine runs formats in
    order, which measured fastest there — benchmarks/export_all_parallel.py), never more than there are formats."""
    if jobs is None:
        env = os.environ.get("MODELPORT_JOBS", "").strip().lower()
        if env and env != "auto":
            try:
                jobs = int(env)
            except ValueError:
                raise ConfigError(f"MODELPORT_JOBS={env!r}: use a number of jobs or auto") from None
    if jobs is not None and jobs < 0:
        raise ConfigError(f"--jobs {jobs}: use a positive number of jobs, or 0 for auto")
    if not jobs:
        jobs = usable_cores() // 2
    return max(1, min(jobs, n_formats))


def parse_jobs(text: str | None) -> int | None:
    """``--jobs``: ``auto`` (or unset) → None, else a positive count; anything else is one line, exit 3."""
    if text is None or text.strip().lower() == "auto":
        return None
    try:
        n = int(text)
    except ValueError:
        raise ConfigError(f"--jobs {text!r}: use a positive number of jobs or auto") from None
    if n < 1:
        raise ConfigError(f"--jobs {text!r}: use a positive number of jobs or auto")
    return n


def check_executor(executor: str) -> None:
    """``local`` or ``ray`` (installed); anything else is one line, exit 3."""
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor {executor!r}: use {' or '.join(EXECUTORS)}")
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        raise ConfigError(f"--executor ray needs Ray, which is not installed: {RAY_HINT}")


@dataclass
class FormatJobs:
    """What every format of one export shares, and each format's own options and folder."""

    formats: list[str]
    options: dict[str, dict[str, Any]]
    targets: dict[str, Path]
    run: ExportRun  # settings, model info, the model, inputs and PyTorch's reference outputs: shared by every format
    step: Callable[..., FormatResult]  # the pipeline's per-format step (pickled by name: a worker imports it)
    result_type: type[FormatResult]
    upstream: dict[str, tuple[str, ...]] = field(default_factory=dict)  # format → its upstream formats in this run

    def order(self) -> list[str]:
        """The formats with each upstream format before the formats built from it (otherwise as given)."""
        out: list[str] = []

        def visit(f: str, seen: tuple[str, ...] = ()) -> None:
            if f in out or f in seen:
                return
            for up in self.upstream.get(f, ()):
                visit(up, (*seen, f))
            out.append(f)

        for f in self.formats:
            visit(f)
        return out

    def ready(self, pending: Sequence[str], done: Mapping[str, Any]) -> list[str]:
        """Pending formats whose upstream formats of this run are all done."""
        return [f for f in pending if all(u in done for u in self.upstream.get(f, ()))]

    def produced(self, fmt: str, done: Mapping[str, FormatResult]) -> dict[str, FormatResult]:
        """The results ``fmt`` may reuse: those of its upstream formats."""
        return {u: done[u] for u in self.upstream.get(fmt, ()) if u in done}


def export_format(host: PluginHost, jobs: FormatJobs, fmt: str, produced: Mapping[str, FormatResult],
                  progress: Progress, threads: int | None = None) -> FormatResult:
    """Export, validate and write one format — the only call of the pipeline's per-format step."""
    run = jobs.run
    if threads is not None and run.settings.threads is None:  # its share of the cores beside other workers
        run = replace(run, settings=replace(run.settings, threads=threads))
    return jobs.step(host, fmt, jobs.options[fmt], jobs.targets[fmt], run, progress, produced=produced)


def reuse_upstream(produced: Mapping[str, FormatResult] | None, fmt: str, options: Mapping[str, Any],
                   resolved_all: Mapping[str, Mapping[str, Any]], workdir: Path) -> Artifact | None:
    """A copy (in ``workdir``) of the ``fmt`` artifact this run already wrote, when it was exported with exactly
    ``options`` and written; None means export it again."""
    result = (produced or {}).get(fmt)
    if result is None or result.artifact is None or result.path is None or result.status in ("error", "failed"):
        return None
    if dict(resolved_all.get(fmt) or {}) != dict(options):
        return None
    art = result.artifact
    for rel in art.files:
        (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(result.path / rel, workdir / rel)
    main = workdir / Path(art.path).relative_to(result.path)
    return replace(art, path=main, files=list(art.files), options={**options, **art.options},
                   details=dict(art.details), warnings=list(art.warnings))


# ------------------------------------------------------------------ sending the shared state to a worker


@dataclass
class Payload:
    """The pickled shared state, and the modules the worker imports first so the model's classes resolve."""

    data: bytes
    preload: list[tuple[str, str | None]]
    formats: list[str]
    token: str = field(default_factory=lambda: secrets.token_hex(8))  # which export's state a worker holds


def pack(jobs: FormatJobs, *, absolute: bool = False) -> Payload:
    """Pickle what the formats share (torch.save: tensors stored once); raises when the model cannot be pickled.

    ``absolute``: folders as absolute paths, for workers that do not share this process's working directory.
    """
    import torch

    model = jobs.run.prep.pristine
    if jobs.run.prep.copy_note is not None:  # no copy possible: every format must use the one instance
        raise ValueError(jobs.run.prep.copy_note)
    if absolute:
        root = jobs.run.settings.exports_root_path
        settings = replace(jobs.run.settings, exports_root=root.absolute() if root is not None else None)
        jobs = replace(jobs, targets={f: t.absolute() for f, t in jobs.targets.items()},
                       run=replace(jobs.run, settings=settings))
    buf = io.BytesIO()
    torch.save({"jobs": jobs}, buf, pickle_protocol=4)
    return Payload(buf.getvalue(), _class_modules(model), list(jobs.formats))


def _class_modules(model: Any) -> list[tuple[str, str | None]]:
    """Each module defining one of the model's classes, with the file it was loaded from."""
    names = dict.fromkeys(type(m).__module__ for m in model.modules()) if hasattr(model, "modules") else {}
    out = []
    for name in names:
        if name == "__main__":  # a worker cannot import the running script (and must not run it again)
            raise ValueError("the model's class is defined in the running script (__main__)")
        mod = sys.modules.get(name)
        out.append((name, getattr(mod, "__file__", None)))
    return out


def unpack(payload: Payload) -> FormatJobs:
    """The shared state in a worker: the model's modules imported (from their files when not importable by
    name, as ``file.py:factory`` loads them), then the pickle read — one this run wrote."""
    import torch

    for name, file in payload.preload:
        _import_like_parent(name, file)
    jobs = torch.load(io.BytesIO(payload.data), weights_only=False)["jobs"]
    assert isinstance(jobs, FormatJobs)
    return jobs


def _import_like_parent(name: str, file: str | None) -> None:
    if name in sys.modules:
        return
    with contextlib.suppress(ImportError, ValueError):
        spec = importlib.util.find_spec(name)
        if spec is not None and (file is None or spec.origin == file):
            importlib.import_module(name)
            return
    if file is None:
        return
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(Path(file).resolve().parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)


def crashed_result(jobs: FormatJobs, fmt: str, why: str, log: str = "") -> FormatResult:
    """The result of a format whose worker died or could not report: one line, exit 1, nothing written."""
    return jobs.result_type(fmt, "error", None, None, None, None, f"{fmt}: {why}"[:800], 1, {"log": log[-4000:]})


def clean_staging(jobs: FormatJobs) -> None:
    """Remove the staging folders a killed worker left beside the export folders."""
    from modelport.folder.store import remove_stale_staging

    for parent in dict.fromkeys(t.parent for t in jobs.targets.values()):
        remove_stale_staging(parent)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ""

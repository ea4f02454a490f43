"""What runs inside a worker process: load a configured model, call modelport's export pipeline, report back.

A worker is a separate process (a crash or an out-of-memory kill never reaches the server). A *warm* worker
imports torch, the pipeline and the plugins once at start and then runs job after job, so only its first
job pays for the imports. Results are plain dicts; exit codes are modelport's own (0 ok, 1 export failed,
2 written but validation failed, 3 configuration error).
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOKEN_ENV = "MODELPORT_SERVE_TOKEN"
Emit = Callable[[dict[str, Any]], None]


def phase_of(message: str) -> str | None:
    """The job phase for one of the pipeline's progress messages (``onnx: exporting`` -> ``exporting onnx``)."""
    if message.startswith("running the PyTorch model"):
        return "loading"
    fmt, sep, rest = message.partition(": ")
    if not sep:
        return None
    for verb in ("exporting", "validating", "writing"):
        if rest.startswith(verb):
            return f"{verb} {fmt}"
    return None


def _format_result(fmt: str, r: Any) -> dict[str, Any]:
    record = r.record if r.path else {}
    validation = record.get("validation") or {}
    return {
        "format": fmt,
        "status": r.status,
        "exit_code": r.exit_code,
        "error": r.error,
        "export_id": r.path.name if r.path else None,
        "artifact": record.get("artifact"),
        "files": record.get("files") or {},
        "size_bytes": (record.get("sizes") or {}).get("total_bytes"),
        "timings": record.get("timings") or {},
        "validation": {k: validation.get(k) for k in ("status", "max_abs_diff", "min_cosine", "rule", "reason",
                                                      "input_sets", "batch_sizes")},
    }


def scrub(text: str | None, spec: dict[str, Any]) -> str | None:
    """Replace server paths in a message by what the client knows: the checkpoint label, the model name."""
    if not text:
        return text
    if spec.get("checkpoint") and spec.get("checkpoint_label"):
        text = text.replace(str(spec["checkpoint"]), str(spec["checkpoint_label"]))
    folder = str(Path(str(spec.get("factory", "")).rpartition(":")[0]).parent)
    if folder not in ("", "."):
        text = text.replace(folder, f"<models>/{spec.get('model_name', '')}")
    return text.replace(str(spec.get("exports_root", "\0")), "<exports>")


def run_export_job(spec: dict[str, Any], emit: Emit) -> dict[str, Any]:
    """Run one job (or one format of it) through ``modelport.export``; never raises.

    ``spec`` is what the server resolved from the request and its configuration: the factory of a configured
    model, a checkpoint path (configured, or an upload loaded weights-only), inputs, formats, options.
    """
    t0 = time.perf_counter()
    try:
        emit({"type": "phase", "phase": "loading", "message": "loading the model"})
        import modelport
        from modelport.engine.inputs import InputSpec, parse_input
        from modelport.models.loading import load_model

        if spec.get("threads"):
            import torch

            torch.set_num_threads(int(spec["threads"]))
        model, facts = load_model(spec["factory"], model_kwargs=spec.get("model_kwargs") or {},
                                  checkpoint=spec.get("checkpoint"), checkpoint_prefix=spec.get("checkpoint_prefix"))
        if spec.get("checkpoint_label"):  # the record names the checkpoint, never the server's or an upload's path
            facts["checkpoint"] = {**facts.get("checkpoint", {}), "path": spec["checkpoint_label"]}
        facts["reference"] = f"serve:{spec['model_name']}"
        facts["serve_job"] = spec["job_id"]
        inputs = InputSpec([parse_input(s) for s in spec["inputs"]])
        if spec.get("dynamic_batch"):
            inputs.with_dynamic_batch()

        def progress(message: str) -> None:
            phase = phase_of(message)
            if phase:
                emit({"type": "phase", "phase": phase, "message": message})

        result = modelport.export(
            model, list(spec["formats"]), inputs, exports_root=spec["exports_root"], model_name=spec["model_name"],
            task=spec.get("task"), class_names=spec.get("class_names"), preprocessing=spec.get("preprocessing"),
            config=spec.get("config") or None, validate=spec.get("validate", True), source=facts,
            progress=progress, threads=spec.get("threads"),
        )
        formats = {fmt: _format_result(fmt, r) for fmt, r in result.items()}
        for f in formats.values():
            f["error"] = scrub(f["error"], spec)
        errors = [f["error"] for f in formats.values() if f["error"]]
        return {"exit_code": result.exit_code, "formats": formats, "error": "; ".join(errors) or None,
                "elapsed_s": round(time.perf_counter() - t0, 3)}
    except Exception as exc:  # ModelportError carries its exit code; anything else is an export failure (1)
        from modelport.errors import ModelportError

        code = exc.exit_code if isinstance(exc, ModelportError) else 1
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if not isinstance(exc, ModelportError):
            msg = f"unexpected {type(exc).__name__}: {msg}"
        return {"exit_code": code, "formats": {}, "error": scrub(msg[:2000], spec), "traceback": traceback.format_exc()[-4000:],
                "elapsed_s": round(time.perf_counter() - t0, 3)}


# The modules each format's converter imports on first use (lazily, so `modelport formats` stays fast).
CONVERTER_MODULES: dict[str, tuple[str, ...]] = {
    "onnx": ("onnx", "onnxscript", "onnxruntime", "onnxslim"),
    "openvino": ("openvino", "nncf"),
    "tflite": ("litert_torch", "ai_edge_litert.interpreter"),
    "coreml": ("coremltools",),
    "executorch": ("executorch.exir", "executorch.runtime"),
    "tensorrt": ("tensorrt",),
    "torchscript": ("torch.jit",),
}


def import_converters(formats: Any) -> list[str]:
    """Import the converter modules of every available format, so no job pays for them; returns those imported."""
    import importlib

    from modelport.terminal.console import capture_fds

    done: list[str] = []
    for name, (spec, _plugin) in dict(formats).items():
        try:
            if not spec.availability().export:
                continue
        except Exception:  # an availability probe that fails means the format cannot run here anyway
            continue
        for module in CONVERTER_MODULES.get(name, ()):
            try:
                with capture_fds():  # converters print banners and warnings on import
                    importlib.import_module(module)
                done.append(module)
            except Exception:  # a missing optional extra is reported by the job that needs it
                pass
    return done


def warm_up() -> float:
    """Import torch, the pipeline, every plugin and every available format's converter, then run one tiny export,
    so the first job pays for none of it.

    Importing is not enough: torch.export and the validation path initialise a lot on first use (measured
    here: a first job 6x slower than the next one after imports alone). A throw-away pt2 export of a
    one-layer model in a temporary folder primes them. Returns the seconds spent.
    """
    t0 = time.perf_counter()
    import tempfile

    import modelport
    import torch
    from modelport.plugins import get_plugin_manager

    formats = get_plugin_manager().formats  # loads every plugin's entry point
    import_converters(formats)
    with tempfile.TemporaryDirectory(prefix="modelport-serve-warmup-") as tmp:
        try:
            modelport.export(torch.nn.Sequential(torch.nn.Linear(4, 2)), ["pt2"],
                             modelport.InputSpec([modelport.TensorSpec("x", (1, 4), "float32")]).with_dynamic_batch(),
                             output_dir=Path(tmp) / "warmup", model_name="warmup")
        except Exception:  # warming up is an optimisation; a job will report any real problem
            pass
    return time.perf_counter() - t0


def _exit_with_parent(parent: int) -> None:
    """A worker never outlives its server: when the parent is gone (even killed), the worker exits at once."""
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.5)


def worker_main(conn: Any, parent: int, warm: bool, threads: int | None) -> None:
    """Entry point of a local worker process: warm up, then run each job sent on ``conn``."""
    os.environ.pop(TOKEN_ENV, None)
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    warm_s = warm_up() if warm else 0.0
    conn.send({"type": "ready", "pid": os.getpid(), "warm_s": round(warm_s, 3)})
    while True:
        try:
            spec = conn.recv()
        except (EOFError, OSError):
            return
        if spec is None:
            return
        job_id = spec["job_id"]

        def emit(data: dict[str, Any], _job: str = job_id) -> None:
            conn.send({**data, "job": _job})

        result = run_export_job(spec, emit)
        conn.send({"type": "result", "job": job_id, "result": result})


def remove_job_exports(root: Path, job_id: str) -> list[str]:
    """Remove the export folders a job committed (known by ``source.serve_job`` in export.json) and their index rows.

    Used when a job is cancelled, killed or timed out mid-way, and when a finished job is deleted: only
    folders whose record names this job — written by this server — are removed.
    """
    import shutil

    from modelport.errors import ConfigError
    from modelport.folder.exportdir import RECORD_FILE, read_record
    from modelport.folder.store import file_lock, read_index, remove_stale_staging, write_json_atomic

    removed = []
    if root.is_dir():
        for d in root.iterdir():
            if d.name.startswith(".") or not d.is_dir() or d.is_symlink() or not (d / RECORD_FILE).is_file():
                continue
            try:
                source = read_record(d).get("source") or {}
            except (ConfigError, OSError):
                continue
            if isinstance(source, dict) and source.get("serve_job") == job_id:
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d.name)
        remove_stale_staging(root)
    if removed and (root / "index.json").is_file():
        with file_lock(root / ".index.lock"):
            data = read_index(root)
            data["exports"] = [e for e in data["exports"] if e.get("id") not in removed and e.get("path") not in removed]
            write_json_atomic(root / "index.json", data)
    return removed

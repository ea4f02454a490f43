"""The plugin as a user meets it on a machine without TensorRT or a GPU: the real ``modelport`` CLI in a subprocess.

Some tests put a stub ``tensorrt`` package first on PYTHONPATH to stand for bindings in a given state (installed
but with their libraries missing; importable on a machine with no GPU). The stub replaces TensorRT only; the
probe subprocess, the cache and the CLI are the real ones.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from modelport.testing import run_cli
from trt_test_support import EXAMPLES, FIX, NOT_IMPORTABLE, cli_env, cuda_driver_present, write_stub

TRT_INSTALLED = importlib.util.find_spec("tensorrt") is not None
needs_no_tensorrt = pytest.mark.skipif(TRT_INSTALLED, reason="TensorRT is installed here; this checks the message without it")
needs_no_gpu = pytest.mark.skipif(cuda_driver_present(), reason="a CUDA device is present; this checks the no-device message")

BROKEN_BINDINGS = 'raise ImportError("libnvinfer.so.10: cannot open shared object file: No such file or directory")\n'


def _tensorrt_row(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert proc.returncode == 0, proc.stderr
    return next(f for f in json.loads(proc.stdout)["formats"] if f["name"] == "tensorrt")


@needs_no_tensorrt
def test_formats_lists_tensorrt_as_unavailable_with_the_install_command(tmp_path: Path) -> None:
    row = _tensorrt_row(run_cli("formats", "--json", env=cli_env(tmp_path)))
    assert row["status"] == "unavailable"
    assert row["reason"] == NOT_IMPORTABLE
    assert row["fix"] == FIX
    assert row["plugin"] == "modelport-export-tensorrt"
    assert row["can_export"] is False and row["can_validate"] is False


@needs_no_tensorrt
def test_export_to_tensorrt_exits_3_with_the_reason_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "engine"
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "--dynamic-batch", "-f", "tensorrt",
                   "--output-dir", str(out), env=cli_env(tmp_path / "cache"))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"error: format 'tensorrt' is unavailable: {NOT_IMPORTABLE} ({FIX})"
    assert not out.exists()


def test_bindings_whose_libraries_are_missing_are_reported_not_importable(tmp_path: Path) -> None:
    """find_spec finds such bindings; only really importing them (in the probe subprocess) shows they are broken."""
    stub = write_stub(tmp_path / "stub", BROKEN_BINDINGS)
    env = cli_env(tmp_path / "cache", stub)
    found = subprocess.run([sys.executable, "-c", "import importlib.util; print(importlib.util.find_spec('tensorrt') is not None)"],
                           capture_output=True, text=True, env=env, check=True)
    assert found.stdout.strip() == "True"

    row = _tensorrt_row(run_cli("formats", "--json", env=env))
    assert row["status"] == "unavailable"
    assert row["reason"] == f"{NOT_IMPORTABLE}: ImportError: libnvinfer.so.10: cannot open shared object file: No such file or directory"
    assert row["fix"] == FIX

    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "-f", "tensorrt",
                   "--output-dir", str(tmp_path / "out"), env=env)
    assert proc.returncode == 3
    assert f"format 'tensorrt' is unavailable: {NOT_IMPORTABLE}: ImportError: libnvinfer.so.10" in proc.stderr


@needs_no_gpu
def test_importable_tensorrt_without_a_gpu_reports_no_cuda_device(tmp_path: Path) -> None:
    stub = write_stub(tmp_path / "stub", '__version__ = "10.99.0"\n')
    env = cli_env(tmp_path / "cache", stub)
    row = _tensorrt_row(run_cli("formats", "--json", env=env))
    assert row["status"] == "unavailable"
    assert row["reason"] == "no CUDA device"
    assert "NVIDIA GPU" in str(row["fix"])
    assert row["summary"].startswith("unavailable: no CUDA device")

    out = tmp_path / "out"
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "-f", "tensorrt", "--output-dir", str(out),
                   env=env)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "error: format 'tensorrt' is unavailable: no CUDA device (" in proc.stderr
    assert not out.exists()


def test_the_import_probe_runs_once_and_is_cached_across_processes(tmp_path: Path) -> None:
    """The stub counts its imports: `formats` twice imports it once; changing the bindings makes the probe run again."""
    counter = tmp_path / "imports.log"
    body = f"open({str(counter)!r}, 'a').write('imported\\n')\n" + BROKEN_BINDINGS
    stub = write_stub(tmp_path / "stub", body)
    cache = tmp_path / "cache"
    env = cli_env(cache, stub)

    first = _tensorrt_row(run_cli("formats", "--json", env=env))
    second = _tensorrt_row(run_cli("formats", "--json", env=env))
    assert first == second
    assert counter.read_text().splitlines() == ["imported"]
    cached = json.loads((cache / "tensorrt-probe.json").read_text())
    assert cached["key"]["python"] == sys.executable
    assert cached["result"]["import_error"].startswith("ImportError: libnvinfer.so.10")

    init = stub / "tensorrt" / "__init__.py"
    later = init.stat().st_mtime + 10
    os.utime(init, (later, later))
    _tensorrt_row(run_cli("formats", "--json", env=env))
    assert counter.read_text().splitlines() == ["imported", "imported"]


def test_importing_the_plugin_and_checking_availability_imports_nothing_heavy(tmp_path: Path) -> None:
    """The module, and the availability check itself (the stub is imported only in the probe's child process)."""
    stub = write_stub(tmp_path / "stub", '__version__ = "10.99.0"\n')
    code = ("import sys, modelport_tensorrt; before = sorted(m for m in ('torch', 'tensorrt', 'numpy', 'onnx') if m in sys.modules); "
            "modelport_tensorrt.availability(); "
            "after = sorted(m for m in ('torch', 'tensorrt', 'numpy', 'onnx') if m in sys.modules); print(before, after)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=cli_env(tmp_path / "cache", stub))
    assert proc.stdout.strip() == "[] []"


@needs_no_tensorrt
def test_inspect_an_engine_file_here_says_why_it_cannot_be_opened(tmp_path: Path) -> None:
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"\x01" * 128)
    proc = run_cli("inspect", str(engine), "--json", env=cli_env(tmp_path / "cache"))
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["format"] == "tensorrt"
    assert info["bytes"] == 128
    assert info["note"] == f"cannot open the engine here: {NOT_IMPORTABLE}"

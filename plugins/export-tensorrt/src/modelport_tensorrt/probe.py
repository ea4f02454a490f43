"""Can TensorRT work on this machine? Answered by really importing it — in a subprocess, cached.

``importlib.util.find_spec("tensorrt")`` finds the Python bindings even when the libraries they load
(libnvinfer) are missing, so the only honest check is an import. Importing TensorRT (and torch, to see its
CUDA support) takes seconds, so it runs once in a child process and the answer is cached twice: in this
process, and in a small JSON file under the user cache directory, keyed by everything that can change the
answer (the Python executable, where the bindings live and when they or their site-packages folder changed, the
torch version, the NVIDIA device nodes, ``CUDA_VISIBLE_DEVICES``, ``LD_LIBRARY_PATH``) and kept for a day. When the bindings are not installed at all, the
answer comes from ``find_spec`` with no subprocess.

The cache lives in ``$MODELPORT_CACHE_DIR`` when set, else the platform's user cache folder
(``$XDG_CACHE_HOME/modelport`` or ``~/.cache/modelport`` on Linux).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from modelport import Availability, install_hint

NOT_IMPORTABLE = "TensorRT runtime not importable"
NVIDIA_INDEX = "https://pypi.nvidia.com"
INSTALL_FIX = install_hint("modelport-export-tensorrt", extra="runtime", index_url=NVIDIA_INDEX)
NO_DEVICE = "no CUDA device"
CACHE_FILE = "tensorrt-probe.json"
CACHE_TTL_S = 24 * 3600
PROBE_TIMEOUT_S = 120

# Runs in a child process: import tensorrt, count CUDA devices through the driver API (no toolkit needed),
# and only then import torch to see whether it can hand TensorRT CUDA buffers. Prints one JSON line.
PROBE_CODE = r"""
import ctypes, json, sys
out = {}
try:
    import tensorrt as trt
    out["tensorrt"] = str(getattr(trt, "__version__", "?"))
except BaseException as exc:
    out["import_error"] = (type(exc).__name__ + ": " + str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)[:300]
    print(json.dumps(out)); sys.exit(0)
names = ["nvcuda.dll"] if sys.platform == "win32" else ["libcuda.so.1", "libcuda.so", "libcuda.dylib"]
lib = None
for name in names:
    try:
        lib = ctypes.CDLL(name)
        break
    except OSError:
        continue
if lib is None:
    out["devices"] = 0
    out["device_error"] = "the NVIDIA driver library (" + names[0] + ") was not found"
    print(json.dumps(out)); sys.exit(0)
count = ctypes.c_int(0)
rc = lib.cuInit(0)
if rc == 0:
    rc = lib.cuDeviceGetCount(ctypes.byref(count))
out["devices"] = int(count.value) if rc == 0 else 0
if rc != 0:
    out["device_error"] = "cuInit/cuDeviceGetCount returned CUDA error " + str(rc)
    print(json.dumps(out)); sys.exit(0)
if out["devices"] > 0:
    try:
        import torch
        out["torch"] = torch.__version__
        out["torch_cuda"] = bool(torch.cuda.is_available())
        out["torch_cuda_version"] = torch.version.cuda
    except BaseException as exc:
        out["torch_error"] = (type(exc).__name__ + ": " + str(exc))[:300]
print(json.dumps(out))
"""

_memo: dict[str, Availability] = {}


def cache_dir() -> Path:
    """Where the probe result is kept: ``$MODELPORT_CACHE_DIR`` or the platform's user cache folder."""
    env = os.environ.get("MODELPORT_CACHE_DIR")
    if env:
        return Path(env)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "modelport"


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _spec_origin(name: str) -> str | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    return spec.origin or (locations[0] if locations else name)


def _mtime(path: str | None) -> float | None:
    try:
        return os.stat(path).st_mtime if path else None
    except OSError:
        return None


def probe_key(trt_origin: str) -> dict[str, Any]:
    """Everything that can change the probe's answer; a cached answer is reused only when all of it matches."""
    devices = sorted(p.name for p in Path("/dev").glob("nvidia*")) if sys.platform.startswith("linux") else []
    origin = Path(trt_origin)
    # the folder holding the bindings changes whenever pip adds or removes a package there (tensorrt_libs...)
    site = origin.parent.parent if origin.name == "__init__.py" else origin.parent
    return {
        "python": sys.executable,
        "python_version": sys.version.split()[0],
        "tensorrt_origin": trt_origin,
        "tensorrt_mtime": _mtime(trt_origin),
        "site_mtime": _mtime(str(site)),
        "ld_library_path": os.environ.get("LD_LIBRARY_PATH"),
        "tensorrt_dist": _dist_version("tensorrt") or _dist_version("tensorrt-cu12") or _dist_version("tensorrt_cu12"),
        "torch_dist": _dist_version("torch"),
        "dev_nodes": devices,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def interpret(result: dict[str, Any]) -> Availability:
    """Turn the probe's JSON into an Availability with the reason a user reads in ``modelport formats``."""
    if "import_error" in result:
        return Availability.unavailable(f"{NOT_IMPORTABLE}: {result['import_error']}", fix=INSTALL_FIX)
    if not result.get("devices"):
        detail = result.get("device_error") or "the NVIDIA driver reports no device"
        return Availability.unavailable(NO_DEVICE, fix=f"TensorRT builds and runs engines on an NVIDIA GPU; {detail}")
    if "torch_error" in result:
        return Availability.unavailable(f"torch failed to import: {result['torch_error']}")
    if not result.get("torch_cuda"):
        return Availability.unavailable(
            f"PyTorch {result.get('torch', '?')} has no CUDA support (TensorRT buffers are torch CUDA tensors)",
            fix="install a CUDA build of torch (https://pytorch.org/get-started/locally/)",
        )
    return Availability.ok()


def _read_cache(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    if time.time() - float(data.get("time", 0)) > CACHE_TTL_S:
        return None
    result = data.get("result")
    return result if isinstance(result, dict) else None


def _write_cache(path: Path, key: dict[str, Any], result: dict[str, Any]) -> None:
    """Best effort: a read-only home must never break ``modelport formats``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": key, "time": time.time(), "result": result}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def run_probe(timeout: float = PROBE_TIMEOUT_S) -> dict[str, Any] | None:
    """Import TensorRT (and check CUDA) in a child process; None when the child died or hung."""
    import subprocess

    try:
        proc = subprocess.run([sys.executable, "-c", PROBE_CODE], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in reversed(proc.stdout.strip().splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            return data
    return {"import_error": f"the import crashed the interpreter (exit code {proc.returncode})"}


def tensorrt_availability() -> Availability:
    """The cached answer to "can TensorRT build and run engines here?" — see the module docstring."""
    origin = _spec_origin("tensorrt")
    if origin is None:
        return Availability.unavailable(NOT_IMPORTABLE, fix=INSTALL_FIX)
    key = probe_key(origin)
    memo_key = json.dumps(key, sort_keys=True)
    if memo_key in _memo:
        return _memo[memo_key]
    path = cache_dir() / CACHE_FILE
    result = _read_cache(path, key)
    if result is None:
        result = run_probe()
        if result is None:
            return Availability.unavailable(f"{NOT_IMPORTABLE}: importing it timed out after {PROBE_TIMEOUT_S} s",
                                            fix=INSTALL_FIX)
        _write_cache(path, key, result)
    answer = interpret(result)
    _memo[memo_key] = answer
    return answer

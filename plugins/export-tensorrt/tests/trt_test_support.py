"""Shared helpers: paths, the CLI's environment, stub ``tensorrt`` packages, an ONNX summary (more in modelport.testing)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from modelport_tensorrt.probe import INSTALL_FIX

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "models.py"
NOT_IMPORTABLE = "TensorRT runtime not importable"
FIX = INSTALL_FIX  # the hint as the plugin computes it here (a folder of this checkout, or the distribution name)


def cli_env(cache_dir: Path, stub_dir: Path | None = None) -> dict[str, str]:
    """The environment of a CLI run: its own probe cache, and a stub tensorrt first on the path when given."""
    env = dict(os.environ)
    env["MODELPORT_CACHE_DIR"] = str(cache_dir)
    if stub_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(stub_dir), *filter(None, [env.get("PYTHONPATH")])])
    return env


def write_stub(root: Path, body: str) -> Path:
    """A ``tensorrt`` package under ``root`` whose __init__ is ``body``: stands in for bindings in a given state."""
    pkg = root / "tensorrt"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(body, encoding="utf-8")
    return root


def cuda_driver_present() -> bool:
    """Whether this machine has an NVIDIA driver with a device (the stub tests assume it has not)."""
    import ctypes

    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        return lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
    return False


def onnx_summary(path: Path) -> dict[str, Any]:
    """What the engine would be built from: opset, inputs/outputs with dims (dim_param for dynamic), float types."""
    import onnx

    model = onnx.load(str(path))

    def dims(vi: Any) -> list[Any]:
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    return {
        "opset": next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "inputs": {i.name: {"dims": dims(i), "elem_type": onnx.TensorProto.DataType.Name(i.type.tensor_type.elem_type)}
                   for i in model.graph.input},
        "outputs": {o.name: dims(o) for o in model.graph.output},
        "initializer_types": sorted({onnx.TensorProto.DataType.Name(t.data_type) for t in model.graph.initializer}),
    }

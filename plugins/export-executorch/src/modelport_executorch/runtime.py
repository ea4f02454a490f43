"""Run and describe a ``.pte`` program with ``executorch.runtime`` on CPU."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

# c10::ScalarType codes as TensorInfo.dtype() reports them
SCALAR_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32", 7: "float64",
                11: "bool", 15: "bfloat16"}


def _load(path: Path) -> Any:
    import warnings

    from executorch.runtime import Runtime, Verification

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="This API is experimental")
        return Runtime.get().load_program(Path(path), verification=Verification.Minimal)


def _info(t: Any) -> dict[str, Any]:
    return {"shape": [int(d) for d in t.sizes()], "dtype": SCALAR_TYPES.get(int(t.dtype()), f"scalar_type_{t.dtype()}")}


def method_io(path: Path, method: str = "forward") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The method's inputs and outputs: planned shape (the largest it accepts) and dtype, in order."""
    meta = _load(path).metadata(method)
    return ([_info(meta.input_tensor_meta(i)) for i in range(meta.num_inputs())],
            [_info(meta.output_tensor_meta(i)) for i in range(meta.num_outputs())])


def _set_threads(threads: int | None) -> None:
    if not threads:
        return
    try:
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
    except ImportError:  # pragma: no cover - older wheels without the threadpool binding
        return
    _unsafe_reset_threadpool(int(threads))


class ExecuTorchRunner:
    """Load a program once; call it with the core's input names, get outputs in model order.

    Inputs are cast to the dtypes the program declares. A batch larger than the program's planned capacity
    (recorded at export) runs in chunks of at most that capacity; every chunked call is counted in ``checks()``.
    """

    def __init__(self, path: Path, details: Mapping[str, Any], threads: int | None = None) -> None:
        import importlib.metadata

        _set_threads(threads)
        self.program = _load(path)
        self.method = self.program.load_method("forward")
        meta = self.method.metadata
        self.inputs = [_info(meta.input_tensor_meta(i)) for i in range(meta.num_inputs())]
        self.input_order: list[str] | None = list(details.get("input_order") or []) or None
        batch = details.get("batch") or {}
        self.dynamic = bool(batch.get("dynamic"))
        self.capacity = min((i["shape"][0] for i in self.inputs if i["shape"]), default=1)
        self.chunked_calls = 0
        self.runtime = f"executorch {importlib.metadata.version('executorch')} (executorch.runtime, CPU)"

    def __call__(self, inputs: Mapping[str, Any]) -> list[Any]:
        import numpy as np
        import torch

        names = self.input_order or list(inputs)
        arrays = []
        for name, info in zip(names, self.inputs, strict=True):
            arr = np.asarray(inputs[name])
            want = np.dtype(info["dtype"]) if info["dtype"] != "bfloat16" else np.dtype("float32")
            arrays.append(np.ascontiguousarray(arr.astype(want, copy=False)))
        for name, arr, info in zip(names, arrays, self.inputs, strict=True):
            if arr.ndim != len(info["shape"]) or any(d > c for d, c in zip(arr.shape[1:], info["shape"][1:], strict=True)):
                raise ValueError(f"executorch: input {name}{list(arr.shape)} does not fit the program's {info['shape']}")
            if not self.dynamic and arr.shape[0] != info["shape"][0]:
                raise ValueError(f"executorch: input {name}{list(arr.shape)}: the program has a fixed batch of {info['shape'][0]}")
        n = arrays[0].shape[0] if arrays and arrays[0].ndim else 1
        step = self.capacity if n > self.capacity else n
        if step < n:
            self.chunked_calls += 1
        results: list[list[Any]] = []
        for start in range(0, n, step):
            chunk = [torch.from_numpy(a[start:start + step]) if a.ndim else torch.from_numpy(a) for a in arrays]
            out = self.method.execute(chunk)
            results.append([o.detach().numpy().copy() if isinstance(o, torch.Tensor) else np.asarray(o) for o in out])
        if len(results) == 1:
            return results[0]
        return [np.concatenate([r[j] for r in results], axis=0) for j in range(len(results[0]))]

    def checks(self) -> dict[str, Any]:
        checks: dict[str, Any] = {
            "program": "loaded",
            "inputs": dict(zip(self.input_order or [], self.inputs, strict=False)),
        }
        if self.dynamic:
            checks["batch"] = f"dynamic, up to {self.capacity} per call"
            if self.chunked_calls:
                checks["batch"] += f"; {self.chunked_calls} input set(s) ran in chunks of at most {self.capacity}"
        return checks


def describe_program(path: Path) -> dict[str, Any]:
    """For ``modelport inspect``: methods, their inputs and outputs (planned shapes), backends, size."""
    program = _load(path)
    methods = {}
    for name in sorted(program.method_names):
        meta = program.metadata(name)
        methods[name] = {"inputs": [_info(meta.input_tensor_meta(i)) for i in range(meta.num_inputs())],
                         "outputs": [_info(meta.output_tensor_meta(i)) for i in range(meta.num_outputs())]}
    data = path.read_bytes()
    backends = [b for b in ("XnnpackBackend", "CoreMLBackend", "VulkanBackend", "QnnBackend") if b.encode() in data]
    return {"format": "executorch", "path": str(path), "bytes": len(data), "methods": methods, "backends": backends}

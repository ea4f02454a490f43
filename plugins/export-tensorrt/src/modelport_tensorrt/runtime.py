"""Run an engine on the GPU (TensorRT 10 tensor API, torch CUDA tensors as buffers), describe and inspect it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport import Artifact

from modelport_tensorrt import FORMAT
from modelport_tensorrt.build import TRT_TO_TORCH


def _torch_dtype(torch: Any, trt_dtype: Any) -> Any:
    name = getattr(trt_dtype, "name", str(trt_dtype).split(".")[-1])
    if name not in TRT_TO_TORCH:
        raise TypeError(f"tensorrt: engine tensor type {name} has no torch equivalent")
    return getattr(torch, TRT_TO_TORCH[name])


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(str(int(d)) for d in shape)


class TensorRTRunner:
    """A deserialized engine and one execution context: ``runner({name: ndarray}) -> [ndarray, ...]``.

    Inputs are keyed by the core's input names and mapped onto the engine's (``input_map``: an input the ONNX
    exporter dropped is ignored). Outputs come back in the network's output order, which is the ONNX graph's
    and so the core's. Buffers are torch CUDA tensors on ``device``; the engine runs with ``execute_async_v3`` on
    torch's current stream. ``threads`` has no meaning on the GPU and is ignored.
    """

    def __init__(self, path: Path, *, input_map: Mapping[str, str | None] | None = None,
                 outputs: Sequence[str] | None = None, device: int = 0) -> None:
        import tensorrt as trt
        import torch

        from modelport_tensorrt.build import make_logger

        if not torch.cuda.is_available():
            raise RuntimeError("tensorrt: no CUDA device visible to torch")
        self.torch = torch
        self.trt = trt
        self.device = torch.device("cuda", int(device))
        self.logger = make_logger(trt)
        with torch.cuda.device(self.device):
            self.runtime_ = trt.Runtime(self.logger)
            self.engine = self.runtime_.deserialize_cuda_engine(Path(path).read_bytes())
            if self.engine is None:
                reason = "; ".join(self.logger.errors[:2]) or "TensorRT gave no reason"
                raise RuntimeError(f"tensorrt: cannot deserialize {path} ({reason}); an engine runs only with the "
                                   "TensorRT version and GPU model that built it")
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        engine_outputs = [n for n in names if n not in self.inputs]
        self.outputs = [n for n in (outputs or engine_outputs) if n in engine_outputs] or engine_outputs
        self.input_map = dict(input_map) if input_map else {n: n for n in self.inputs}
        self.dtypes = {n: _torch_dtype(torch, self.engine.get_tensor_dtype(n)) for n in names}
        self.ranges: dict[str, tuple[list[int], list[int]]] = {}
        for n in self.inputs:
            static = [int(d) for d in self.engine.get_tensor_shape(n)]
            if -1 in static and self.engine.num_optimization_profiles:
                lo, _, hi = self.engine.get_tensor_profile_shape(n, 0)
                self.ranges[n] = ([int(d) for d in lo], [int(d) for d in hi])
            else:
                self.ranges[n] = (static, static)
        self.runtime = f"TensorRT {trt.__version__} on {torch.cuda.get_device_name(self.device)}"

    @classmethod
    def for_artifact(cls, artifact: Artifact, options: Mapping[str, Any]) -> TensorRTRunner:
        details = artifact.details or {}
        device = options.get("device")
        if device is None:
            device = (details.get("builder") or {}).get("device") or 0
        return cls(artifact.path, input_map=details.get("input_map"), outputs=details.get("outputs"), device=int(device))

    def _check_shape(self, name: str, shape: Sequence[int]) -> None:
        lo, hi = self.ranges[name]
        if len(shape) != len(lo) or not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
            allowed = _fmt(lo) if lo == hi else f"{_fmt(lo)} .. {_fmt(hi)}"
            raise ValueError(f"input {name} has shape {_fmt(shape)}; this engine accepts {allowed} (its optimization "
                             "profile); rebuild with -o max_shape=... / max_batch=... for other shapes")

    def __call__(self, inputs: Mapping[str, Any]) -> list[Any]:
        import numpy as np

        torch = self.torch
        keep: list[Any] = []
        with torch.cuda.device(self.device):
            stream = torch.cuda.current_stream(self.device)
            for core, net in self.input_map.items():
                if net is None:
                    continue
                if core not in inputs:
                    raise KeyError(f"tensorrt: missing input {core!r}")
                arr = np.ascontiguousarray(inputs[core])
                self._check_shape(net, arr.shape)
                t = torch.from_numpy(arr).to(self.device, dtype=self.dtypes[net]).contiguous()
                keep.append(t)
                if not self.context.set_input_shape(net, tuple(t.shape)):
                    raise ValueError(f"tensorrt: the engine rejects shape {_fmt(t.shape)} for input {net}")
                self.context.set_tensor_address(net, int(t.data_ptr()))
            allocators: dict[str, Any] = {}
            results: dict[str, Any] = {}
            for name in self.outputs:
                shape = [int(d) for d in self.context.get_tensor_shape(name)]
                if any(d < 0 for d in shape):
                    # data-dependent output shape: TensorRT asks for memory while it runs
                    allocators[name] = _output_allocator(self.trt, torch, self.device)
                    self.context.set_output_allocator(name, allocators[name])
                    continue
                out = torch.empty(shape, dtype=self.dtypes[name], device=self.device)
                results[name] = out
                self.context.set_tensor_address(name, int(out.data_ptr()) if out.numel() else 0)
            if not self.context.execute_async_v3(stream.cuda_stream):
                reason = "; ".join(self.logger.errors[-2:]) or "TensorRT gave no reason"
                raise RuntimeError(f"tensorrt: execute_async_v3 failed: {reason}")
            stream.synchronize()
            for name, alloc in allocators.items():
                results[name] = alloc.tensor(self.dtypes[name])
        del keep
        return [_to_numpy(torch, results[n]) for n in self.outputs]


def _to_numpy(torch: Any, t: Any) -> Any:
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.detach().cpu().numpy()


def _output_allocator(trt: Any, torch: Any, device: Any) -> Any:
    """An IOutputAllocator backed by a torch uint8 CUDA buffer, for outputs whose shape is known only at run time."""

    class Allocator(trt.IOutputAllocator):
        def __init__(self) -> None:
            trt.IOutputAllocator.__init__(self)
            self.buffer: Any = None
            self.shape: list[int] = []

        def reallocate_output(self, tensor_name: str, memory: int, size: int, alignment: int) -> int:
            if self.buffer is None or self.buffer.numel() < size:
                self.buffer = torch.empty(max(int(size), 1), dtype=torch.uint8, device=device)
            return int(self.buffer.data_ptr())

        def reallocate_output_async(self, tensor_name: str, memory: int, size: int, alignment: int, stream: int) -> int:
            return self.reallocate_output(tensor_name, memory, size, alignment)

        def notify_shape(self, tensor_name: str, shape: Any) -> None:
            self.shape = [int(d) for d in shape]

        def tensor(self, dtype: Any) -> Any:
            count = 1
            for d in self.shape:
                count *= d
            item = torch.empty((), dtype=dtype).element_size()
            if self.buffer is None or count == 0:
                return torch.empty(self.shape, dtype=dtype, device=device)
            return self.buffer[: count * item].view(dtype).reshape(self.shape)

    return Allocator()


# ----------------------------------------------------------------------------- metadata and inspect


def describe_for_metadata(artifact: Artifact) -> dict[str, Any]:
    """metadata.json fields: what a deployment needs to know to load this engine (TensorRT version, GPU, profile)."""
    d = artifact.details or {}
    info = {
        "tensorrt_version": d.get("tensorrt"),
        "built_on": d.get("device"),
        "portability": "runs only with the same TensorRT version on the same GPU model (compute capability)",
        "precision": artifact.precision,
        "builder": d.get("builder"),
        "profile": d.get("profile"),
        "inputs": {n: {k: v for k, v in io.items() if k != "mode"}
                   for n, io in ((d.get("engine") or {}).get("io") or {}).items() if io.get("mode") == "input"},
        "outputs": d.get("outputs"),
        "layers": (d.get("engine") or {}).get("layers"),
        "onnx": {k: (d.get("upstream") or {}).get(k) for k in ("opset", "exporter")},
        "calibration_cache": (d.get("calibration") or {}).get("cache"),
        "engine_file": "plain TensorRT serialization (no custom header): trtexec --loadEngine=model.engine",
    }
    return {"extra_metadata": {FORMAT: {k: v for k, v in info.items() if v is not None}}}


def inspect_engine(path: Path) -> dict[str, Any]:
    """``modelport inspect model.engine``: I/O and layers when TensorRT can load it here; else what metadata.json says."""
    from modelport_tensorrt.probe import tensorrt_availability

    info: dict[str, Any] = {"format": FORMAT, "path": str(path), "bytes": path.stat().st_size}
    md_path = path.parent / "metadata.json"
    if md_path.is_file():
        try:
            md = json.loads(md_path.read_text(encoding="utf-8"))
            recorded = (md.get("extra_metadata") or {}).get(FORMAT)
            if recorded:
                info["recorded"] = recorded
        except (OSError, ValueError):
            pass
    avail = tensorrt_availability()
    if not avail.export:
        info["note"] = f"cannot open the engine here: {avail.reason}"
        return info
    import tensorrt as trt

    from modelport_tensorrt.build import describe_engine, make_logger

    try:
        info.update(describe_engine(trt, make_logger(trt), path.read_bytes()))
        info["tensorrt_version"] = trt.__version__
    except Exception as exc:
        info["note"] = f"TensorRT {trt.__version__} cannot load it: {exc}"
    return info

"""Run and describe a LiteRT flatbuffer with the ai-edge-litert interpreter (no torch, no TensorFlow)."""

from __future__ import annotations

import collections
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SIGNATURE = "serving_default"


def _interpreter(path: Path, threads: int | None = None) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path), num_threads=int(threads) if threads else None)


def _io(details: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    import numpy as np

    return {name: {"shape": [int(d) for d in d_["shape"]], "dtype": np.dtype(d_["dtype"]).name}
            for name, d_ in details.items()}


def signature_io(path: Path, signature: str = SIGNATURE) -> tuple[dict[str, Any], dict[str, Any]]:
    """The signature's inputs and outputs: name → {shape, dtype}, as the flatbuffer declares them."""
    runner = _interpreter(path).get_signature_runner(signature)
    return _io(runner.get_input_details()), _io(runner.get_output_details())


class TFLiteRunner:
    """Load a flatbuffer once; call it with the core's input names and dtypes, get outputs in model order.

    The flatbuffer has fixed shapes. The runner feeds what the artifact expects: channels-last inputs when it
    was converted with ``layout=nhwc``, int32 where PyTorch had int64 (refusing values that do not fit). When the
    export declared a dynamic batch, the flatbuffer holds batch 1 and a larger batch runs one sample at a time.
    """

    def __init__(self, path: Path, details: Mapping[str, Any], threads: int | None = None) -> None:
        import ai_edge_litert
        import numpy as np

        self.interpreter = _interpreter(path, threads)
        self.signature = str(details.get("signature") or SIGNATURE)
        self._runner = self.interpreter.get_signature_runner(self.signature)
        inputs = _io(self._runner.get_input_details())
        outputs = _io(self._runner.get_output_details())
        self.input_order: list[str] = list(details.get("input_order") or inputs)
        self.output_order: list[str] = list(details.get("output_order") or outputs)
        self.shapes = {n: tuple(inputs[n]["shape"]) for n in self.input_order}
        self.dtypes = {n: np.dtype(inputs[n]["dtype"]) for n in self.input_order}
        self.nhwc = set(details.get("nhwc_inputs") or ())
        self.per_sample = bool((details.get("batch") or {}).get("dynamic_requested"))
        self.runtime = f"ai-edge-litert {ai_edge_litert.__version__}"
        self.sample_loop_calls = 0

    def _cast(self, name: str, arr: Any) -> Any:
        import numpy as np

        want = self.dtypes[name]
        if arr.dtype == want:
            return arr
        if np.issubdtype(want, np.integer) and arr.size:
            info = np.iinfo(want)
            if arr.min() < info.min or arr.max() > info.max:
                raise ValueError(f"tflite: input {name} holds values outside {want.name}, the dtype the flatbuffer takes")
        return arr.astype(want)

    def _run(self, arrays: Mapping[str, Any]) -> list[Any]:
        out = self._runner(**arrays)
        return [out[name] for name in self.output_order]

    def __call__(self, inputs: Mapping[str, Any]) -> list[Any]:
        import numpy as np

        arrays: dict[str, Any] = {}
        for name in self.input_order:
            arr = np.asarray(inputs[name])
            if name in self.nhwc:
                arr = arr.transpose(0, 2, 3, 1)
            arrays[name] = np.ascontiguousarray(self._cast(name, arr))
        if all(a.shape == self.shapes[n] for n, a in arrays.items()):
            return self._run(arrays)
        batches = {a.shape[0] for a in arrays.values() if a.ndim}
        if (self.per_sample and len(batches) == 1
                and all(a.ndim and a.shape[1:] == self.shapes[n][1:] and self.shapes[n][0] == 1 for n, a in arrays.items())):
            self.sample_loop_calls += 1
            runs = [self._run({n: a[i:i + 1] for n, a in arrays.items()}) for i in range(batches.pop())]
            return [np.concatenate([r[j] for r in runs], axis=0) for j in range(len(self.output_order))]
        got = ", ".join(f"{n}{list(a.shape)}" for n, a in arrays.items())
        want = ", ".join(f"{n}{list(s)}" for n, s in self.shapes.items())
        raise ValueError(f"tflite: the flatbuffer has fixed input shapes {want}; got {got}")

    def checks(self) -> dict[str, Any]:
        """What the interpreter saw, for export.json's validation checks."""
        checks: dict[str, Any] = {
            "interpreter": "loaded",
            "signature": f"{self.signature}: {', '.join(self.input_order)} -> {', '.join(self.output_order)}",
            "input_shapes": {n: list(s) for n, s in self.shapes.items()},
            "input_dtypes": {n: d.name for n, d in self.dtypes.items()},
        }
        if self.per_sample:
            checks["batch"] = (f"flatbuffer fixed at batch 1; {self.sample_loop_calls} input set(s) of a larger batch "
                               "ran one sample at a time")
        return checks


def describe_flatbuffer(path: Path) -> dict[str, Any]:
    """For ``modelport inspect``: signatures, their IO, op histogram and size."""
    interp = _interpreter(path)
    signatures = {}
    for key in interp.get_signature_list():
        runner = interp.get_signature_runner(key)
        signatures[key] = {"inputs": _io(runner.get_input_details()), "outputs": _io(runner.get_output_details())}
    ops: collections.Counter[str] = collections.Counter()
    try:
        plain = _interpreter(path)  # a signature runner holds tensors; a fresh interpreter can allocate
        plain.allocate_tensors()
        ops.update(str(op["op_name"]) for op in plain._get_ops_details())
    except Exception:  # the op list is a private API; the rest of the description stands without it
        pass
    return {
        "format": "tflite", "path": str(path), "bytes": path.stat().st_size, "signatures": signatures,
        "nodes": sum(ops.values()), "ops": dict(ops.most_common()),
    }

"""Run an ONNX artifact in onnxruntime (CPU execution provider) and check it with onnx.checker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport import Artifact, ValidationFailed, ValidationRun

# onnxruntime element type strings → numpy dtypes for casting the core's arrays when they differ
_ORT_TYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int16)": "int16", "tensor(int8)": "int8",
    "tensor(uint8)": "uint8", "tensor(bool)": "bool",
}


# the ``graph_opt`` option → onnxruntime's graph optimization level (applied when the session is created)
GRAPH_OPT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
                    "all": "ORT_ENABLE_ALL"}


def session_options(threads: int | None, quiet: bool = False, graph_opt: str | None = None) -> Any:
    """CPU session options: ``threads`` intra-op threads (None: onnxruntime's default), sequential execution,
    ``graph_opt`` one of GRAPH_OPT_LEVELS (None: onnxruntime's default, all)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if graph_opt:
        if graph_opt not in GRAPH_OPT_LEVELS:
            from modelport import ConfigError

            raise ConfigError(f"onnx: graph_opt={graph_opt!r}: expected one of {', '.join(GRAPH_OPT_LEVELS)}")
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPT_LEVELS[graph_opt])
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if quiet:
        so.log_severity_level = 4  # a probe that is expected to fail should not print ORT's error log
        # a one-off probe: idle worker threads should not spin on the CPU for the rest of the export
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


class OnnxRunner:
    """An onnxruntime session loaded once; call it with {input name: array}, get the outputs in graph order."""

    def __init__(self, path: str | Path, threads: int | None = None, quiet: bool = False,
                 graph_opt: str | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.threads = threads
        self.session = ort.InferenceSession(str(self.path), sess_options=session_options(threads, quiet, graph_opt),
                                            providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_types = {i.name: _ORT_TYPES.get(i.type) for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.runtime = f"onnxruntime {ort.__version__} (CPUExecutionProvider)"

    def feed(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The session's inputs from the core's: by name, in the graph's order (unused inputs are not in the graph)."""
        import numpy as np

        feed: dict[str, Any] = {}
        values = list(inputs.values())
        for i, name in enumerate(self.input_names):
            if name in inputs:
                arr = inputs[name]
            elif len(values) == len(self.input_names):
                arr = values[i]  # the artifact renamed its inputs: same order as the core's
            else:
                raise ValidationFailed(f"onnx: the model needs input {name!r}, not among {', '.join(inputs)}")
            arr = np.asarray(arr)
            want = self.input_types.get(name)
            if want and arr.dtype != np.dtype(want):
                arr = arr.astype(want)
            feed[name] = np.ascontiguousarray(arr)
        return feed

    def __call__(self, inputs: Mapping[str, Any]) -> list[Any]:
        return list(self.session.run(self.output_names, self.feed(inputs)))


def check_model(path: Path) -> str:
    """onnx.checker on the file by path, so models with external data are checked without loading them whole."""
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValidationFailed(f"onnx: onnx.checker rejects {path.name}: {msg}"[:600]) from exc
    return "ok"


def validate_artifact(artifact: Artifact, inputs: Sequence[Mapping[str, Any]]) -> ValidationRun:
    """onnx.checker (structure) plus outputs from the runner on every input set; the core compares them."""
    from modelport import missing_modules

    from modelport_onnx.export import first_line

    checks: dict[str, Any] = {"onnx.checker": check_model(artifact.path)}
    if missing_modules("onnxruntime"):
        return ValidationRun(outputs=None, checks=checks,
                             skipped="onnxruntime is not installed (pip install onnxruntime) — structure checked only")
    try:
        runner = OnnxRunner(artifact.path, threads=artifact.options.get("threads"),
                            graph_opt=artifact.options.get("graph_opt"))
    except Exception as exc:
        raise ValidationFailed(f"onnx: onnxruntime cannot load {artifact.path.name}: {first_line(exc)}") from exc
    checks["onnxruntime.load"] = "ok"
    outputs = []
    for i, s in enumerate(inputs):
        try:
            outputs.append(runner(dict(s)))
        except ValidationFailed:
            raise
        except Exception as exc:
            shapes = ", ".join(f"{k}{list(getattr(v, 'shape', []))}" for k, v in s.items())
            raise ValidationFailed(f"onnx: onnxruntime failed on input set {i} ({shapes}): {first_line(exc)}") from exc
    return ValidationRun(outputs=outputs, checks=checks, runtime=runner.runtime)

"""Build a TensorRT engine from an ONNX file: parse, report what TensorRT cannot build, configure, build, write.

This is the only part of the plugin that needs TensorRT and a GPU at export time. It writes exactly the bytes
``build_serialized_network`` returns to ``model.engine`` — nothing prepended or appended — so the file loads in
``trtexec --loadEngine`` and any TensorRT runtime of the same version.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport import ConfigError, ExportFailed

from modelport_tensorrt.profiles import calibration_shapes, fit_to_network

if TYPE_CHECKING:  # pragma: no cover
    from modelport_tensorrt.export import BuildPlan

MAX_NODES_IN_MESSAGE = 8

# TensorRT data type name → numpy dtype name (bfloat16 has no numpy dtype: it travels as float32)
TRT_TO_NUMPY = {
    "FLOAT": "float32", "HALF": "float16", "BF16": "float32", "INT8": "int8", "INT32": "int32", "INT64": "int64",
    "BOOL": "bool", "UINT8": "uint8", "FP8": "float32", "INT4": "int8",
}
TRT_TO_TORCH = {
    "FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "INT32": "int32", "INT64": "int64",
    "BOOL": "bool", "UINT8": "uint8",
}


# ----------------------------------------------------------------------------- reporting (pure)


def describe_parser_failure(errors: Sequence[Mapping[str, Any]], unsupported: Sequence[Mapping[str, Any]]) -> str:
    """One line naming every node TensorRT's ONNX parser refused, by name and op, with the parser's reason.

    ``errors`` are the parser's errors (``node``, ``name``, ``op``, ``code``, ``desc``); ``unsupported`` the nodes of
    the subgraphs ``supports_model`` marks unsupported (``name``, ``op``). A node in both is listed once.
    """
    items: list[str] = []
    seen: set[str] = set()
    graph_level: list[str] = []
    for e in errors:
        desc = " ".join(str(e.get("desc") or "").split())[:200]
        code = str(e.get("code") or "").removeprefix("ErrorCode.")
        if e.get("name") or e.get("op"):
            key = f"{e.get('name')}|{e.get('op')}"
            if key in seen:
                continue
            seen.add(key)
            items.append(f"{e.get('name') or '<unnamed>'} ({e.get('op') or '?'}): {code}: {desc}".rstrip(": "))
        else:
            graph_level.append(f"{code}: {desc}".strip(": "))
    for u in unsupported:
        key = f"{u.get('name')}|{u.get('op')}"
        if key in seen:
            continue
        seen.add(key)
        items.append(f"{u.get('name') or '<unnamed>'} ({u.get('op') or '?'}): not supported by this TensorRT")
    parts = []
    if items:
        shown = items[:MAX_NODES_IN_MESSAGE]
        more = f"; and {len(items) - len(shown)} more" if len(items) > len(shown) else ""
        ops = sorted({str(u.get("op")) for u in [*errors, *unsupported] if u.get("op")})
        parts.append(f"{len(items)} node(s) TensorRT cannot build" + (f" (ops: {', '.join(ops)})" if ops else "")
                     + ": " + "; ".join(shown) + more)
    if graph_level:
        parts.append("; ".join(dict.fromkeys(graph_level))[:400])
    if not parts:
        parts.append("the parser gave no reason")
    return "tensorrt: TensorRT's ONNX parser refused the model: " + " — ".join(parts)


def onnx_nodes(path: Path) -> list[tuple[str, str]]:
    """(name, op_type) of each top-level node, by index — parser errors and supports_model name nodes by index."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return [(n.name, n.op_type) for n in model.graph.node]


def _node(nodes: Sequence[tuple[str, str]], index: int) -> tuple[str | None, str | None]:
    if 0 <= index < len(nodes):
        return nodes[index]
    return None, None


def parser_errors(parser: Any, nodes: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """The parser's errors as dicts; node name and op from the error (TensorRT 10) or the ONNX graph by index."""
    out = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        index = int(err.node())
        name, op = _node(nodes, index)
        if hasattr(err, "node_name"):
            name = err.node_name() or name
        if hasattr(err, "node_operator"):
            op = err.node_operator() or op
        out.append({"node": index, "name": name, "op": op, "code": str(err.code()), "desc": err.desc()})
    return out


def unsupported_nodes(trt: Any, builder: Any, logger: Any, onnx_path: Path, nodes: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Nodes in the subgraphs ``supports_model`` (or ``supports_model_v2``) marks unsupported, on a fresh parser."""
    try:
        parser = trt.OnnxParser(builder.create_network(0), logger)
        data = onnx_path.read_bytes()
        indices: list[int] = []
        if hasattr(parser, "supports_model_v2"):
            parser.supports_model_v2(data, str(onnx_path))
            for i in range(parser.num_subgraphs):
                if not parser.is_subgraph_supported(i):
                    indices.extend(int(n) for n in parser.get_subgraph_nodes(i))
        elif hasattr(parser, "supports_model"):
            _, subgraphs = parser.supports_model(data, str(onnx_path))
            for node_indices, supported in subgraphs:
                if not supported:
                    indices.extend(int(n) for n in node_indices)
    except Exception:  # the support query is extra detail: the parse errors are reported either way
        return []
    return [{"node": i, "name": _node(nodes, i)[0], "op": _node(nodes, i)[1]} for i in dict.fromkeys(indices)]


# ----------------------------------------------------------------------------- TensorRT objects


def make_logger(trt: Any) -> Any:
    """A TensorRT logger that keeps warnings and errors, so a failed build can say why in one line."""

    class CapturingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []
            self.warnings: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            level = int(severity)
            if level <= 1:  # INTERNAL_ERROR, ERROR
                self.errors.append(" ".join(str(msg).split())[:400])
            elif level == 2 and len(self.warnings) < 50:
                self.warnings.append(" ".join(str(msg).split())[:300])

    return CapturingLogger()


def make_calibrator(trt: Any, torch: Any, samples: Sequence[Mapping[str, Any]], input_map: Mapping[str, str | None],
                    dtypes: Mapping[str, Any], cache: Path, device: Any) -> Any:
    """An IInt8EntropyCalibrator2 feeding one sample at a time from torch CUDA tensors; cache read from/written to ``cache``."""
    import numpy as np

    reverse = {net: core for core, net in input_map.items() if net is not None}

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.index = 0
            self.live: list[Any] = []  # keeps the current batch's device buffers alive while TensorRT reads them

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: Sequence[str]) -> list[int] | None:
            if self.index >= len(samples):
                return None
            sample = samples[self.index]
            self.index += 1
            self.live = []
            for name in names:
                arr = np.ascontiguousarray(sample[reverse[name]])
                t = torch.from_numpy(arr).to(device=device, dtype=dtypes[name]).contiguous()
                self.live.append(t)
            return [int(t.data_ptr()) for t in self.live]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data: Any) -> None:
            cache.write_bytes(bytes(data))

    return Calibrator()


def _dims(shape: Any) -> list[int]:
    return [int(d) for d in shape]


def write_atomic(path: Path, data: Any) -> None:
    """Write ``data`` (any buffer) to ``path`` through a temporary file and a rename: never a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _first(messages: Sequence[str], default: str) -> str:
    return "; ".join(dict.fromkeys(messages[:3]))[:600] if messages else default


# ----------------------------------------------------------------------------- the build


def build_engine(plan: BuildPlan) -> tuple[Any, dict[str, Any]]:
    """Parse ``plan.onnx_path`` and build with the plan's settings; return (serialized engine, details).

    The serialized engine is TensorRT's own buffer; the caller writes it to ``model.engine`` unchanged. Raises
    ExportFailed with the unsupported nodes (name and op) when the parser refuses the model, and with TensorRT's
    own errors when the build fails; ConfigError when a precision or device is not available. Writes the
    calibration cache (int8) and the timing cache (when asked) itself.
    """
    import tensorrt as trt
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("tensorrt: no CUDA device visible to torch")
    count = torch.cuda.device_count()
    if plan.device >= count:
        raise ConfigError(f"tensorrt: device={plan.device} but only {count} CUDA device(s) are visible")
    torch.cuda.set_device(plan.device)
    device = torch.device("cuda", plan.device)
    major = int(str(trt.__version__).split(".")[0])
    notes: list[str] = []

    logger = make_logger(trt)
    builder = trt.Builder(logger)
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    t0 = time.perf_counter()
    if not parser.parse_from_file(str(plan.onnx_path)):
        nodes = onnx_nodes(plan.onnx_path)
        errors = parser_errors(parser, nodes)
        unsupported = unsupported_nodes(trt, builder, logger, plan.onnx_path, nodes)
        raise ExportFailed(describe_parser_failure(errors, unsupported))
    parse_s = time.perf_counter() - t0

    net_inputs = {network.get_input(i).name: _dims(network.get_input(i).shape) for i in range(network.num_inputs)}
    net_outputs = [network.get_output(i).name for i in range(network.num_outputs)]
    profile, fit_notes = fit_to_network(plan.profile, plan.spec, net_inputs, plan.input_map)
    notes.extend(n for n in fit_notes if n not in (plan.profile.notes if plan.profile else []))

    config = builder.create_builder_config()
    if plan.workspace_gib is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(plan.workspace_gib * (1 << 30)))
    if hasattr(trt.BuilderFlag, "TF32"):
        # TF32 rounds fp32 matmuls/convs to a 10-bit mantissa (~1e-3 relative): outside the fp32 tolerance
        config.clear_flag(trt.BuilderFlag.TF32)
    for wanted, flag in ((plan.fp16, "FP16"), (plan.int8, "INT8")):
        if wanted:
            if not hasattr(trt.BuilderFlag, flag):
                raise ConfigError(f"tensorrt: TensorRT {trt.__version__} has no BuilderFlag.{flag} (removed in "
                                  f"TensorRT 11: reduced precision there needs a strongly typed / Q/DQ ONNX); "
                                  "use TensorRT 10.x for fp16 / int8")
            config.set_flag(getattr(trt.BuilderFlag, flag))
    if plan.optimization_level is not None:
        config.builder_optimization_level = plan.optimization_level
    if profile is not None:
        opt_profile = builder.create_optimization_profile()
        for name in profile.names():
            opt_profile.set_shape(name, profile.min[name], profile.opt[name], profile.max[name])
        config.add_optimization_profile(opt_profile)

    timing_cache = None
    if plan.timing_cache is not None:
        existing = plan.timing_cache.read_bytes() if plan.timing_cache.is_file() else b""
        timing_cache = config.create_timing_cache(existing)
        if not config.set_timing_cache(timing_cache, ignore_mismatch=False):
            notes.append(f"tensorrt: timing cache {plan.timing_cache} comes from another GPU or TensorRT version; "
                         "started a new one")
            timing_cache = config.create_timing_cache(b"")
            config.set_timing_cache(timing_cache, ignore_mismatch=False)

    calibration: dict[str, Any] | None = None
    if plan.int8:
        assert plan.calibration_cache is not None
        if plan.calibration_source is not None:
            plan.calibration_cache.write_bytes(plan.calibration_source.read_bytes())
        samples = plan.calibration_samples or []
        net_dtypes = {network.get_input(i).name: getattr(torch, TRT_TO_TORCH.get(network.get_input(i).dtype.name, "float32"))
                      for i in range(network.num_inputs)}
        config.int8_calibrator = make_calibrator(trt, torch, samples, plan.input_map, net_dtypes,
                                                 plan.calibration_cache, device)
        shapes = calibration_shapes(samples, plan.input_map)
        if profile is None:
            wrong = {n: s for n, s in shapes.items() if list(s) != net_inputs.get(n)}
            if wrong:
                n, s = next(iter(wrong.items()))
                raise ConfigError(f"tensorrt: int8 calibration feeds one sample at a time ({n} {list(s)}) but the "
                                  f"engine's input is fixed at {net_inputs.get(n)}; export with --dynamic-batch or an "
                                  "example batch of 1")
        elif samples:
            cal_profile = builder.create_optimization_profile()
            for name in profile.names():
                cal_profile.set_shape(name, shapes[name], shapes[name], shapes[name])
            config.set_calibration_profile(cal_profile)
        calibration = {
            "mode": "int8 post-training (implicit quantization)", "calibrator": "IInt8EntropyCalibrator2",
            "samples": len(samples), "cache": plan.calibration_cache.name,
            "reused_cache": str(plan.calibration_source) if plan.calibration_source else None,
        }

    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    build_s = time.perf_counter() - t0
    if serialized is None:
        raise ExportFailed(f"tensorrt: the engine build failed: {_first(logger.errors, 'TensorRT gave no reason')}")
    engine = memoryview(serialized)

    timing: dict[str, Any] | None = None
    if plan.timing_cache is not None and timing_cache is not None:
        data = config.get_timing_cache().serialize()
        plan.timing_cache.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(plan.timing_cache, memoryview(data))
        timing = {"path": str(plan.timing_cache), "bytes": plan.timing_cache.stat().st_size}

    engine_info = describe_engine(trt, logger, engine)
    props = torch.cuda.get_device_properties(plan.device)
    return engine, {
        "tensorrt": trt.__version__,
        "device": {"index": plan.device, "name": props.name, "compute_capability": f"{props.major}.{props.minor}",
                   "memory_gib": round(props.total_memory / (1 << 30), 1)},
        "parse_s": round(parse_s, 3),
        "build_s": round(build_s, 3),
        "profile": profile.to_dict() if profile else None,
        "outputs": net_outputs,
        "input_dtypes": {n: TRT_TO_NUMPY.get(io["dtype"], "float32") for n, io in engine_info["io"].items()
                         if io["mode"] == "input"},
        "engine": engine_info,
        "calibration": calibration,
        "timing_cache": timing,
        "builder_warnings": logger.warnings[:10],
        "notes": notes,
    }


def describe_engine(trt: Any, logger: Any, data: Any) -> dict[str, Any]:
    """Deserialize an engine (bytes) and list its I/O tensors, profiles and layer count (also a check that it loads)."""
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise ExportFailed(f"tensorrt: the engine does not deserialize: {_first(logger.errors, 'TensorRT gave no reason')}")
    io: dict[str, dict[str, Any]] = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        mode = "input" if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else "output"
        entry: dict[str, Any] = {"mode": mode, "dtype": engine.get_tensor_dtype(name).name,
                                 "shape": _dims(engine.get_tensor_shape(name))}
        if mode == "input" and -1 in entry["shape"] and engine.num_optimization_profiles:
            lo, mid, hi = engine.get_tensor_profile_shape(name, 0)
            entry["profile"] = {"min": _dims(lo), "opt": _dims(mid), "max": _dims(hi)}
        io[name] = entry
    memory = getattr(engine, "device_memory_size_v2", None)
    if memory is None:
        memory = getattr(engine, "device_memory_size", None)
    return {"io": io, "layers": int(engine.num_layers), "profiles": int(engine.num_optimization_profiles),
            "device_memory_bytes": int(memory) if memory is not None else None}


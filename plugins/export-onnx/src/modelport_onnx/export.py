"""Write one ONNX artifact: export → simplify → fp16 / int8 → module hierarchy → metadata → save → batch check.

Each step records what it did in ``details`` (export.json). The model is held as an ``onnx.ModelProto`` between
steps; it is written once, as a single file under the protobuf limit and as ``model.onnx`` + one
``model.onnx.data`` above it, never as loose per-tensor files. Large fp32 models from the dynamo exporter skip the
in-memory ModelProto: the program is saved with external data and only its graph is reloaded (``write_streaming``).
"""

from __future__ import annotations

import contextlib
import heapq
import io
import json
import logging
import re
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelport import Artifact, ConfigError, ExportFailed, ExportRequest, ValidationFailed, missing_modules

from modelport_onnx import DATA_FILE, FORMAT, MODEL_FILE, hierarchy

WORK_DIR = ".onnx-work"
PROTOBUF_LIMIT = 2**31 - 1
LEGACY_HINT = (
    "the legacy (TorchScript) exporter records a single trace: value-dependent Python control flow and "
    ".item()-driven loops are baked in for the example input; make the model export with exporter=dynamo "
    "(torch.cond, no .item()) instead"
)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, with its type: converters write pages."""
    text = _ANSI.sub("", str(exc)).strip()
    for line in text.splitlines():
        line = line.strip()
        if line:
            return f"{type(exc).__name__}: {line}"[:400]
    return type(exc).__name__


def root_cause(exc: BaseException) -> str:
    """The first line of the deepest explicit cause: torch.onnx wraps the real reason in a page of advice."""
    from modelport.plugins.converter_errors import explain, guard_explanation, mentions_cache

    top = exc
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    if guard_explanation(str(exc)) or mentions_cache(str(exc)):
        return explain(exc)[:600]
    line = first_line(exc)
    if mentions_cache(str(top)):
        from modelport.plugins.converter_errors import CACHE_HINT

        line += f" — {CACHE_HINT}"
    return line


@contextlib.contextmanager
def quiet_torch_onnx() -> Iterator[None]:
    """Silence torch.onnx's progress prints and registry warnings (they are noise on a CLI's stdout/stderr)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            # torch's own deprecation chatter, not about the user's model (TracerWarnings are kept)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=r".*axis name.*will not be used")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def tensor_leaves(out: Any) -> list[Any]:
    """Tensors of a model's output in the order the exporters flatten them (dict values, tuple items)."""
    import torch

    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for v in out.values() for t in tensor_leaves(v)]
    if isinstance(out, (list, tuple)):
        return [t for v in out for t in tensor_leaves(v)]
    if hasattr(out, "to_tuple"):
        return tensor_leaves(out.to_tuple())
    return []


def resolve_quantize(request: ExportRequest) -> str:
    """The quantization mode: ``quantize``, or what ``int8=true`` stands for (static with samples, else dynamic)."""
    mode = request.options.get("quantize") or "none"
    if mode == "none" and request.options.get("int8"):
        mode = "static" if request.sample_inputs else "dynamic"
    return mode


def check_options(request: ExportRequest) -> None:
    """Refuse option combinations that cannot work, before any time is spent exporting (exit 3)."""
    opts = request.options
    quantize = resolve_quantize(request)
    opts["quantize"] = quantize
    if opts.get("fp16") and quantize != "none":
        raise ConfigError("onnx: fp16=true and quantize are exclusive; pick one precision")
    if (opts.get("fp16") or quantize != "none") and missing_modules("onnxruntime"):
        raise ConfigError("onnx: fp16 and quantize use onnxruntime's converters; pip install onnxruntime")
    if quantize == "static" and not request.sample_inputs:
        raise ConfigError("onnx: quantize=static calibrates on real inputs; pass --sample-inputs FILE.npz "
                          "(or use quantize=dynamic, which needs no data)")
    if opts.get("calibration_size") is not None and int(opts["calibration_size"]) < 1:
        raise ConfigError("onnx: calibration_size must be a positive number of sample items")
    threshold = opts.get("external_data_threshold")
    if threshold is not None and int(threshold) < 0:
        raise ConfigError("onnx: external_data_threshold must be >= 0 bytes")
    opset = opts.get("opset")
    if opset is not None and not 7 <= int(opset) <= 30:
        raise ConfigError(f"onnx: opset={opset} is outside the range ONNX defines (7..30)")
    if opset is not None and int(opset) < DYNAMO_MIN_OPSET and opts.get("exporter") == "dynamo":
        raise ConfigError(f"onnx: the dynamo exporter writes opset {DYNAMO_MIN_OPSET} or newer; for opset={opset} use "
                          "-o exporter=legacy (or exporter=auto, which picks it)")


# ----------------------------------------------------------------------------- exporters


def trace_inputs(request: ExportRequest) -> tuple[tuple[Any, ...], int]:
    """Example inputs to export with: batch 2 when the batch axis is dynamic and the example batch is 1.

    Given batch 1, torch.export may specialise the batch to 1 and write a fixed-batch model even with a dynamic
    batch declared (seen with nn.TransformerEncoder on torch 2.13).
    """
    batch = request.inputs.batch_size
    if request.inputs.dynamic_batch and batch < 2:
        return tuple(request.make_inputs(batch=2)), 2
    return tuple(request.example_inputs), batch


def dynamic_shapes(request: ExportRequest) -> tuple[Any, ...] | None:
    """torch.export ``dynamic_shapes``: a named Dim for the batch, AUTO for other dynamic axes."""
    import torch

    if not request.inputs.has_dynamic:
        return None
    dims: dict[str, Any] = {}
    shapes: list[Any] = []
    for t in request.inputs.tensors:
        per: dict[int, Any] = {}
        for axis, label in t.dynamic.items():
            if label not in dims:
                dims[label] = torch.export.Dim(label, min=1, max=1 << 16) if axis == 0 else torch.export.Dim.AUTO
            per[axis] = dims[label]
        shapes.append(per or None)
    return tuple(shapes)


def rename_dims(model: Any, request: ExportRequest) -> None:
    """Name dynamic dims after the input spec's labels (``batch``, ``seq``) where the exporter invented ``s43``."""
    renames: dict[str, str] = {}
    by_name = {i.name: i for i in model.graph.input}
    for t in request.inputs.tensors:
        graph_input = by_name.get(t.name)
        if graph_input is None:
            continue
        dims = graph_input.type.tensor_type.shape.dim
        for axis, label in t.dynamic.items():
            if axis < len(dims) and dims[axis].dim_param and dims[axis].dim_param != label:
                renames.setdefault(dims[axis].dim_param, label)
    if not renames:
        return
    for vi in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param in renames:
                d.dim_param = renames[d.dim_param]


def export_dynamo(request: ExportRequest, args: tuple[Any, ...]) -> Any:
    """torch.onnx.export(dynamo=True) to an in-memory ONNXProgram; ExportFailed with one line when it refuses.

    The program's initializers still share memory with the PyTorch parameters: nothing is copied until the
    program is serialized (``program.model_proto`` or ``program.save``).
    """
    import torch

    try:
        with quiet_torch_onnx():
            program = torch.onnx.export(
                request.model, args, f=None, dynamo=True, input_names=request.input_names,
                output_names=list(request.output_names), opset_version=request.options.get("opset"),
                dynamic_shapes=dynamic_shapes(request), verbose=False, optimize=True,
            )
        if program is None:
            raise RuntimeError("torch.onnx.export returned no program")
    except Exception as exc:
        raise ExportFailed(f"onnx: the dynamo exporter refused the model: {root_cause(exc)}") from exc
    return program


def program_proto(program: Any, request: ExportRequest) -> Any:
    """The program serialized to one in-memory ModelProto (weights copied in), dims renamed."""
    try:
        proto = program.model_proto
    except Exception as exc:
        raise ExportFailed(f"onnx: serializing the dynamo exporter's program failed: {root_cause(exc)}") from exc
    rename_dims(proto, request)
    return proto


def program_weights_bytes(program: Any) -> int:
    """Bytes of the program's initializers, read from tensor metadata without serializing anything."""
    total = 0
    for value in program.model.graph.initializers.values():
        tensor = value.const_value
        if tensor is not None:
            total += int(tensor.nbytes)
    return total


def export_legacy(request: ExportRequest, args: tuple[Any, ...], work: Path, trace_batch: int) -> Any:
    """torch.onnx.export(dynamo=False) into the work folder, loaded back (with any external data) as a ModelProto."""
    import onnx
    import torch

    dynamic_axes: dict[str, dict[int, str]] = {t.name: dict(t.dynamic) for t in request.inputs.tensors if t.dynamic}
    if request.inputs.dynamic_batch:
        label = request.inputs.tensors[0].dynamic[0]
        with torch.no_grad():
            outs = tensor_leaves(request.model(*args))
        for name, out in zip(request.output_names, outs):
            if out.ndim >= 1 and out.shape[0] == trace_batch:
                dynamic_axes.setdefault(name, {})[0] = label
    folder = work / "legacy"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MODEL_FILE
    try:
        with quiet_torch_onnx():
            torch.onnx.export(
                request.model, args, str(path), dynamo=False, input_names=request.input_names,
                output_names=list(request.output_names), opset_version=request.options.get("opset"),
                dynamic_axes=dynamic_axes or None, do_constant_folding=True,
            )
        return onnx.load(str(path))
    except Exception as exc:
        raise ExportFailed(f"onnx: the legacy exporter failed: {root_cause(exc)}") from exc


DYNAMO_MIN_OPSET = 18


def run_exporter(request: ExportRequest, args: tuple[Any, ...], work: Path, trace_batch: int,
                 details: dict[str, Any]) -> Any:
    """Export with the requested exporter; in ``auto``, fall back to legacy when dynamo refuses, and say so.

    Returns the dynamo exporter's ONNXProgram (still sharing the PyTorch weights) or the legacy exporter's
    ModelProto; ``details["exporter"]`` says which.
    """
    choice = request.options.get("exporter") or "auto"
    details["exporter_requested"] = choice
    opset = request.options.get("opset")
    if choice == "auto" and opset is not None and int(opset) < DYNAMO_MIN_OPSET:
        # down-converting the dynamo exporter's opset-18 graph writes invalid models (Split num_outputs)
        request.note(f"onnx: opset={opset} is below what the dynamo exporter writes ({DYNAMO_MIN_OPSET}); "
                     "used the legacy exporter (exporter=auto)")
        details["fallback"] = f"opset {opset} < {DYNAMO_MIN_OPSET}"
        choice = "legacy"
    if choice in ("auto", "dynamo"):
        try:
            program = export_dynamo(request, args)
            details["exporter"] = "dynamo"
            return program
        except ExportFailed as exc:
            if choice == "dynamo":
                raise
            reason = str(exc).removeprefix("onnx: ")
            details["fallback"] = reason
            request.note(f"onnx: {reason}; fell back to the legacy exporter (exporter=auto)")
    proto = export_legacy(request, args, work, trace_batch)
    details["exporter"] = "legacy"
    details["validation_hint"] = LEGACY_HINT
    return proto


# ----------------------------------------------------------------------------- rewrites


def weights_bytes(model: Any) -> int:
    """Bytes of tensor data (initializers and Constant nodes): what counts against the 2 GiB protobuf limit."""
    import numpy as np
    from onnx import helper

    total = 0

    def size(t: Any) -> int:
        if t.raw_data:
            return len(t.raw_data)
        n = int(np.prod(t.dims)) if len(t.dims) else 1
        if t.data_type == 0:
            return 0
        try:
            item = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
        except Exception:
            item = 4
        return n * item

    for t in model.graph.initializer:
        total += size(t)
    for node in hierarchy.iter_nodes(model.graph):
        for attr in node.attribute:
            if attr.HasField("t"):
                total += size(attr.t)
    return total


def simplify(proto: Any, details: dict[str, Any], notes: list[str]) -> Any:
    """onnxslim on a copy; any failure keeps the original model and is recorded as a warning."""
    import onnx

    before = len(proto.graph.node)
    t0 = time.perf_counter()
    try:
        import onnxslim

        candidate = onnx.ModelProto()
        candidate.CopyFrom(proto)
        with contextlib.redirect_stdout(io.StringIO()):
            slimmed = onnxslim.slim(candidate)
        if slimmed is None:
            raise RuntimeError("onnxslim returned no model")
    except Exception as exc:
        msg = f"onnx: simplification with onnxslim failed ({first_line(exc)}); kept the unsimplified model"
        notes.append(msg)
        details["simplify"] = {"applied": False, "error": first_line(exc), "nodes": before}
        return proto
    details["simplify"] = {
        "applied": True, "tool": f"onnxslim {getattr(onnxslim, '__version__', '?')}", "nodes_before": before,
        "nodes_after": len(slimmed.graph.node), "seconds": round(time.perf_counter() - t0, 3),
    }
    return slimmed


def verify_simplified(original: Any, slimmed: Any, request: ExportRequest, args: tuple[Any, ...],
                      details: dict[str, Any], notes: list[str]) -> Any:
    """Keep onnxslim's model only if it gives the unsimplified model's results (shapes and values)."""
    from modelport_onnx.slimcheck import check_simplified

    check = check_simplified(original, slimmed, request, args, weights_bytes(original))
    info = details["simplify"]
    if check.skipped:
        info["check"] = f"skipped ({check.skipped})"
        return slimmed
    info["check"] = {"batches": check.batches, "same_results": not check.problems}
    if check.exporter_vs_pytorch is not None:
        details["exporter_check"] = ({"batches": check.batches, "matches_pytorch": True} if not check.exporter_vs_pytorch
                                     else {"batches": check.batches, "matches_pytorch": False,
                                           "differences": check.exporter_vs_pytorch})
    if not check.problems:
        return slimmed
    reason = "; ".join(check.problems)[:500]
    info.update(applied=False, reverted=reason, nodes=len(original.graph.node))
    notes.append(f"onnx: onnxslim changed the model's results ({reason}); kept the unsimplified model")
    return original


def _needs(node: Any) -> list[str]:
    """Names a node reads, including outer-scope names read inside its subgraphs."""
    names = [n for n in node.input if n]
    for attr in node.attribute:
        graphs = [attr.g] if attr.HasField("g") else list(attr.graphs)
        for g in graphs:
            for inner in g.node:
                names.extend(_needs(inner))
    return names


def topological_sort(graph: Any) -> None:
    """Reorder ``graph.node`` so every node comes after the nodes producing its inputs (stable otherwise)."""
    nodes = list(graph.node)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    deps = [{producer[x] for x in _needs(n) if x in producer and producer[x] != i} for i, n in enumerate(nodes)]
    if all(all(d < i for d in ds) for i, ds in enumerate(deps)):
        return
    users: dict[int, list[int]] = {}
    for i, ds in enumerate(deps):
        for d in ds:
            users.setdefault(d, []).append(i)
    remaining = [len(ds) for ds in deps]
    ready = [i for i, r in enumerate(remaining) if r == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users.get(i, []):
            remaining[u] -= 1
            if remaining[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        raise ExportFailed("onnx: the graph has a cycle after conversion")
    sorted_nodes = [nodes[i] for i in order]
    copies = [type(n)() for n in sorted_nodes]
    for c, n in zip(copies, sorted_nodes):
        c.CopyFrom(n)
    del graph.node[:]
    graph.node.extend(copies)


def to_fp16(proto: Any, large: bool, details: dict[str, Any]) -> Any:
    """float16 weights and compute, float32 graph inputs and outputs (onnxruntime's converter)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    try:
        converted = convert_float_to_float16(proto, keep_io_types=True, disable_shape_infer=large)
    except Exception as exc:
        raise ExportFailed(f"onnx: fp16 conversion failed: {first_line(exc)}") from exc
    # the converter appends the Cast nodes of kept-fp32 inputs at the end; onnx.checker wants topological order
    topological_sort(converted.graph)
    details["fp16"] = {"keep_io_types": True, "converter": "onnxruntime.transformers.float16"}
    return converted


def save_for_tools(proto: Any, path: Path, large: bool) -> None:
    """Write an intermediate model for a path-based tool (quantization), one data file when large."""
    import onnx

    if large:
        onnx.save_model(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + ".data")
    else:
        onnx.save_model(proto, str(path))


@contextlib.contextmanager
def temp_files_in(folder: Path) -> Iterator[None]:
    """Point tempfile at ``folder`` for a call: ORT's static quantization writes its augmented model (a copy of the
    weights) to the system temp folder, which may be small; the work folder is on the output's filesystem."""
    import tempfile

    previous = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = previous


class _SampleReader:
    """onnxruntime CalibrationDataReader over the user's sample inputs (one sample per call)."""

    def __init__(self, samples: list[dict[str, Any]], names: list[str], dtypes: dict[str, Any]) -> None:
        import numpy as np

        self._items = [{n: np.ascontiguousarray(s[n]).astype(dtypes[n], copy=False) for n in names} for s in samples]
        self._i = 0

    def get_next(self) -> dict[str, Any] | None:
        if self._i >= len(self._items):
            return None
        self._i += 1
        return self._items[self._i - 1]

    def rewind(self) -> None:
        self._i = 0


def quantize(proto: Any, request: ExportRequest, work: Path, large: bool, details: dict[str, Any],
             notes: list[str]) -> Any:
    """int8 with onnxruntime.quantization after its pre-processing (shape inference + graph optimisation)."""
    import onnx
    import onnxruntime
    from onnx import helper
    from onnxruntime import quantization as q
    from onnxruntime.quantization.shape_inference import quant_pre_process

    mode = request.options["quantize"]
    src = work / "float.onnx"
    save_for_tools(proto, src, large)
    size_before = weights_bytes(proto)
    pre = work / "preprocessed.onnx"
    preprocess: str | None = None
    for label, kwargs in (("full", {}), ("no symbolic shape inference", {"skip_symbolic_shape": True})):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                quant_pre_process(str(src), str(pre), save_as_external_data=large, all_tensors_to_one_file=True,
                                  external_data_location=pre.name + ".data", **kwargs)
            preprocess = label
            break
        except Exception as exc:
            notes.append(f"onnx: quantization pre-processing ({label}) failed: {first_line(exc)}")
    model_in = pre if preprocess else src
    out = work / "quantized.onnx"
    info: dict[str, Any] = {"mode": mode, "dtype": "int8", "tool": f"onnxruntime {onnxruntime.__version__}",
                            "preprocess": preprocess or "skipped"}
    try:
        if mode == "dynamic":
            q.quantize_dynamic(str(model_in), str(out), weight_type=q.QuantType.QInt8, use_external_data_format=large)
            info.update(weight_type="int8", format="QOperator (dynamic activations)")
        else:
            float_model = onnx.load(str(model_in), load_external_data=False)
            names = [i.name for i in float_model.graph.input]
            dtypes = {i.name: helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type) for i in float_model.graph.input}
            limit = request.options.get("calibration_size")  # None: every sample item
            samples = (request.sample_inputs or [])[: int(limit) if limit else None]
            missing = [n for n in names if n not in samples[0]]
            if missing:
                raise ConfigError(f"onnx: --sample-inputs has no array for input(s) {', '.join(missing)}")
            reader = _SampleReader(samples, names, dtypes)
            with temp_files_in(work):
                q.quantize_static(str(model_in), str(out), reader, quant_format=q.QuantFormat.QDQ,
                                  activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8,
                                  calibrate_method=q.CalibrationMethod.MinMax, use_external_data_format=large)
            info.update(weight_type="int8", activation_type="int8", format="QDQ", calibration="MinMax",
                        calibration_samples=len(samples))
    except ConfigError:
        raise
    except Exception as exc:
        raise ExportFailed(f"onnx: {mode} quantization failed: {first_line(exc)}") from exc
    result = onnx.load(str(out))
    counts: dict[str, int] = {}
    for node in result.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger",
                            "ConvInteger", "QLinearMatMul", "QLinearConv", "DynamicQuantizeMatMul", "QGemm"):
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    info.update(quantized_ops=counts, weights_bytes_before=size_before, weights_bytes_after=weights_bytes(result))
    details["quantization"] = info
    return result


def embed_metadata(proto: Any, metadata: dict[str, Any]) -> list[str]:
    """Copy the core's metadata into the model's metadata_props (strings as is, the rest as JSON)."""
    existing = {p.key: p for p in proto.metadata_props}
    keys = []
    for key, value in metadata.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        entry = existing.get(key) or proto.metadata_props.add()
        entry.key = key
        entry.value = text
        keys.append(key)
    return keys


# ----------------------------------------------------------------------------- write and check


def write(proto: Any, workdir: Path, request: ExportRequest, details: dict[str, Any]) -> list[str]:
    """Save as one file, or as model.onnx + one model.onnx.data when the weights pass the threshold."""
    import onnx

    mode = request.options.get("external_data") or "auto"
    threshold = int(request.options.get("external_data_threshold") or 0)
    size = weights_bytes(proto)
    external = mode == "always" or (mode == "auto" and size > threshold)
    if mode == "never" and size >= PROTOBUF_LIMIT:
        raise ExportFailed(f"onnx: the weights take {size} bytes, over protobuf's 2 GiB limit for one file; "
                           "use external_data=auto (one model.onnx.data beside model.onnx)")
    path = workdir / MODEL_FILE
    data = workdir / DATA_FILE
    data.unlink(missing_ok=True)  # onnx appends to an existing data file
    try:
        if external:
            onnx.save_model(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=DATA_FILE, size_threshold=1024)
        else:
            onnx.save_model(proto, str(path))
    except (ValueError, OSError) as exc:
        raise ExportFailed(f"onnx: writing {MODEL_FILE} failed: {first_line(exc)}"
                           + ("" if external else " (lower external_data_threshold to move weights to model.onnx.data)")) from exc
    files = [MODEL_FILE]
    if data.exists():
        files.append(DATA_FILE)
    details["external_data"] = DATA_FILE if data.exists() else False
    details["weights_bytes"] = size
    return files


def streams_to_disk(exported: Any, request: ExportRequest, details: dict[str, Any]) -> bool:
    """Whether to write the dynamo program straight to model.onnx + model.onnx.data (large fp32 models).

    Serializing a program to one ModelProto copies every weight, and onnxslim copies them again: over 4x the
    parameter bytes at peak for a 2.4 GB model. Written straight from the program, each weight goes from the
    PyTorch tensor to the data file, and only the graph is held in memory.
    """
    opts = request.options
    if details.get("exporter") != "dynamo" or opts.get("fp16") or opts.get("quantize", "none") != "none":
        return False
    if (opts.get("external_data") or "auto") == "never":
        return False
    return program_weights_bytes(exported) > int(opts.get("external_data_threshold") or 0)


def write_streaming(program: Any, request: ExportRequest,
                    details: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """program.save with external data, then the graph alone (no weights) reloaded for dims, hierarchy, metadata."""
    import onnx

    opts = request.options
    path = request.workdir / MODEL_FILE
    data = request.workdir / DATA_FILE
    data.unlink(missing_ok=True)
    size = program_weights_bytes(program)
    try:
        program.save(str(path), external_data=True)
    except (ValueError, OSError) as exc:
        raise ExportFailed(f"onnx: writing {MODEL_FILE} with external data failed: {first_line(exc)}") from exc
    proto = onnx.load(str(path), load_external_data=False)
    rename_dims(proto, request)
    details["opset"] = graph_opset(proto)
    details["ir_version"] = proto.ir_version
    details["producer"] = f"{proto.producer_name} {proto.producer_version}".strip()
    details["simplify"] = {
        "applied": False, "nodes": len(proto.graph.node),
        "reason": "weights over external_data_threshold are written straight to model.onnx.data and onnxslim "
                  "would need them all in memory; the dynamo exporter's own optimizer ran",
    }
    if opts.get("hierarchy", True):
        details["hierarchy"] = hierarchy.restore(proto, hierarchy.capture(proto))
    else:
        hierarchy.strip(proto)
        details["hierarchy"] = False
    if opts.get("embed_metadata", True):
        details["embedded_metadata"] = embed_metadata(proto, request.metadata)
    # the graph only: every initializer already points into model.onnx.data, which is left untouched
    tmp = path.with_name(MODEL_FILE + ".graph")
    onnx.save_model(proto, str(tmp))
    tmp.replace(path)
    files = [MODEL_FILE] + ([DATA_FILE] if data.exists() else [])
    details["external_data"] = DATA_FILE if data.exists() else False
    details["weights_bytes"] = size
    details["nodes"] = len(proto.graph.node)
    details["written"] = "streamed from the exported program (weights never copied into memory)"
    return files, [i.name for i in proto.graph.input], [o.name for o in proto.graph.output]


def check_batch(path: Path, request: ExportRequest, trace_batch: int, details: dict[str, Any]) -> None:
    """Run the written model at another batch size: a declared dynamic batch must really be dynamic (exit 2)."""
    import torch

    from modelport_onnx.runtime import OnnxRunner

    probe = trace_batch + 1
    args = request.make_inputs(batch=probe, seed=7)
    if any(a.dtype == torch.bfloat16 for a in args):
        details["batch_check"] = "skipped (bfloat16 inputs)"
        return
    with torch.no_grad():
        expected = [tuple(t.shape) for t in tensor_leaves(request.model(*args))]
    try:
        runner = OnnxRunner(path, threads=request.threads, quiet=True)
    except Exception as exc:
        # not a batch problem: validation reports the load failure (exit 2) and the file stays for other runtimes
        details["batch_check"] = f"skipped (onnxruntime cannot load the model: {first_line(exc)[:200]})"
        return
    exporter = details.get("exporter")
    try:
        outs = runner({n: a.numpy() for n, a in zip(request.input_names, args)})
    except Exception as exc:
        raise ValidationFailed(
            f"onnx: the written model rejects batch {probe} although the batch axis is declared dynamic "
            f"(exported by the {exporter} exporter at batch {trace_batch}): {first_line(exc)[:200]}"
        ) from exc
    got = [tuple(o.shape) for o in outs]
    if got != expected:
        raise ValidationFailed(
            f"onnx: at batch {probe} the written model returns shapes {got} where PyTorch returns {expected}: the "
            f"{exporter} exporter baked the example batch {trace_batch} into the graph although the batch axis is "
            "declared dynamic"
        )
    details["batch_check"] = {"batch": probe, "ok": True}


def graph_opset(proto: Any) -> int | None:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)


def export_onnx(request: ExportRequest) -> Artifact:
    """The ``export`` hook's work for format ``onnx``."""
    import onnx
    import torch

    check_options(request)
    opts = request.options
    work = request.workdir / WORK_DIR
    work.mkdir(parents=True, exist_ok=True)
    details: dict[str, Any] = {"torch": torch.__version__.split("+")[0], "onnx": onnx.__version__}
    notes: list[str] = []
    timings: dict[str, float] = {}
    try:
        args, trace_batch = trace_inputs(request)
        details["trace_batch"] = trace_batch
        if request.inputs.has_dynamic:
            details["dynamic_axes"] = {t.name: {str(k): v for k, v in t.dynamic.items()}
                                       for t in request.inputs.tensors if t.dynamic}
        t0 = time.perf_counter()
        exported = run_exporter(request, args, work, trace_batch, details)
        timings["torch_onnx_export_s"] = round(time.perf_counter() - t0, 4)
        if streams_to_disk(exported, request, details):
            t0 = time.perf_counter()
            files, graph_inputs, graph_outputs = write_streaming(exported, request, details)
            del exported
            timings["write_s"] = round(time.perf_counter() - t0, 4)
            details["timings"] = timings
            if request.inputs.dynamic_batch:
                details["batch_check"] = (
                    "left to validation, which runs batches 4 and 8: the weights are over the external-data "
                    "threshold, and onnxruntime would hold a second copy of them beside the PyTorch model")
            return Artifact(
                format=FORMAT, path=request.workdir / MODEL_FILE, files=files, precision="fp32", details=details,
                warnings=notes, input_names=graph_inputs if graph_inputs != request.input_names else None,
                output_names=graph_outputs if graph_outputs != list(request.output_names) else None,
                options={"opset": details["opset"], "quantize": opts.get("quantize")},
            )
        proto = program_proto(exported, request) if details["exporter"] == "dynamo" else exported
        del exported
        details["opset"] = graph_opset(proto)
        details["ir_version"] = proto.ir_version
        details["producer"] = f"{proto.producer_name} {proto.producer_version}".strip()
        large = weights_bytes(proto) > int(opts.get("external_data_threshold") or 0) or \
            opts.get("external_data") == "always"

        keep_hierarchy = bool(opts.get("hierarchy", True))
        cap = hierarchy.capture(proto, legacy=details["exporter"] == "legacy") if keep_hierarchy else None

        t0 = time.perf_counter()
        if opts.get("simplify", True):
            unsimplified = proto
            proto = simplify(proto, details, notes)
            if proto is not unsimplified:
                proto = verify_simplified(unsimplified, proto, request, args, details, notes)
            del unsimplified
        else:
            details["simplify"] = {"applied": False, "reason": "simplify=false", "nodes": len(proto.graph.node)}
        timings["simplify_s"] = round(time.perf_counter() - t0, 4)

        precision = "fp32"
        t0 = time.perf_counter()
        if opts.get("fp16"):
            proto = to_fp16(proto, large, details)
            precision = "fp16"
        elif (opts.get("quantize") or "none") != "none":
            proto = quantize(proto, request, work, large, details, notes)
            precision = "int8"
        timings["precision_s"] = round(time.perf_counter() - t0, 4)

        if cap is not None:
            details["hierarchy"] = hierarchy.restore(proto, cap)
        else:
            hierarchy.strip(proto)
            details["hierarchy"] = False
        if opts.get("embed_metadata", True):
            details["embedded_metadata"] = embed_metadata(proto, request.metadata)

        t0 = time.perf_counter()
        files = write(proto, request.workdir, request, details)
        timings["write_s"] = round(time.perf_counter() - t0, 4)
        details["nodes"] = len(proto.graph.node)
        graph_inputs = [i.name for i in proto.graph.input]
        graph_outputs = [o.name for o in proto.graph.output]
        del proto

        path = request.workdir / MODEL_FILE
        if request.inputs.dynamic_batch:
            t0 = time.perf_counter()
            try:
                import onnxruntime  # noqa: F401
            except ImportError:
                details["batch_check"] = "skipped (onnxruntime is not installed)"
            else:
                check_batch(path, request, trace_batch, details)
            timings["batch_check_s"] = round(time.perf_counter() - t0, 4)
        details["timings"] = timings
    finally:
        shutil.rmtree(work, ignore_errors=True)

    options = {"opset": details["opset"], "quantize": opts.get("quantize")}
    return Artifact(
        format=FORMAT, path=path, files=files, precision=precision, details=details, warnings=notes,
        input_names=graph_inputs if graph_inputs != request.input_names else None,
        output_names=graph_outputs if graph_outputs != list(request.output_names) else None,
        options=options,
    )

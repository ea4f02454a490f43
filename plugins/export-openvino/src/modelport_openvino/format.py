"""The ``openvino`` format object and the work behind it: convert, quantize, compile, run, describe, inspect.

Registered lazily by ``modelport_openvino`` (``implementation="modelport_openvino.format:OpenVINOFormat"``);
openvino, nncf and torch are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import re
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport import Artifact, ConfigError, ExportFailed, ExportRequest, ValidationFailed, ValidationRun
from modelport.plugins.format_base import FormatObject

from modelport_openvino import (
    BIN,
    FORMAT,
    HINTS,
    PERFORMANCE_HINTS,
    RANDOM_CALIBRATION_REFUSED,
    RT_KEY,
    XML,
)

_JIT_DEPRECATED = re.compile(r"torch\.jit\.\w+`? is deprecated")

_OV_TYPES = {
    "float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64", "int64": "i64", "int32": "i32",
    "int16": "i16", "int8": "i8", "uint8": "u8", "bool": "boolean",
}


# ----------------------------------------------------------------------------- helpers


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def resolve_compression(requested: str, precision: str) -> str:
    """The weight storage actually used: ``auto`` follows the precision (none for fp32, fp16 otherwise)."""
    if requested == "auto":
        return "none" if precision == "fp32" else "fp16"
    return requested


def _ov_version() -> str:
    import openvino as ov

    return str(ov.get_version()).split("-")[0]


@contextlib.contextmanager
def _converter_warnings(request: ExportRequest) -> Iterator[None]:
    """Record torch.jit's deprecation (raised by OpenVINO's tracing frontend) once; pass other warnings on."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen: set[str] = set()
    for w in caught:
        text = str(w.message)
        if _JIT_DEPRECATED.search(text):
            request.note("openvino.convert_model traced the model with torch.jit, which torch 2.13 marks deprecated; "
                         "Python control flow on tensor values is baked into the IR (validation checks it)")
        elif text not in seen:
            seen.add(text)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _input_shapes(request: ExportRequest) -> list[tuple[Any, Any]]:
    """(PartialShape, element type) per input in forward order; dynamic axes of the spec become -1."""
    import openvino as ov

    out = []
    for t in request.inputs.tensors:
        dims = [-1 if axis in t.dynamic else d for axis, d in enumerate(t.shape)]
        out.append((ov.PartialShape(dims), getattr(ov.Type, _OV_TYPES[t.dtype])))
    return out


def _name_io(model: Any, input_names: Sequence[str], output_names: Sequence[str]) -> list[str]:
    """Give the IR's tensors the core's names (inputs by forward order, outputs by flattened order).

    The PyTorch frontend already names inputs after forward's parameters and dict outputs after their keys;
    tensors it leaves unnamed (a plain tensor output) are matched by position. Returns the output names set.
    """
    ports = list(model.inputs)
    for i, port in enumerate(ports):
        names = port.get_names()
        match = [n for n in input_names if n in names]
        if not match and len(ports) == len(input_names):
            match = [input_names[i]]
        if match:
            port.get_tensor().set_names({match[0]})
    outs = list(model.outputs)
    by_name = [[n for n in output_names if n in port.get_names()] for port in outs]
    if all(len(m) == 1 for m in by_name) and len({m[0] for m in by_name}) == len(outs) == len(output_names):
        chosen = [m[0] for m in by_name]
    elif len(outs) == len(output_names):
        chosen = list(output_names)
    else:
        raise ExportFailed(
            f"openvino: the converted model has {len(outs)} output(s) but PyTorch returns {len(output_names)} "
            f"({', '.join(output_names)}); outputs cannot be matched"
        )
    for port, name in zip(outs, chosen, strict=True):
        port.get_tensor().set_names({name})
    return chosen


def _io_table(model: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    def row(port: Any) -> dict[str, Any]:
        names = sorted(port.get_names())
        return {"name": names[0] if names else None, "shape": str(port.get_partial_shape()),
                "dtype": port.get_element_type().get_type_name()}

    return [row(p) for p in model.inputs], [row(p) for p in model.outputs]


def _op_histogram(model: Any) -> dict[str, int]:
    import collections

    ops = collections.Counter(op.get_type_name() for op in model.get_ordered_ops())
    return dict(ops.most_common())


# ----------------------------------------------------------------------------- int8


def _calibration_sets(request: ExportRequest) -> tuple[list[dict[str, Any]], str]:
    """Input sets for NNCF from --sample-inputs (or random, only when explicitly allowed)."""
    import numpy as np

    limit = int(request.options.get("calibration_size") or 300)
    if limit <= 0:
        raise ConfigError("openvino: calibration_size must be a positive integer")
    spec = request.inputs
    dtypes = {t.name: ("float32" if t.dtype == "bfloat16" else t.dtype) for t in spec.tensors}
    group = 1 if spec.dynamic_batch else spec.batch_size
    if request.sample_inputs:
        samples = request.sample_inputs[: limit * group]
        sets = []
        for start in range(0, len(samples) - group + 1, group):
            chunk = samples[start : start + group]
            sets.append({n: np.concatenate([np.asarray(s[n]) for s in chunk]).astype(dtypes[n]) for n in spec.names})
        if not sets:
            raise ConfigError(f"openvino: --sample-inputs holds {len(samples)} sample(s), fewer than the static batch {group}")
        return sets, "sample_inputs"
    if not request.options.get("allow_random_calibration"):
        raise ConfigError(RANDOM_CALIBRATION_REFUSED)
    request.note("openvino: int8 was calibrated on random inputs (allow_random_calibration=true): "
                 "its accuracy on real data is unknown")
    return [spec.make_numpy(batch=1 if spec.dynamic_batch else None, seed=10_000 + i) for i in range(limit)], "random"


def _quantize(model: Any, sets: list[dict[str, Any]], model_type: str) -> tuple[Any, dict[str, Any]]:
    try:
        import nncf
    except ImportError:
        raise ConfigError("openvino: int8=true needs NNCF — pip install 'nncf>=2.17'") from None
    import logging

    if model_type == "auto":
        model_type = "transformer" if any(op.get_type_name() == "Softmax" for op in model.get_ordered_ops()) else "cnn"
    kwargs: dict[str, Any] = {}
    if model_type == "transformer":
        kwargs["model_type"] = nncf.ModelType.TRANSFORMER
    feed_names = [sorted(p.get_names())[0] for p in model.inputs]
    dataset = nncf.Dataset([{n: s[n] for n in feed_names if n in s} for s in sets])
    nncf.set_log_level(logging.WARNING)
    try:
        # NNCF draws progress bars on stdout; keep stdout for --json
        with contextlib.redirect_stdout(sys.stderr):
            quantized = nncf.quantize(model, dataset, subset_size=len(sets), **kwargs)
    except Exception as exc:
        raise ExportFailed(f"openvino: NNCF int8 quantization failed: {type(exc).__name__}: {_one_line(exc)}"[:600]) from exc
    info = {
        "method": "nncf.quantize (post-training static quantization)",
        "dtype": "int8",
        "tool": f"nncf {nncf.__version__}",
        "model_type": model_type,
        "preset": "performance (symmetric)" if model_type == "cnn" else "mixed (transformer default)",
    }
    return quantized, info


# ----------------------------------------------------------------------------- export


def _convert_exported_program(request: ExportRequest, args: tuple[Any, ...], traced_error: BaseException) -> Any:
    """The other entry point: torch.export the model and convert the ExportedProgram (OpenVINO's FX frontend).

    OpenVINO's TorchScript path fails on ops its tracing frontend lacks (``aten::nanmean``) and on outputs tracing
    cannot hold; the torch.export path often converts them. Used when tracing failed, and recorded as a note.
    """
    import openvino as ov
    import torch
    from modelport.plugins.converter_errors import converter_error, explain, full_text

    traced = explain(traced_error)
    try:
        ep = torch.export.export(request.model, args, dynamic_shapes=request.torch_dynamic_shapes(), strict=False)
        model = ov.convert_model(ep)
    except Exception as exc:
        err = converter_error("openvino: convert_model failed", traced_error,
                              suffix=f"; from a torch.export program too: {explain(exc)}"[:300]
                              + " — try the onnx or pt2 format")
        err.detail = full_text(traced_error) + "\n=== torch.export path ===\n" + full_text(exc)  # type: ignore[attr-defined]
        raise err from exc
    request.note(f"openvino: converting the traced module failed ({traced[:300]}); converted a torch.export program "
                 "instead")
    return model


def export(request: ExportRequest) -> Artifact:
    """Convert the nn.Module with openvino.convert_model, optionally int8-quantize, save model.xml + model.bin."""
    opts = request.options
    precision = str(opts.get("precision") or "fp32")
    int8 = bool(opts.get("int8"))
    compression = resolve_compression(str(opts.get("compress_weights") or "auto"), precision)
    device = str(opts.get("device") or "CPU")
    sets, calib_source = _calibration_sets(request) if int8 else ([], None)  # fail fast, before converting

    import openvino as ov
    import torch

    args = tuple(request.example_inputs)
    if request.inputs.dynamic_batch and request.inputs.batch_size < 2:
        # traced at batch 1, size-1 special cases (squeeze, broadcasting) can end up in the IR
        args = request.make_inputs(batch=2)
    example_batch = int(args[0].shape[0]) if args and args[0].ndim else 1
    converted_with = "openvino.convert_model(nn.Module, example_input=...) under torch.no_grad()"
    with _converter_warnings(request), torch.no_grad():
        try:
            model = ov.convert_model(request.model, example_input=args, input=_input_shapes(request))
        except Exception as exc:
            model = _convert_exported_program(request, args, exc)
            converted_with = "openvino.convert_model(torch.export program) after TorchScript tracing failed"
    output_names = _name_io(model, request.inputs.names, request.output_names)

    quantization: dict[str, Any] | None = None
    if int8:
        model, quantization = _quantize(model, sets, str(opts.get("int8_model_type") or "auto"))
        quantization["calibration"] = {"source": calib_source, "samples": len(sets)}

    hint = HINTS[precision]
    for key, value in {
        "inference_precision_hint": hint, "weight_compression": compression, "int8": str(int8).lower(),
        "input_names": ",".join(request.inputs.names), "output_names": ",".join(output_names),
    }.items():
        model.set_rt_info(value, [RT_KEY, key])
    xml = request.workdir / XML
    ov.save_model(model, str(xml), compress_to_fp16=(compression == "fp16"))
    inputs, outputs = _io_table(model)
    details: dict[str, Any] = {
        "openvino": _ov_version(),
        "converted_with": converted_with,
        "inference_precision": precision,
        "inference_precision_hint": hint,
        "weight_compression": compression,
        "weight_compression_requested": str(opts.get("compress_weights") or "auto"),
        "int8": int8,
        "device": device,
        "example_batch": example_batch,
        "inputs": inputs,
        "outputs": outputs,
        "validation_hint": (
            f"the IR ran with INFERENCE_PRECISION_HINT={hint} on {device}; a model whose Python control flow "
            "depends on input values was traced with one branch baked in (try the onnx or pt2 formats)"
        ),
    }
    if quantization is not None:
        details["quantization"] = quantization
    return Artifact(
        format=FORMAT, path=xml, files=[XML, BIN], precision="int8" if int8 else precision, details=details,
        input_names=list(request.inputs.names), output_names=output_names,
    )


# ----------------------------------------------------------------------------- run


class OpenVINORunner:
    """An IR compiled once for a device with the export's precision hint; called with named numpy inputs."""

    def __init__(self, xml: Path, *, hint: str, device: str, threads: int | None,
                 output_names: Sequence[str] | None, performance_hint: str | None = None) -> None:
        import openvino as ov

        core = ov.Core()
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint}
        if performance_hint:
            if performance_hint not in PERFORMANCE_HINTS:
                raise ConfigError(f"openvino: performance_hint={performance_hint!r}: expected one of "
                                  f"{', '.join(PERFORMANCE_HINTS)}")
            config["PERFORMANCE_HINT"] = performance_hint.upper()
        if threads and device.upper().startswith("CPU"):
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.compiled = core.compile_model(core.read_model(str(xml)), device, config)
        self.request = self.compiled.create_infer_request()
        self.inputs = [(sorted(p.get_names())[0] if p.get_names() else None, p) for p in self.compiled.inputs]
        ports = list(self.compiled.outputs)
        self.outputs: list[Any] = []
        for i, name in enumerate(output_names or []):
            match = [p for p in ports if name in p.get_names()]
            self.outputs.append(match[0] if match else ports[min(i, len(ports) - 1)])
        if not output_names:
            self.outputs = ports
        try:
            effective = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        except Exception:
            effective = hint
        self.precision = effective
        self.device = device
        self.runtime = f"openvino {_ov_version()} {device} {effective}"

    def __call__(self, inputs: Mapping[str, Any]) -> list[Any]:
        """Feed the inputs the IR has (by name, else by position) and return the outputs in the core's order."""
        import numpy as np

        values = list(inputs.values())
        feed = {}
        for i, (name, port) in enumerate(self.inputs):
            value = inputs[name] if name in inputs else values[i]
            dtype = port.get_element_type()
            if dtype.is_static() and dtype.get_type_name() != "bf16":
                value = np.ascontiguousarray(value, dtype=dtype.to_dtype())
            feed[port] = value
        result = self.request.infer(feed)
        return [np.array(result[port]) for port in self.outputs]


def _hint_of(artifact: Artifact) -> str:
    hint = artifact.details.get("inference_precision_hint")
    if hint:
        return str(hint)
    return HINTS.get(str(artifact.options.get("precision") or "fp32"), "f32")


def _device_of(artifact: Artifact, options: Mapping[str, Any]) -> str:
    return str(options.get("device") or artifact.options.get("device") or artifact.details.get("device") or "CPU")


def load_runner(artifact: Artifact, options: Mapping[str, Any]) -> OpenVINORunner:
    """Compile an ``openvino`` artifact once, with its precision hint, ``options['threads']`` and performance hint
    (``options`` first — ``modelport optimize`` trying one — else as recorded at export)."""
    return OpenVINORunner(artifact.path, hint=_hint_of(artifact), device=_device_of(artifact, options),
                          threads=options.get("threads") or artifact.options.get("threads"),
                          output_names=artifact.output_names,
                          performance_hint=options.get("performance_hint") or artifact.options.get("performance_hint"))


def load_intermediates(artifact: Artifact, options: Mapping[str, Any]) -> Any:
    """Module-boundary tensors of an ``openvino`` IR for ``modelport debug``, with the export's precision hint."""
    from modelport_openvino.intermediates import OpenVINOIntermediates

    return OpenVINOIntermediates(artifact.path, hint=_hint_of(artifact), device=_device_of(artifact, options),
                                 threads=options.get("threads") or artifact.options.get("threads"))


def _missing_device(device: str) -> str | None:
    """Why ``device`` cannot run here, or None. Virtual devices (AUTO, HETERO...) are left to OpenVINO."""
    import openvino as ov

    base = device.split(".")[0].split(":")[0].upper()
    if base in ("AUTO", "HETERO", "MULTI", "BATCH"):
        return None
    available = ov.Core().available_devices
    if any(d.split(".")[0].upper() == base for d in available):
        return None
    return f"OpenVINO device {device} is not available here (available: {', '.join(available) or 'none'})"


def validate(artifact: Artifact, inputs: Sequence[Mapping[str, Any]]) -> ValidationRun:
    """Run the IR with OpenVINO on each input set, recording the precision the runtime really used."""
    device = _device_of(artifact, {})
    why = _missing_device(device)
    if why:
        return ValidationRun(outputs=None, skipped=why)
    runner = load_runner(artifact, {"threads": artifact.options.get("threads")})
    try:
        outputs = [runner(dict(s)) for s in inputs]
    except Exception as exc:
        raise ValidationFailed(f"openvino: the IR failed to run on {device}: {type(exc).__name__}: {_one_line(exc)}"[:800]) from exc
    checks = {
        "openvino.compile_model": "ok",
        "device": device,
        "inference_precision_hint": runner.precision,
        "weight_compression": artifact.details.get("weight_compression"),
    }
    return ValidationRun(outputs=outputs, checks=checks, runtime=runner.runtime)


# ----------------------------------------------------------------------------- describe


def describe(artifact: Artifact, request: ExportRequest | None = None) -> dict[str, Any]:
    """metadata.json fields: OpenVINO version, precision, weight compression, IO, op histogram."""
    import openvino as ov

    d = artifact.details
    model = ov.Core().read_model(str(artifact.path))
    inputs, outputs = _io_table(model)
    ops = _op_histogram(model)
    return {"extra_metadata": {"openvino": {
        "openvino_version": d.get("openvino") or _ov_version(),
        "inference_precision": d.get("inference_precision"),
        "inference_precision_hint": d.get("inference_precision_hint"),
        "weight_compression": d.get("weight_compression"),
        "int8": d.get("int8"),
        "device": d.get("device"),
        "inputs": inputs,
        "outputs": outputs,
        "ops": ops,
        "load": f"openvino.Core().compile_model('{XML}', '{d.get('device') or 'CPU'}', "
                f"{{'INFERENCE_PRECISION_HINT': '{d.get('inference_precision_hint') or 'f32'}'}})",
    }}}


def inspect(path: Path, options: Mapping[str, Any]) -> dict[str, Any] | None:
    """Describe an OpenVINO IR for ``modelport inspect``: inputs, outputs, op histogram, modelport rt_info."""
    path = Path(path)
    if path.suffix != ".xml" or not path.is_file():
        return None
    with open(path, "rb") as f:
        if b"<net " not in f.read(4096):
            return None
    import openvino as ov

    model = ov.Core().read_model(str(path))
    inputs, outputs = _io_table(model)
    rt: dict[str, Any] = {}
    if model.has_rt_info([RT_KEY]):
        for key in ("inference_precision_hint", "weight_compression", "int8", "input_names", "output_names"):
            if model.has_rt_info([RT_KEY, key]):
                rt[key] = model.get_rt_info([RT_KEY, key]).astype(str)
    weights = path.with_suffix(".bin")
    ops = _op_histogram(model)
    return {
        "format": FORMAT, "path": str(path),
        "bytes": path.stat().st_size + (weights.stat().st_size if weights.is_file() else 0),
        "inputs": inputs, "outputs": outputs, "nodes": sum(ops.values()), "ops": ops, "modelport": rt,
    }


class OpenVINOFormat(FormatObject):
    """The ``openvino`` format object: the core calls it for openvino only."""

    name = FORMAT

    def export(self, request: ExportRequest) -> Artifact:
        """convert_model with the example inputs by position, optional int8, save model.xml + model.bin."""
        return export(self.positional(request))

    def load_runner(self, artifact: Artifact, options: Mapping[str, Any]) -> OpenVINORunner:
        """The IR compiled once with its precision hint."""
        return load_runner(artifact, options)

    def validate(self, artifact: Artifact, inputs: Sequence[Mapping[str, Any]]) -> ValidationRun:
        """Run every input set on the export's device, recording the precision really used."""
        return validate(artifact, inputs)

    def describe(self, artifact: Artifact, request: ExportRequest | None) -> dict[str, Any]:
        """Version, precision, weight compression, IO and ops, for metadata.json."""
        return describe(artifact, request)

    def inspect(self, path: Path, options: Mapping[str, Any]) -> dict[str, Any] | None:
        """``modelport inspect model.xml``; None for an XML file that is not an IR."""
        return inspect(path, options)

    def load_intermediates(self, artifact: Artifact, options: Mapping[str, Any]) -> Any:
        """Module-boundary tensors for ``modelport debug``."""
        return load_intermediates(artifact, options)

"""The ``torchscript`` format object and the work behind it: trace or script, save, run, debug, describe, inspect.

Registered lazily by ``modelport_torchscript`` (``implementation="modelport_torchscript.format:TorchScriptFormat"``);
torch is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport import Artifact, ExportFailed, ExportRequest
from modelport.plugins.format_base import FormatObject

from modelport_torchscript import (
    DEPRECATION_NOTE,
    EXTRA_FILE,
    FILE,
    FORMAT,
    SUFFIXES,
    TRACE_HINT,
)

_JIT_DEPRECATED = re.compile(r"torch\.jit\.\w+`? is deprecated")
_TRACER_WARNING = "TracerWarning"


# ----------------------------------------------------------------------------- warnings


@contextlib.contextmanager
def _jit_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Collect every warning raised inside, so torch.jit's deprecation can be recorded once, not printed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def _split_warnings(caught: Sequence[warnings.WarningMessage]) -> tuple[bool, list[warnings.WarningMessage]]:
    """(whether torch.jit said it is deprecated, the other warnings deduplicated by text)."""
    deprecated = False
    others: list[warnings.WarningMessage] = []
    seen: set[str] = set()
    for w in caught:
        text = str(w.message)
        if _JIT_DEPRECATED.search(text):
            deprecated = True
        elif text not in seen:
            seen.add(text)
            others.append(w)
    return deprecated, others


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    """Silence torch.jit's deprecation warning (already recorded at export) around a load."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.\w+`? is deprecated")
        yield


# ----------------------------------------------------------------------------- export


def _one_line(exc: BaseException) -> str:
    """The first line of an error, without the tensor values some torch.jit errors print."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    line = lines[0] if lines else type(exc).__name__
    if "tensor(" in line:
        cut = line.index("tensor(")
        opened = [i for i in (line.find(c, 0, cut) for c in "{[(") if i >= 0]
        line = line[: min(opened, default=cut)].rstrip() + " …"
        if "infer type" in line:
            line += " (traced outputs must be tensors, or tuples / lists / dicts of tensors of one kind)"
    return line


def _is_output_structure_error(exc: BaseException) -> bool:
    text = str(exc)
    return any(k in text for k in ("can be output from traced functions", "infer type", "Encountering a dict",
                                   "Only tensors", "Dictionary inputs", "NoneType"))


def _Flattened(model: Any) -> Any:
    """``model`` with its outputs flattened to a tuple of tensors, in the core's order (output names recorded)."""
    import torch
    from modelport.engine.outputs import flatten_outputs

    class FlatOutputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: Any) -> tuple[Any, ...]:
            return tuple(t for _, t in flatten_outputs(self.model(*args)))

    return FlatOutputs().eval()


def _trace(request: ExportRequest) -> tuple[Any, int]:
    """torch.jit.trace the model; returns the traced module and the batch it was traced at."""
    import torch

    args = tuple(request.example_inputs)
    if request.inputs.dynamic_batch and request.inputs.batch_size < 2:
        # a batch of 1 lets size-1 special cases (squeeze, broadcasting) into the trace; trace with 2
        args = request.make_inputs(batch=2)
    batch = int(args[0].shape[0]) if args and args[0].ndim else 1
    try:
        # strict=False: models that return dicts (as transformers do) are traced as such
        return torch.jit.trace(request.model, args, strict=False, check_trace=True), batch
    except Exception as exc:
        if _is_output_structure_error(exc):
            # nested outputs tracing cannot hold (dicts of tuples, None, dataclasses): trace the flat tuple the
            # core compares, in the core's order, as the other formats do
            try:
                traced = torch.jit.trace(_Flattened(request.model), args, strict=False, check_trace=True)
            except Exception:
                pass
            else:
                request.note(f"torchscript: the model's nested outputs cannot be traced as they are "
                             f"({_one_line(exc)}); traced them flattened to a tuple in the order "
                             f"{', '.join(request.output_names)}")
                return traced, batch
        raise ExportFailed(
            f"torchscript: torch.jit.trace failed: {type(exc).__name__}: {_one_line(exc)}"[:600]
            + " — try -o mode=script, or the pt2 / onnx formats"
        ) from exc


def _script(request: ExportRequest) -> Any:
    import torch

    try:
        return torch.jit.script(request.model)
    except Exception as exc:
        raise ExportFailed(
            f"torchscript: torch.jit.script cannot compile the model: {type(exc).__name__}: {_one_line(exc)}"[:600]
            + " — try -o mode=trace (if the control flow does not depend on input values) or the pt2 format"
        ) from exc


def _optimize(module: Any, path: Path, request: ExportRequest) -> tuple[Any, str]:
    """torch.jit.optimize_for_inference, or freeze + frozen optimizations when its archive would not load.

    On CPU builds with MKLDNN, optimize_for_inference turns convolution weights into MKLDNN constants that
    torch.jit.save writes but torch.jit.load cannot read back (torch 2.13: "required keyword attribute 'value'
    is undefined"). The archive is checked by loading it; if that fails, the portable subset of the same
    optimizations (freezing, conv-bn folding, linear/conv fusions, no MKLDNN layout) is used and noted.
    """
    import torch

    try:
        optimized = torch.jit.optimize_for_inference(module)
    except Exception as exc:
        raise ExportFailed(
            f"torchscript: torch.jit.optimize_for_inference failed: {type(exc).__name__}: {_one_line(exc)}"[:600]
            + " — export without -o optimize_for_inference=true"
        ) from exc
    try:
        torch.jit.save(optimized, str(path))
        torch.jit.load(str(path), map_location="cpu")
        return optimized, "torch.jit.optimize_for_inference"
    except Exception as exc:
        request.note(
            "torchscript: torch.jit.optimize_for_inference made an archive torch.jit.load cannot read "
            f"({_one_line(exc)}); used torch.jit.freeze + torch.jit.run_frozen_optimizations instead"
        )
    frozen = torch.jit.freeze(module.eval())
    torch.jit.run_frozen_optimizations(frozen)
    return frozen, "torch.jit.freeze + torch.jit.run_frozen_optimizations"


def _io_table(request: ExportRequest, module: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Input and output descriptions (name, shape with dynamic labels, dtype) from one run of the module."""
    from modelport.engine.outputs import flatten_outputs

    inputs = [
        {"name": t.name, "shape": [t.dynamic.get(i, d) for i, d in enumerate(t.shape)], "dtype": t.dtype}
        for t in request.inputs.tensors
    ]
    flat = flatten_outputs(module(*request.example_inputs))
    names = list(request.output_names) if len(request.output_names) == len(flat) else [n for n, _ in flat]
    outputs = [
        {"name": name, "shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
        for name, (_, t) in zip(names, flat, strict=True)
    ]
    return inputs, outputs


def _quantize_dynamic(request: ExportRequest) -> tuple[ExportRequest, dict[str, Any]]:
    """The request with its model's nn.Linear layers dynamically quantized to int8 (a copy; the model is untouched)."""
    import dataclasses

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            quantized = torch.ao.quantization.quantize_dynamic(request.model, {torch.nn.Linear}, dtype=torch.qint8,
                                                               inplace=False)
        except Exception as exc:
            raise ExportFailed(f"torchscript: dynamic quantization failed: {type(exc).__name__}: {_one_line(exc)}"[:600]) from exc
    layers = sum(1 for m in quantized.modules() if type(m).__name__ == "DynamicQuantizedLinear" or
                 (type(m).__name__ == "Linear" and "quantized" in type(m).__module__))
    if layers == 0:
        raise ExportFailed("torchscript: quantize=dynamic found no nn.Linear layer to quantize; export without it")
    info = {"method": "dynamic", "dtype": "qint8", "layers": layers, "modules": ["torch.nn.Linear"],
            "engine": torch.backends.quantized.engine}
    return dataclasses.replace(request, model=quantized), info


def export(request: ExportRequest) -> Artifact:
    """Trace or script the model, optionally optimize it for inference, and save ``model.torchscript``."""
    import torch

    mode = str(request.options.get("mode") or "trace")
    optimize = bool(request.options.get("optimize_for_inference"))
    quantization = None
    if str(request.options.get("quantize") or "none") == "dynamic":
        request, quantization = _quantize_dynamic(request)
    example_batch = request.inputs.batch_size
    path = request.workdir / FILE
    with _jit_warnings() as caught, torch.no_grad():
        if mode == "trace":
            module, example_batch = _trace(request)
        else:
            module = _script(request)
        optimized = _optimize(module, path, request) if optimize else None
        module = optimized[0] if optimized else module
        inputs, outputs = _io_table(request, module)
        embedded = {
            "format": FORMAT, "mode": mode, "optimize_for_inference": optimize,
            "inputs": inputs, "outputs": [o["name"] for o in outputs], "metadata": request.metadata,
        }
        torch.jit.save(module, str(path), _extra_files={EXTRA_FILE: json.dumps(embedded, default=str)})
    deprecated, others = _split_warnings(caught)
    torch_version = torch.__version__.split("+")[0]
    if deprecated:
        request.note(DEPRECATION_NOTE.format(torch=torch_version))
    tracer_warnings = sum(1 for w in others if w.category.__name__ == _TRACER_WARNING)
    for w in others:  # hand the rest on to the core, which records each once
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    details: dict[str, Any] = {
        "mode": mode, "optimize_for_inference": optimize, "torch": torch_version, "example_batch": example_batch,
        "inputs": inputs, "outputs": outputs, "torch_jit_deprecated": deprecated,
    }
    if optimized:
        details["optimization"] = optimized[1]
    if quantization:
        details["quantization"] = quantization
    if mode == "trace":
        details["tracer_warnings"] = tracer_warnings
        hint = TRACE_HINT
        if tracer_warnings:
            hint = f"torch.jit.trace warned {tracer_warnings} time(s) that tensor values became Python constants; " + hint
        details["validation_hint"] = hint
    return Artifact(
        format=FORMAT, path=path, files=[FILE], precision="int8" if quantization else "fp32", details=details,
        input_names=list(request.inputs.names), output_names=[o["name"] for o in outputs],
    )


# ----------------------------------------------------------------------------- run


class TorchScriptRunner:
    """A TorchScript archive loaded once with torch.jit.load; called with named numpy inputs."""

    def __init__(self, path: Path, input_dtypes: Mapping[str, str], threads: int | None) -> None:
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        with _quiet_jit():
            self.module = torch.jit.load(str(path), map_location="cpu")
        self.module.eval()
        self._bf16 = {name for name, dtype in input_dtypes.items() if dtype == "bfloat16"}
        self.runtime = f"torch.jit {torch.__version__.split('+')[0]}"

    def __call__(self, inputs: Mapping[str, Any]) -> list[Any]:
        """Run the module on the inputs in forward order; outputs flattened as the core flattens PyTorch's."""
        import torch
        from modelport.engine.outputs import flatten_outputs, to_numpy

        args = []
        for name, value in inputs.items():
            tensor = torch.from_numpy(value if value.flags.writeable and value.flags.c_contiguous else value.copy())
            if name in self._bf16:
                tensor = tensor.to(torch.bfloat16)
            args.append(tensor)
        with torch.no_grad():
            out = self.module(*args)
        return [to_numpy(t) for _, t in flatten_outputs(out)]


def load_runner(artifact: Artifact, options: Mapping[str, Any]) -> TorchScriptRunner:
    """Load a ``torchscript`` artifact once for validation and benchmarks."""
    dtypes = {i["name"]: i["dtype"] for i in artifact.details.get("inputs") or [] if "name" in i and "dtype" in i}
    return TorchScriptRunner(artifact.path, dtypes, options.get("threads"))


# ----------------------------------------------------------------------------- debug


class TorchScriptIntermediates:
    """Each submodule of the archive run alone on the inputs PyTorch gave the same module (``modelport debug``).

    A traced or scripted archive keeps the module tree (``named_modules()`` of the loaded archive is the model's);
    each submodule is its own compiled method, so calling it shows what the archive computes for that module —
    a branch that tracing baked in shows up in the module that branches. Frozen or optimized archives inline their
    submodules and expose none.
    """

    mode = "per-module"

    def __init__(self, path: Path) -> None:
        import torch

        with _quiet_jit():
            self.module = torch.jit.load(str(path), map_location="cpu")
        self.module.eval()
        self.submodules = {name: m for name, m in self.module.named_modules() if name and hasattr(m, "forward")}
        self.taps = {name: f"{name}.forward" for name, m in self.submodules.items() if _has_forward(m)}
        self.unavailable: dict[str, str] = {}
        self.notes: list[str] = []
        if not self.submodules:
            self.notes.append("torchscript: the archive has no submodules (frozen or optimized for inference): "
                              "export without -o optimize_for_inference=true to debug it per module")
        self.runtime = f"torch.jit {torch.__version__.split('+')[0]}"

    def run(self, inputs: Mapping[str, Any], modules: Sequence[str], module_inputs: Any = None) -> dict[str, Any]:
        import torch
        from modelport.commands.debug import first_tensor
        from modelport.engine.outputs import to_numpy

        found: dict[str, Any] = {}
        for name in modules:
            sub = self.submodules.get(name)
            given = (module_inputs or {}).get(name)
            if sub is None or given is None:
                continue
            args, kwargs = given
            with torch.no_grad():
                out = first_tensor(sub(*args, **kwargs))
            if out is not None:
                found[name] = to_numpy(out).copy()
        return found


def _has_forward(module: Any) -> bool:
    """Containers (ModuleList, ModuleDict) have no compiled forward; they are never called."""
    try:
        return "forward" in module._c._method_names()
    except Exception:
        return hasattr(module, "forward")


def load_intermediates(artifact: Artifact, options: Mapping[str, Any]) -> TorchScriptIntermediates:
    """Per-module outputs of a ``torchscript`` archive for ``modelport debug``."""
    return TorchScriptIntermediates(artifact.path)


# ----------------------------------------------------------------------------- describe


def describe(artifact: Artifact, request: ExportRequest | None = None) -> dict[str, Any]:
    """metadata.json fields: how the archive was made (mode, torch version) and its inputs and outputs."""
    d = artifact.details
    return {"extra_metadata": {"torchscript": {
        "mode": d.get("mode"),
        "optimize_for_inference": d.get("optimize_for_inference"),
        "torch_version": d.get("torch"),
        "example_batch": d.get("example_batch"),
        "inputs": d.get("inputs"),
        "outputs": d.get("outputs"),
        "load": "torch.jit.load(path)",
    }}, "quantization": d.get("quantization")}


def is_torchscript_archive(path: Path) -> bool:
    """A zip whose records hold TorchScript code (``*/code/``) and constants — found without torch."""
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names)


def inspect(path: Path, options: Mapping[str, Any]) -> dict[str, Any] | None:
    """Describe a TorchScript archive for ``modelport inspect``: inputs, outputs, op histogram, embedded facts."""
    path = Path(path)
    if path.suffix not in (*SUFFIXES, ".pt", ".pth") or not is_torchscript_archive(path):
        return None
    import collections

    import torch

    extra = {EXTRA_FILE: ""}
    with _quiet_jit():
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    graph = module.inlined_graph
    inputs = [{"name": v.debugName().split(".")[0], "type": str(v.type())} for v in list(graph.inputs())[1:]]
    outputs = [{"type": str(v.type())} for v in graph.outputs()]
    skip = {"prim::Constant", "prim::GetAttr", "prim::ListConstruct", "prim::TupleConstruct", "prim::DictConstruct"}
    ops = collections.Counter(n.kind() for n in graph.nodes() if n.kind() not in skip)
    embedded: dict[str, Any] = {}
    if extra[EXTRA_FILE]:
        try:
            embedded = json.loads(extra[EXTRA_FILE])
        except ValueError:
            embedded = {}
    return {
        "format": FORMAT, "path": str(path), "bytes": path.stat().st_size, "inputs": inputs, "outputs": outputs,
        "nodes": sum(ops.values()), "ops": dict(ops.most_common()), "modelport": embedded,
    }


class TorchScriptFormat(FormatObject):
    """The ``torchscript`` format object: the core calls it for torchscript only."""

    name = FORMAT

    def export(self, request: ExportRequest) -> Artifact:
        """Trace (positionally, with the example inputs) or script the model and save ``model.torchscript``."""
        return export(self.positional(request))

    def load_runner(self, artifact: Artifact, options: Mapping[str, Any]) -> TorchScriptRunner:
        """The archive loaded once with torch.jit.load."""
        return load_runner(artifact, options)

    def load_intermediates(self, artifact: Artifact, options: Mapping[str, Any]) -> TorchScriptIntermediates:
        """Per-module outputs for ``modelport debug``."""
        return load_intermediates(artifact, options)

    def describe(self, artifact: Artifact, request: ExportRequest | None) -> dict[str, Any]:
        """How the archive was made and its inputs and outputs, for metadata.json."""
        return describe(artifact, request)

    def inspect(self, path: Path, options: Mapping[str, Any]) -> dict[str, Any] | None:
        """``modelport inspect``; None for a .pt/.pth file that is not a TorchScript archive."""
        return inspect(path, options)

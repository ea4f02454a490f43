"""PyTorch → Core ML ML Program: torch.export, ``run_decompositions({})``, ``coremltools.convert``, save the package.

Tracing (``torch.jit.trace``) fails on transformer encoders in coremltools 9; torch.export with the core ATen
decompositions converts both bundled models. coremltools would compute in fp16 unless told; modelport asks for
fp32 by default and records the precision it used.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelport import Artifact, ExportFailed, ExportRequest

from modelport_coreml import COMPUTE_UNITS, FORMAT, PACKAGE, TARGETS

# Core ML names features with identifiers; "output.0" becomes "output_0"
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
COREML_DTYPES = {"float32": "FLOAT32", "float16": "FLOAT16", "float64": "FLOAT32", "int64": "INT32", "int32": "INT32",
                 "int16": "INT32", "int8": "INT32", "uint8": "INT32", "bool": "INT32", "bfloat16": "FLOAT32"}
# (float16 inputs need minimum_deployment_target iOS16 or later)


def feature_names(names: list[str]) -> list[str]:
    """Core ML feature names for ``names``: identifiers, unique."""
    out: list[str] = []
    for name in names:
        safe = _UNSAFE.sub("_", name) or "x"
        if safe[0].isdigit():
            safe = "_" + safe
        base, i = safe, 1
        while safe in out:
            safe, i = f"{base}_{i}", i + 1
        out.append(safe)
    return out


@contextlib.contextmanager
def quiet_coremltools() -> Iterator[None]:
    """coremltools logs import noise on Linux (no libcoremlpython), progress bars and its own deprecations.

    Keep the CLI's output and export.json's notes to what matters; the torch-version warning is recorded by
    :func:`torch_version_warning`.
    """
    logger = logging.getLogger("coremltools")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            for category in (DeprecationWarning, FutureWarning, ResourceWarning):
                warnings.filterwarnings("ignore", category=category)
            yield
    finally:
        logger.setLevel(level)


def import_coremltools() -> Any:
    with quiet_coremltools():
        import coremltools

    return coremltools


def torch_version_warning() -> str | None:
    """coremltools' own "torch version not tested" warning, rebuilt so it is recorded even when already imported."""
    import torch
    from packaging.version import Version

    try:
        from coremltools import _deps
        tested = str(_deps._TORCH_MAX_VERSION)
    except (ImportError, AttributeError):
        return None
    current = re.match(r"\d+\.\d+\.\d+", torch.__version__)
    if current and Version(current.group(0)) > Version(tested):
        return (f"coremltools: Torch version {torch.__version__} has not been tested with coremltools. You may run "
                f"into unexpected errors. Torch {tested} is the most recent version that has been tested.")
    return None


def _shape_of(val: Any, batch_symbol: Any) -> list[Any]:
    out: list[Any] = []
    for i, d in enumerate(getattr(val, "shape", ())):
        if isinstance(d, int):
            out.append(d)
        elif i == 0 and batch_symbol is not None and str(d) == str(batch_symbol):
            out.append("batch")
        else:
            out.append("dynamic")
    return out


# Written into the package by coremltools when it converts a torch.export program: ExecuTorch's map from MIL ops
# to debug handles. The Manifest does not list it, Core ML never reads it, and it names every op of the model.
DEBUG_HANDLE_FILE = "executorch_debug_handle_mapping.json"


def tidy_package(package: Path) -> None:
    """Leave only what the Manifest describes, readable like every other file of the export: coremltools writes
    model.mlmodel and weights/ as 0600/0700 (its temp-file defaults) and adds ExecuTorch's debug-handle map."""
    import os

    (package / DEBUG_HANDLE_FILE).unlink(missing_ok=True)
    umask = os.umask(0)
    os.umask(umask)
    for path in [package, *package.rglob("*")]:
        if not path.is_symlink():
            path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def package_files(package: Path, workdir: Path) -> list[str]:
    """Every file inside the package, relative to the workdir (the core hashes and publishes each)."""
    return sorted(p.relative_to(workdir).as_posix() for p in package.rglob("*") if p.is_file())


def export_coreml(request: ExportRequest) -> Artifact:
    """Convert ``request.model`` to ``model.mlpackage`` and record what the package should declare."""
    import importlib.metadata

    import torch

    precision = request.options.get("precision", "fp32")
    target_name = TARGETS[str(request.options.get("minimum_deployment_target") or "ios15").lower()]
    units = COMPUTE_UNITS[str(request.options.get("compute_units") or "all").lower()]
    ct = import_coremltools()
    warning = torch_version_warning()
    if warning:
        request.note(warning)

    args = request.example_inputs
    if request.inputs.dynamic_batch and request.inputs.batch_size < 2:
        args = request.make_inputs(batch=2)  # a batch of 1 lets torch.export specialize the batch axis
    try:
        with quiet_coremltools():
            ep = torch.export.export(request.model, args, dynamic_shapes=request.torch_dynamic_shapes(), strict=False)
            ep = ep.run_decompositions({})
    except Exception as exc:
        from modelport.plugins.converter_errors import converter_error

        raise converter_error("coreml: torch.export failed", exc) from exc

    batch_symbol = None
    first = next((n for n in ep.graph.nodes if n.op == "placeholder" and n.name in ep.graph_signature.user_inputs), None)
    if first is not None and request.inputs.dynamic_batch:
        batch_symbol = first.meta["val"].shape[0]
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    out_vals = [getattr(a, "meta", {}).get("val") for a in out_node.args[0]]
    user_out = len(ep.graph_signature.user_outputs)
    out_vals = out_vals[len(out_vals) - user_out:]
    if len(out_vals) != len(request.output_names):
        raise ExportFailed(f"coreml: torch.export produced {len(out_vals)} outputs, the model returns "
                           f"{len(request.output_names)} ({', '.join(request.output_names)})")

    in_names = feature_names(request.input_names)
    out_names = feature_names(request.output_names)
    try:
        with quiet_coremltools():
            mlmodel = ct.convert(
                ep,
                convert_to="mlprogram",
                # the PyTorch dtypes at the boundary (fp16 programs for iOS16+ would otherwise take fp16 inputs)
                inputs=[ct.TensorType(name=n, dtype=_io_dtype(t.dtype)) for n, t in zip(in_names, request.inputs.tensors, strict=True)],
                outputs=[ct.TensorType(name=n, dtype=_io_dtype(str(getattr(v, "dtype", "float32")).removeprefix("torch.")))
                         for n, v in zip(out_names, out_vals, strict=True)],
                compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
                minimum_deployment_target=getattr(ct.target, target_name),
                compute_units=getattr(ct.ComputeUnit, units),
                skip_model_load=True,
            )
            _describe_model(mlmodel, request)
            package = request.workdir / PACKAGE
            mlmodel.save(str(package))
        tidy_package(package)
    except Exception as exc:
        raise ExportFailed(f"coreml: coremltools could not convert the model: {type(exc).__name__}: "
                           f"{_first_line(exc)}"[:600]) from exc

    spec = mlmodel.get_spec()
    declared_in = {f.name: f for f in spec.description.input}
    input_dtypes: dict[str, str] = {}
    expected_inputs = []
    for t, name in zip(request.inputs.tensors, in_names, strict=True):
        want = COREML_DTYPES.get(t.dtype, "FLOAT32")
        expected_inputs.append({"name": name, "source": t.name, "shape": list(t.shape), "dtype": t.dtype,
                                "coreml_dtype": want, "dynamic": {str(a): lbl for a, lbl in t.dynamic.items()}})
        got = declared_in[name].type.multiArrayType.dataType if name in declared_in else None
        got_name = _array_dtype_name(ct, got) if got is not None else None
        if got_name and _numpy_dtype(got_name) != t.dtype:
            input_dtypes[name] = _numpy_dtype(got_name)
    if input_dtypes:
        request.note("coreml: " + ", ".join(f"{n} is {d} in the package" for n, d in input_dtypes.items())
                     + " (Core ML has no 64-bit integer inputs)")
    expected_outputs = [
        {"name": n, "source": src, "shape": _shape_of(v, batch_symbol),
         "dtype": str(getattr(v, "dtype", "torch.float32")).removeprefix("torch.")}
        for n, src, v in zip(out_names, request.output_names, out_vals, strict=True)
    ]

    from modelport_coreml.package import op_histogram

    version = importlib.metadata.version("coremltools")
    return Artifact(
        format=FORMAT,
        path=request.workdir / PACKAGE,
        files=package_files(request.workdir / PACKAGE, request.workdir),
        precision=precision,
        details={
            "converter": f"coremltools {version}",
            "source": "torch.export + run_decompositions({})",
            "compute_precision": precision,
            "minimum_deployment_target": target_name,
            "specification_version": int(spec.specificationVersion),
            "compute_units": units,
            "inputs": expected_inputs,
            "outputs": expected_outputs,
            "ops": op_histogram(spec),
            "torch": torch.__version__,
        },
        input_names=in_names,
        output_names=out_names,
        input_dtypes=input_dtypes or None,
    )


def _describe_model(mlmodel: Any, request: ExportRequest) -> None:
    """Carry what is known before export into the package's own metadata (Xcode shows it)."""
    md = request.metadata
    mlmodel.short_description = f"{md.get('model_name', request.model_name)} exported by modelport"
    mlmodel.user_defined_metadata["modelport.model_name"] = str(md.get("model_name", request.model_name))
    mlmodel.user_defined_metadata["modelport.task_type"] = str(md.get("task_type", "other"))
    if md.get("class_names"):
        mlmodel.user_defined_metadata["modelport.class_names"] = json.dumps(md["class_names"])


def _io_dtype(dtype: str) -> Any:
    """numpy dtype Core ML takes at the boundary for a PyTorch dtype: float32 for floats, int32 for integers."""
    import numpy as np

    if dtype == "float16":
        return np.float16
    if dtype.startswith(("float", "bfloat")):
        return np.float32
    return np.int32


def _array_dtype_name(ct: Any, value: int) -> str:
    return ct.proto.FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(value)


def _numpy_dtype(coreml_name: str) -> str:
    return {"FLOAT32": "float32", "FLOAT16": "float16", "FLOAT64": "float64", "INT32": "int32", "DOUBLE": "float64"}.get(
        coreml_name, coreml_name.lower())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

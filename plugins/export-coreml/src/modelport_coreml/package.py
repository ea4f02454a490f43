"""Read a saved ``.mlpackage``: structural checks against the export request, op histogram, and (macOS) predict."""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

FAILED = "FAILED: "


def _load_spec(path: Path) -> Any:
    from modelport_coreml.convert import import_coremltools, quiet_coremltools

    ct = import_coremltools()
    with quiet_coremltools():
        return ct.models.MLModel(str(path), skip_model_load=True).get_spec()


def _main_block(spec: Any) -> Any:
    fn = spec.mlProgram.functions["main"]
    return fn.block_specializations[fn.opset]


def op_histogram(spec: Any) -> dict[str, int]:
    """MIL operation type → count in the main function, constants left out."""
    ops = collections.Counter(op.type for op in _main_block(spec).operations if op.type != "const")
    return dict(ops.most_common())


def _mil_dtype(value: int) -> str:
    from coremltools.proto import MIL_pb2

    return MIL_pb2.DataType.Name(value)


def compute_dtypes(spec: Any) -> dict[str, int]:
    """How many non-const ops produce fp16 / fp32 tensors: the precision the program really computes in."""
    counts: collections.Counter[str] = collections.Counter()
    for op in _main_block(spec).operations:
        if op.type == "const":
            continue
        for out in op.outputs:
            if out.type.WhichOneof("type") == "tensorType":
                name = _mil_dtype(out.type.tensorType.dataType)
                if name in ("FLOAT16", "FLOAT32"):
                    counts[name] += 1
    return dict(counts)


def _array_dtype(value: int) -> str:
    from coremltools.proto import FeatureTypes_pb2

    return FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(value)


def _input_ranges(feature: Any) -> list[tuple[int, int]]:
    """Per axis (lower, upper) sizes the package accepts; upper -1 means unbounded."""
    arr = feature.type.multiArrayType
    if arr.WhichOneof("ShapeFlexibility") == "shapeRange":
        return [(int(r.lowerBound), int(r.upperBound)) for r in arr.shapeRange.sizeRanges]
    if arr.WhichOneof("ShapeFlexibility") == "enumeratedShapes":
        shapes = [list(s.shape) for s in arr.enumeratedShapes.shapes]
        return [(min(s[i] for s in shapes), max(s[i] for s in shapes)) for i in range(len(shapes[0]))]
    return [(int(d), int(d)) for d in arr.shape]


def _fmt_range(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}..{'inf' if hi < 0 else hi}"


def check_package(path: Path, details: Mapping[str, Any], inputs: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], str]:
    """Reload the package and compare what it declares with what the export request asked for.

    Each check is ``"ok: ..."`` or ``"FAILED: ..."``; ``ops`` and ``compute_dtypes`` are facts.
    """
    import importlib.metadata

    import numpy as np

    checks: dict[str, Any] = {}
    runtime = f"coremltools {importlib.metadata.version('coremltools')} (package reload; Core ML runtime needs macOS)"
    try:
        spec = _load_spec(path)
    except Exception as exc:
        return {"reload": f"{FAILED}{type(exc).__name__}: {exc}"[:300]}, runtime
    kind = spec.WhichOneof("Type")
    if kind != "mlProgram":
        checks["reload"] = f"{FAILED}model type {kind}, expected mlProgram"
        return checks, runtime
    fn = spec.mlProgram.functions["main"]
    checks["reload"] = f"ok: mlProgram, specification version {spec.specificationVersion}, opset {fn.opset}"
    want_version = details.get("specification_version")
    if want_version is not None and int(want_version) != int(spec.specificationVersion):
        checks["reload"] = f"{FAILED}specification version {spec.specificationVersion}, recorded {want_version}"

    # inputs: names, order, dtypes, accepted shapes
    declared = list(spec.description.input)
    expected = list(details.get("inputs") or [])
    problems: list[str] = []
    if [f.name for f in declared] != [e["name"] for e in expected]:
        problems.append(f"names {[f.name for f in declared]} != {[e['name'] for e in expected]}")
    ranges: dict[str, list[tuple[int, int]]] = {}
    described = []
    for f, e in zip(declared, expected, strict=False):
        dtype = _array_dtype(f.type.multiArrayType.dataType)
        ranges[f.name] = _input_ranges(f)
        described.append(f"{f.name} {dtype} [{', '.join(_fmt_range(lo, hi) for lo, hi in ranges[f.name])}]")
        if dtype != e["coreml_dtype"]:
            problems.append(f"{f.name} is {dtype}, expected {e['coreml_dtype']}")
        if len(ranges[f.name]) != len(e["shape"]):
            problems.append(f"{f.name} has rank {len(ranges[f.name])}, expected {len(e['shape'])}")
            continue
        for axis, ((lo, hi), size) in enumerate(zip(ranges[f.name], e["shape"], strict=True)):
            if str(axis) in e.get("dynamic", {}):
                if lo > size or 0 <= hi < size or lo == hi:
                    problems.append(f"{f.name} axis {axis} is declared dynamic but accepts only {_fmt_range(lo, hi)}")
            elif (lo, hi) != (size, size):
                problems.append(f"{f.name} axis {axis} accepts {_fmt_range(lo, hi)}, expected {size}")
    checks["inputs"] = f"{FAILED}{'; '.join(problems)}" if problems else f"ok: {', '.join(described)}"

    # the validation input sets fit the declared shapes (what predict on macOS would be fed)
    fit_problems = []
    for i, s in enumerate(inputs):
        for e in expected:
            arr = s.get(e["source"])
            if arr is None:
                fit_problems.append(f"set {i} lacks {e['source']}")
                continue
            r = ranges.get(e["name"], [])
            if np.ndim(arr) != len(r) or any(not (lo <= d and (hi < 0 or d <= hi)) for d, (lo, hi) in zip(np.shape(arr), r, strict=False)):
                fit_problems.append(f"set {i}: {e['source']}{list(np.shape(arr))} outside the declared shape")
    batches = sorted({int(np.shape(next(iter(s.values())))[0]) for s in inputs if s and np.ndim(next(iter(s.values())))})
    checks["validation_inputs"] = (f"{FAILED}{'; '.join(fit_problems[:5])}" if fit_problems else
                                   f"ok: {len(inputs)} input set(s) (batch {', '.join(map(str, batches))}) fit the declared inputs")

    # outputs: names, order, ranks and fixed dims from the program's block outputs
    block = _main_block(spec)
    out_types = {o.name: o.type for op in block.operations for o in op.outputs if o.name in set(block.outputs)}
    declared_out = [f.name for f in spec.description.output]
    expected_out = list(details.get("outputs") or [])
    problems = []
    described = []
    if declared_out != [e["name"] for e in expected_out]:
        problems.append(f"names {declared_out} != {[e['name'] for e in expected_out]}")
    for name, e in zip(declared_out, expected_out, strict=False):
        feature = next(f for f in spec.description.output if f.name == name)
        dtype = _array_dtype(feature.type.multiArrayType.dataType)
        want_dtype = "FLOAT32" if e["dtype"] in ("float32", "float64", "bfloat16") else None
        if want_dtype and dtype not in (want_dtype, "FLOAT16"):
            problems.append(f"{name} is {dtype}, expected {want_dtype}")
        block_name = block.outputs[declared_out.index(name)] if declared_out.index(name) < len(block.outputs) else name
        t = out_types.get(block_name)
        if t is None or t.WhichOneof("type") != "tensorType":
            problems.append(f"{name}: no tensor type in the program")
            continue
        dims = []
        for d in t.tensorType.dimensions:
            dims.append(int(d.constant.size) if d.WhichOneof("dimension") == "constant" else "?")
        described.append(f"{name} {dtype} {dims}")
        if len(dims) != len(e["shape"]):
            problems.append(f"{name} has rank {len(dims)}, expected {len(e['shape'])}")
            continue
        for axis, (got, want) in enumerate(zip(dims, e["shape"], strict=True)):
            if isinstance(want, int) and got != want:
                problems.append(f"{name} axis {axis} is {got}, expected {want}")
    checks["outputs"] = f"{FAILED}{'; '.join(problems)}" if problems else f"ok: {', '.join(described)}"

    # compute precision: fp32 means no op computes in fp16
    dtypes = compute_dtypes(spec)
    fp16, fp32 = dtypes.get("FLOAT16", 0), dtypes.get("FLOAT32", 0)
    precision = details.get("compute_precision", "fp32")
    if precision == "fp32":
        checks["compute_precision"] = (f"{FAILED}{fp16} ops compute in fp16, requested fp32" if fp16
                                       else f"ok: fp32 throughout ({fp32} float ops, none in fp16)")
    else:
        checks["compute_precision"] = (f"ok: fp16 ({fp16} of {fp16 + fp32} float ops in fp16)" if fp16
                                       else f"{FAILED}no op computes in fp16, requested fp16")
    ops = op_histogram(spec)
    checks["ops"] = ops
    recorded = details.get("ops")
    if recorded and dict(recorded) != ops:
        checks["op_histogram"] = f"{FAILED}the package's ops differ from the ones recorded at export"
    weights = list(path.glob("Data/com.apple.CoreML/weights/*.bin"))
    checks["weights"] = f"ok: {sum(p.stat().st_size for p in weights)} bytes in {len(weights)} file(s)" if weights else "no weight file"
    return checks, runtime


def failed_checks(checks: Mapping[str, Any]) -> list[str]:
    return [f"{k}: {v.removeprefix(FAILED)}" for k, v in checks.items() if isinstance(v, str) and v.startswith(FAILED)]


class CoreMLRunner:
    """macOS only: load the package with Core ML once and predict with the core's input names.

    Not exercised on the Linux machines this plugin was developed on; see the README.
    """

    def __init__(self, path: Path, details: Mapping[str, Any], compute_units: str | None) -> None:
        import importlib.metadata

        from modelport_coreml.convert import import_coremltools

        ct = import_coremltools()
        from modelport_coreml import COMPUTE_UNITS

        units = COMPUTE_UNITS.get(str(compute_units or details.get("compute_units") or "all").lower(), "ALL")
        self.model = ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, units))
        self.inputs = [(e["source"], e["name"], e["coreml_dtype"]) for e in details.get("inputs") or []]
        self.outputs = [e["name"] for e in details.get("outputs") or []]
        self.runtime = f"coremltools {importlib.metadata.version('coremltools')} (Core ML, {units})"

    def __call__(self, inputs: Mapping[str, Any]) -> list[Any]:
        import numpy as np

        feed = {}
        for source, name, dtype in self.inputs:
            arr = np.asarray(inputs[source])
            feed[name] = arr.astype(np.int32 if dtype == "INT32" else np.float16 if dtype == "FLOAT16" else np.float32)
        out = self.model.predict(feed)
        return [np.asarray(out[name]) for name in self.outputs]


def describe_package(path: Path) -> dict[str, Any]:
    """For ``modelport inspect``: IO as the package declares it, op histogram, compute dtypes, size."""
    spec = _load_spec(path)
    inputs = [{"name": f.name, "dtype": _array_dtype(f.type.multiArrayType.dataType),
               "shape": [_fmt_range(lo, hi) for lo, hi in _input_ranges(f)]} for f in spec.description.input]
    outputs = [{"name": f.name, "dtype": _array_dtype(f.type.multiArrayType.dataType)} for f in spec.description.output]
    ops = op_histogram(spec) if spec.WhichOneof("Type") == "mlProgram" else {}
    return {
        "format": "coreml", "path": str(path), "model_type": spec.WhichOneof("Type"),
        "specification_version": int(spec.specificationVersion),
        "bytes": sum(p.stat().st_size for p in path.rglob("*") if p.is_file()),
        "inputs": inputs, "outputs": outputs, "nodes": sum(ops.values()), "ops": ops,
        "compute_dtypes": compute_dtypes(spec) if ops else {},
        "metadata": dict(spec.description.metadata.userDefined),
    }

"""What an ONNX file holds — opset, IO, ops, module hierarchy — for metadata.json and ``modelport inspect``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelport import Artifact

from modelport_onnx import hierarchy


def _dtype(elem_type: int) -> str:
    from onnx import TensorProto

    name = TensorProto.DataType.Name(elem_type).lower()
    return {"float": "float32", "double": "float64"}.get(name, name)


def _value_info(vi: Any) -> dict[str, Any]:
    tt = vi.type.tensor_type
    shape: list[Any] = []
    dynamic: dict[str, str] = {}
    for axis, d in enumerate(tt.shape.dim):
        if d.HasField("dim_value"):
            shape.append(d.dim_value)
        else:
            label = d.dim_param or "?"
            shape.append(label)
            dynamic[str(axis)] = label
    out: dict[str, Any] = {"name": vi.name, "shape": shape, "dtype": _dtype(tt.elem_type)}
    if dynamic:
        out["dynamic"] = dynamic
    return out


def external_files(model: Any) -> list[str]:
    """Locations of external tensor data named by the model, in first-use order."""
    from onnx import TensorProto

    seen: dict[str, None] = {}
    for t in model.graph.initializer:
        if t.data_location == TensorProto.EXTERNAL:
            for e in t.external_data:
                if e.key == "location":
                    seen.setdefault(e.value, None)
    return list(seen)


def _inside(folder: Path, location: str) -> bool:
    """Whether an external-data location stays inside ``folder`` (no absolute path, no ``..``, no symlink out)."""
    if not location or Path(location).is_absolute() or ".." in Path(location).parts or "\\" in location:
        return False
    try:
        (folder / location).resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def summarize(path: Path) -> dict[str, Any]:
    """The graph's facts without loading external weights."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    ops = Counter(n.op_type for n in model.graph.node)
    with_module = sum(1 for n in model.graph.node if hierarchy.node_module(n) is not None)
    data = external_files(model)
    inside = [f for f in data if _inside(path.parent, f)]
    size = path.stat().st_size + sum((path.parent / f).stat().st_size for f in inside if (path.parent / f).is_file())
    if len(inside) != len(data):  # a tampered model naming files elsewhere: never followed, not even stat()ed
        outside = [f for f in data if f not in inside]
        raise ValueError(f"external data location(s) outside the model's folder: {', '.join(outside[:3])}")
    return {
        "opset": next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None),
        "opset_imports": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "ir_version": model.ir_version,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": [_value_info(i) for i in model.graph.input],
        "outputs": [_value_info(o) for o in model.graph.output],
        "nodes": len(model.graph.node),
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "initializers": len(model.graph.initializer),
        "external_data": data,
        "bytes": size,
        "nodes_with_module_path": with_module,
        "metadata_props": {p.key: p.value for p in model.metadata_props},
    }


def describe_for_metadata(artifact: Artifact) -> dict[str, Any]:
    """metadata.json fields: the graph's facts plus what the export did (exporter, simplification, quantization)."""
    info = summarize(artifact.path)
    d = artifact.details
    onnx_md = {
        "opset": info["opset"], "opset_imports": info["opset_imports"], "ir_version": info["ir_version"],
        "producer": info["producer"], "exporter": d.get("exporter"), "exporter_requested": d.get("exporter_requested"),
        "fallback": d.get("fallback"), "inputs": info["inputs"], "outputs": info["outputs"], "nodes": info["nodes"],
        "ops": info["ops"], "external_data": info["external_data"] or False,
        "simplification": d.get("simplify"), "quantization": d.get("quantization"), "fp16": d.get("fp16"),
        "hierarchy": d.get("hierarchy"), "nodes_with_module_path": info["nodes_with_module_path"],
        "load": "onnxruntime.InferenceSession('model.onnx', providers=['CPUExecutionProvider'])",
    }
    return {"extra_metadata": {"onnx": {k: v for k, v in onnx_md.items() if v is not None}}}


def inspect_file(path: Path, by_module: bool = False, module: str | None = None,
                 options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``modelport inspect model.onnx``: IO, ops, sizes; ``by_module`` groups nodes by PyTorch module path and
    ``module`` restricts that to one subtree. ``options``: ``nodes`` (one row per node, for ``--format
    detailed|csv``), ``check`` (every compute node tagged, tags forming one tree), ``tree`` (the module hierarchy,
    for ``--graphml``)."""
    import onnx

    info: dict[str, Any] = {"format": "onnx", "path": str(path), **summarize(path)}
    if not info["metadata_props"]:
        del info["metadata_props"]
    opts = options or {}
    if opts.get("nodes") or opts.get("check") or opts.get("tree"):
        graph = onnx.load(str(path), load_external_data=False)
        if opts.get("nodes"):
            info["nodes"] = hierarchy.node_rows(graph, prefix=module or None)
        if opts.get("check"):
            info["hierarchy_check"] = hierarchy.check(graph)
        if opts.get("tree"):
            info["module_tree"] = hierarchy.module_tree(graph)
    if by_module or module:
        model = onnx.load(str(path), load_external_data=False)
        groups = hierarchy.group_by_module(model, prefix=module or None)
        info["modules"] = groups
        if module:
            ops: Counter[str] = Counter()
            for g in groups:
                ops.update(g["ops"])
            info["module_filter"] = {"module": module, "nodes": sum(g["nodes"] for g in groups),
                                     "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0])))}
            if not groups:
                top = sorted({g["module"].split(".")[0] for g in hierarchy.group_by_module(model)})
                info["module_filter"]["note"] = f"no node belongs to module {module!r}; top-level modules: {', '.join(top)}"
        if info["nodes_with_module_path"] == 0 and not any(n.name.startswith("/") for n in model.graph.node):
            info["modules_note"] = "this model carries no module paths (exported with hierarchy=false or by another tool)"
    return info

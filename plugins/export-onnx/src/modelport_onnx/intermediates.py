"""``modelport debug`` for ONNX: module outputs found through the hierarchy tags, exposed as extra graph outputs.

Every node keeps its PyTorch module path in ``metadata_props`` (see ``hierarchy.py``; the legacy exporter's node
names as a fallback), so a module's output is the last tensor its nodes produce that is read outside it. For each
round the core asks for a bounded set of modules; only those tensors become graph outputs of a copy of the graph
(weights stay in the original ``model.onnx.data``, linked, never copied), run once in onnxruntime.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport import Artifact, GraphNode

from modelport_onnx.hierarchy import INFERRED_KEY, module_from_legacy_name, module_from_props, props_of


def graph_nodes(model: Any) -> tuple[list[GraphNode], list[str]]:
    """The top-level graph as GraphNode records (module path per node) and its output names."""
    nodes = []
    for node in model.graph.node:
        props = props_of(node)
        # a node a rewrite created (a Cast, a QuantizeLinear) had its module guessed from its neighbours: it is
        # no evidence of where a module's output is
        module = None if props.get(INFERRED_KEY) else module_from_props(props)
        if module is None and not props.get(INFERRED_KEY):
            module = module_from_legacy_name(node.name)
        nodes.append(GraphNode(module, list(node.input), list(node.output)))
    return nodes, [o.name for o in model.graph.output]


_HALF = (10, 16)  # TensorProto.FLOAT16, TensorProto.BFLOAT16


def tensor_types(model: Any) -> dict[str, int]:
    """Element type of every tensor onnx shape inference can type (weights are not loaded for it)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        return {}
    out: dict[str, int] = {}
    for vi in (*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input):
        if vi.type.HasField("tensor_type"):
            out[vi.name] = vi.type.tensor_type.elem_type
    return out


class OnnxIntermediates:
    """An ONNX artifact that returns the tensors at module boundaries (one onnxruntime run per round)."""

    mode = "end-to-end"

    def __init__(self, path: Path, threads: int | None) -> None:
        import onnx
        import onnxruntime as ort
        from modelport.commands.debug import module_boundaries

        self.path = Path(path)
        self.threads = threads
        self.proto = onnx.load(str(self.path), load_external_data=False)
        nodes, outputs = graph_nodes(self.proto)
        self.taps = module_boundaries(nodes, outputs)
        self.types = tensor_types(self.proto)
        self.unavailable: dict[str, str] = {}
        self.notes: list[str] = []
        if not any(n.module for n in nodes):
            self.notes.append("onnx: the graph carries no module paths (exported with -o hierarchy=false?)")
        self.runtime = f"onnxruntime {ort.__version__} (CPUExecutionProvider)"

    def run(self, inputs: Mapping[str, Any], modules: Sequence[str], module_inputs: Any = None) -> dict[str, Any]:
        import numpy as np
        import onnx

        from modelport_onnx.runtime import OnnxRunner

        wanted: dict[str, str] = {}
        for m in modules:
            if m in self.taps:
                wanted.setdefault(self.taps[m], m)
        copy = onnx.ModelProto()
        copy.CopyFrom(self.proto)
        existing = {o.name for o in copy.graph.output}
        exposed: dict[str, str] = {}  # module tensor → the graph output that shows it
        for tensor in wanted:
            if tensor in existing:
                exposed[tensor] = tensor
            elif self.types.get(tensor) in _HALF:
                # a float16 tensor made a graph output would be materialized in float16 even where the runtime
                # computes in float32 (onnxruntime's CPU kernels do); a float32 copy shows what consumers read
                out = f"modelport_debug::{tensor}"
                copy.graph.node.append(onnx.helper.make_node("Cast", [tensor], [out], to=onnx.TensorProto.FLOAT))
                copy.graph.output.append(onnx.ValueInfoProto(name=out))
                exposed[tensor] = out
            else:
                copy.graph.output.append(onnx.ValueInfoProto(name=tensor))
                exposed[tensor] = tensor
        tmp = Path(tempfile.mkdtemp(prefix="modelport-debug-onnx-"))
        try:
            for sibling in self.path.parent.iterdir():  # external weights, linked beside the copy
                if sibling.name != self.path.name and sibling.name.startswith(self.path.name):
                    (tmp / sibling.name).symlink_to(sibling.resolve())
            target = tmp / self.path.name
            onnx.save(copy, str(target))
            runner = OnnxRunner(target, threads=self.threads, quiet=True)
            names = runner.output_names
            values = runner.session.run(names, runner.feed(inputs))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        by_name = dict(zip(names, values, strict=True))
        by_name = {tensor: by_name[out] for tensor, out in exposed.items() if out in by_name}
        found: dict[str, Any] = {}
        for tensor, _m in wanted.items():
            if tensor in by_name:
                for mod in modules:
                    if self.taps.get(mod) == tensor:
                        found[mod] = np.asarray(by_name[tensor])
        return found


def load(artifact: Artifact, options: Mapping[str, Any]) -> OnnxIntermediates:
    return OnnxIntermediates(artifact.path, options.get("threads"))

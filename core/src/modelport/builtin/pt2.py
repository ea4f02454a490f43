"""Built-in format ``pt2``: a torch.export ExportedProgram saved with ``torch.export.save``."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport.plugins.converter_errors import converter_error, guard_log
from modelport.plugins.format_base import FormatObject
from modelport.plugins.hookspecs import hookimpl
from modelport.plugins.types import Artifact, ExportRequest, FormatSpec, OptionSpec

FILE = "model.pt2"
USAGE = ('import torch\n\nmodel = torch.export.load("{path}").module()\n'
         "outputs = model(*[torch.from_numpy(v) for v in inputs.values()])")


@hookimpl
def register_formats(register: Any) -> None:
    register(FormatSpec(
        name="pt2",
        display_name="torch.export (.pt2)",
        files=(FILE,),
        options=(
            OptionSpec("strict", "bool", False, "torch.export strict mode (TorchDynamo tracing) instead of non-strict"),
        ),
        description="ExportedProgram archive; load with torch.export.load(path).module()",
        implementation=Pt2Format,  # this module is light (torch loads inside the methods), so the class itself
        suffixes=(".pt2",),
        usage=USAGE,
        runtime_library="torch",
        hub_library="pytorch",
    ))


def dynamic_shapes_for(request: ExportRequest) -> Any:
    """torch.export ``dynamic_shapes`` from the input spec (see ``ExportRequest.torch_dynamic_shapes``)."""
    return request.torch_dynamic_shapes()


def export_program(request: ExportRequest, strict: bool = False) -> Any:
    """torch.export the request's model with its example inputs and dynamic shapes (batch ≥ 2 if dynamic)."""
    import torch

    args = request.example_inputs
    if request.inputs.dynamic_batch and request.inputs.batch_size < 2:
        # an example batch of 1 lets torch.export specialize the batch to 1; trace with 2
        args = request.make_inputs(batch=2)
    with guard_log() as guards:
        try:
            return torch.export.export(request.model, args, dynamic_shapes=dynamic_shapes_for(request), strict=strict)
        except Exception as exc:
            raise converter_error("pt2: torch.export failed", exc, guards=guards) from exc


def export(request: ExportRequest) -> Artifact:
    """Write ``model.pt2`` from the request's model (called positionally with its example inputs)."""
    import torch

    ep = export_program(request, strict=bool(request.options.get("strict")))
    path = request.workdir / FILE
    # serialize in memory, then write from Python: torch's zip writer aborts the whole process (SIGABRT)
    # when the disk fills up, while a Python write raises a clean OSError
    buffer = io.BytesIO()
    torch.export.save(ep, buffer)
    with open(path, "wb") as f:
        f.write(buffer.getbuffer())
    return Artifact(
        format="pt2", path=path, files=[FILE], precision="fp32",
        details={"strict": bool(request.options.get("strict")), "torch": torch.__version__},
    )


class _Pt2Runner:
    runtime = "torch.export"

    def __init__(self, path: Path, names: Sequence[str] | None, threads: int | None) -> None:
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        self.module = torch.export.load(str(path)).module()
        self.names = names

    def __call__(self, inputs: Mapping[str, Any]) -> list[Any]:
        import torch

        from modelport.engine.outputs import flatten_outputs, to_numpy

        args = [torch.from_numpy(v.copy() if not v.flags.writeable else v) for v in inputs.values()]
        with torch.no_grad():
            out = self.module(*args)
        return [to_numpy(t) for _, t in flatten_outputs(out)]




def _dim_labels(shapes: list[Any]) -> dict[str, str]:
    """A readable name per symbolic dimension (torch.export calls them ``s31``): one symbol on axis 0 of every
    input is the batch; any other is ``dimN`` after the first axis it appears on."""
    labels: dict[str, str] = {}
    firsts = {str(s[0]) for s in shapes if len(s) and not isinstance(s[0], int)}
    if len(firsts) == 1 and all(len(s) and not isinstance(s[0], int) for s in shapes):
        labels[firsts.pop()] = "batch"
    for shape in shapes:
        for axis, d in enumerate(shape):
            if not isinstance(d, int):
                labels.setdefault(str(d), f"dim{axis}")
    return labels


def _range(ep: Any, dim: Any) -> str:
    """``1..65536``: the sizes the program accepts on a symbolic dimension, as torch.export recorded them."""
    expr = getattr(getattr(dim, "node", None), "expr", None)
    vr = ep.range_constraints.get(expr) if expr is not None else None
    if vr is None:
        return "any size"
    upper = str(vr.upper)
    return f"{vr.lower}..{'inf' if 'oo' in upper else upper}"


def inspect(path: Path) -> dict[str, Any]:
    """Inputs (with symbolic dimensions and their ranges), outputs and op counts of a ``.pt2`` archive."""
    import collections

    import torch

    ep = torch.export.load(str(path))
    ops = collections.Counter(
        str(n.target).removeprefix("aten.") for n in ep.graph.nodes if n.op == "call_function"
    )
    inputs = []
    user = [n for n in ep.graph.nodes if n.op == "placeholder" and n.name in ep.graph_signature.user_inputs]
    labels = _dim_labels([getattr(n.meta.get("val"), "shape", []) for n in user])
    for n in user:
        val = n.meta.get("val")
        shape = list(getattr(val, "shape", []))
        entry: dict[str, Any] = {"name": n.name, "shape": [d if isinstance(d, int) else labels[str(d)] for d in shape],
                                 "dtype": str(getattr(val, "dtype", "")).removeprefix("torch.")}
        dynamic = {str(axis): f"{labels[str(d)]} ({_range(ep, d)})" for axis, d in enumerate(shape) if not isinstance(d, int)}
        if dynamic:
            entry["dynamic"] = dynamic
        inputs.append(entry)
    return {
        "format": "pt2", "path": str(path), "bytes": path.stat().st_size, "inputs": inputs,
        "outputs": list(ep.graph_signature.user_outputs),
        "nodes": sum(ops.values()), "ops": dict(ops.most_common()),
    }


# ----------------------------------------------------------------------------- debug: intermediates


def fx_graph_nodes(graph: Any) -> tuple[list[Any], list[Any], list[str]]:
    """An FX graph as :class:`~modelport.GraphNode` records, from each node's ``nn_module_stack`` metadata.

    Returns (fx nodes, graph nodes, graph output names). The innermost entry of ``nn_module_stack`` is the module
    that ran the op; nodes without it (inputs, weights, the output) carry no module.
    """
    from modelport.plugins.types import GraphNode

    fx_nodes = list(graph.nodes)
    out: list[GraphNode] = []
    graph_outputs: list[str] = []
    for n in fx_nodes:
        stack = n.meta.get("nn_module_stack") if n.op == "call_function" else None
        module = None
        if stack:
            path = list(stack.values())[-1][0]
            module = _clean_module_path(str(path))
        out.append(GraphNode(module, [a.name for a in n.all_input_nodes], [n.name]))
        if n.op == "output":
            graph_outputs = [a.name for a in n.all_input_nodes]
    return fx_nodes, out, graph_outputs


def _clean_module_path(path: str) -> str:
    """``L['self'].blocks[0].fc`` / ``blocks.0.fc`` → ``blocks.0.fc`` (strict and non-strict export spell it apart)."""
    import re

    path = re.sub(r"^L\['self'\]\.?", "", path)
    path = re.sub(r"\[(\d+)\]", r".\1", path)
    path = re.sub(r"\['([^']+)'\]", r".\1", path)
    return path.strip(".")


class Pt2Intermediates:
    """The ExportedProgram's graph run with ``torch.fx.Interpreter``, keeping the tensors at module boundaries.

    Module boundaries come from ``nn_module_stack`` on the graph's nodes (what torch.export records per op).
    """

    mode = "end-to-end"
    runtime = "torch.export (fx.Interpreter over ExportedProgram.module())"

    def __init__(self, path: Path, threads: int | None) -> None:
        import torch

        from modelport.commands.debug import module_boundaries

        if threads:
            torch.set_num_threads(int(threads))
        self.module = torch.export.load(str(path)).module()
        _fx, nodes, outs = fx_graph_nodes(self.module.graph)
        self.taps = module_boundaries(nodes, outs)
        self.unavailable: dict[str, str] = {}
        self.notes: list[str] = []

    def run(self, inputs: Mapping[str, Any], modules: Sequence[str], module_inputs: Any = None) -> dict[str, Any]:
        import torch

        from modelport.engine.outputs import to_numpy

        wanted: dict[str, list[str]] = {}
        for m in modules:
            if m in self.taps:
                wanted.setdefault(self.taps[m], []).append(m)  # a block and its last child can share a tensor
        found: dict[str, Any] = {}

        class _Keep(torch.fx.Interpreter):
            def run_node(self, n: Any) -> Any:
                result = super().run_node(n)
                if n.name in wanted and isinstance(result, torch.Tensor):
                    arr = to_numpy(result).copy()
                    for m in wanted[n.name]:
                        found[m] = arr
                return result

        args = [torch.from_numpy(v.copy() if not v.flags.writeable else v) for v in inputs.values()]
        with torch.no_grad():
            _Keep(self.module).run(*args)
        return found



class Pt2Format(FormatObject):
    """The ``pt2`` format object: the core calls it for pt2 only."""

    name = "pt2"

    def export(self, request: ExportRequest) -> Artifact:
        """torch.export the model (positionally, as it is traced) and save ``model.pt2``."""
        return export(self.positional(request))

    def load_runner(self, artifact: Artifact, options: Mapping[str, Any]) -> Any:
        """The program's module, loaded once (validation and ``modelport bench`` call it)."""
        return _Pt2Runner(artifact.path, artifact.input_names, options.get("threads"))

    def describe(self, artifact: Artifact, request: ExportRequest | None) -> dict[str, Any]:
        """How to load it, and whether it was exported in strict mode, under extra_metadata.pt2."""
        return {"extra_metadata": {"pt2": {"strict": artifact.details.get("strict"),
                                           "load": "torch.export.load(path).module()"}}}

    def inspect(self, path: Path, options: Mapping[str, Any]) -> dict[str, Any]:
        """``modelport inspect model.pt2``."""
        return inspect(Path(path))

    def load_intermediates(self, artifact: Artifact, options: Mapping[str, Any]) -> Any:
        """Module-boundary tensors for ``modelport debug`` (fx.Interpreter over the program)."""
        return Pt2Intermediates(artifact.path, options.get("threads"))

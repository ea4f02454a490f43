"""``modelport debug`` for TFLite: every tensor kept by the interpreter, mapped to modules through tensor names.

litert-torch names each tensor after the module stack of the op that made it, class-qualified
(``pkg.Net/pkg.Block_1/torch.nn.modules.linear.Linear_fc``), several locations joined by ``;`` when the converter
fused ops. The interpreter's ``experimental_preserve_all_tensors`` mode keeps every intermediate readable after a
run. A module whose ops were fused into a later op has no tensor of its own and is reported as such.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport import ConfigError, GraphNode

_WRAPPER = "ModelportTFLiteWrapper"
_BOUND = "ModelportBound"


def _split(component: str) -> list[tuple[str, str]]:
    """``torch.nn.modules.linear.Linear_fc`` → candidate (class name, attribute) pairs, one per ``_``."""
    out = []
    for i, ch in enumerate(component):
        if ch == "_" and 0 < i < len(component) - 1:
            head, attr = component[:i], component[i + 1:]
            out.append((head.rsplit(".", 1)[-1], attr))
    return out


def resolve(location: str, modules: Mapping[str, str]) -> str | None:
    """One ``/``-separated location → the PyTorch module path (``blocks.1.fc``), using the model's module table.

    Containers without a forward (``ModuleList``) are not in the stack, so ``Block_1`` under the root may be
    ``blocks.1``: each step takes the shallowest known descendant whose last name and class match.
    """
    parts = [p for p in location.split("/") if p]
    wrapped = bool(parts) and _WRAPPER in parts[0]
    parts = parts[1:]  # the root module
    while parts and _BOUND in parts[0]:  # the binding wrapper (inputs by name) around the user's model
        parts, wrapped = parts[1:], True
    if wrapped:
        parts = parts[1:]  # the user's model itself, held by a wrapper as ``model``
    path = ""
    for comp in parts:
        best: str | None = None
        for cls, attr in _split(comp):
            for cand, cand_cls in modules.items():
                if cand_cls != cls or cand.rsplit(".", 1)[-1] != attr:
                    continue
                if path and not cand.startswith(path + "."):
                    continue
                if best is None or cand.count(".") < best.count("."):
                    best = cand
        if best is None:
            return None
        path = best
    return path


def tensor_module(name: str, modules: Mapping[str, str]) -> str | None:
    """The module of a tensor: the last location in its (possibly fused) name that resolves."""
    locations = [p for p in name.split(";") if p and not p.isdigit()]
    for loc in reversed(locations):
        found = resolve(loc, modules)
        if found is not None:
            return found
    return None


class TFLiteIntermediates:
    """A flatbuffer run with every tensor preserved; module outputs read back by tensor index."""

    mode = "end-to-end"

    def __init__(self, path: Path, details: Mapping[str, Any], modules: Mapping[str, str],
                 threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter
        from modelport.commands.debug import module_boundaries

        from modelport_tflite.runtime import TFLiteRunner

        self.base = TFLiteRunner(path, details, threads)
        self.interpreter = Interpreter(model_path=str(path), num_threads=int(threads) if threads else None,
                                       experimental_preserve_all_tensors=True)
        self.base.interpreter = self.interpreter
        self.base._runner = self.interpreter.get_signature_runner(self.base.signature)
        names = {d["index"]: d["name"] for d in self.interpreter.get_tensor_details()}
        nodes: list[GraphNode] = []
        for op in self.interpreter._get_ops_details():
            if op.get("op_name") == "DELEGATE":
                continue
            outs = [int(i) for i in op["outputs"] if int(i) >= 0]
            module = tensor_module(names.get(outs[0], ""), modules) if outs else None
            if module is None and outs:  # a signature output is renamed; its op's weights keep the module name
                for i in op["inputs"]:
                    module = tensor_module(names.get(int(i), ""), modules) if int(i) >= 0 else None
                    if module is not None:
                        break
            nodes.append(GraphNode(module, [str(int(i)) for i in op["inputs"] if int(i) >= 0], [str(i) for i in outs]))
        outputs = [str(d["index"]) for d in self.base._runner.get_output_details().values()]
        self.taps = module_boundaries(nodes, outputs)
        mapped = {n.module for n in nodes if n.module}
        self.unavailable = {m: "no tensor of its own in the flatbuffer (the converter fused it into a later op)"
                            for m in modules if m not in mapped and m not in self.taps}
        self.notes: list[str] = []
        self.runtime = self.base.runtime + " (experimental_preserve_all_tensors)"

    def run(self, inputs: Mapping[str, Any], modules: Sequence[str], module_inputs: Any = None) -> dict[str, Any]:
        import numpy as np

        arrays: dict[str, Any] = {}
        for name in self.base.input_order:
            arr = np.asarray(inputs[name])
            if name in self.base.nhwc:
                arr = arr.transpose(0, 2, 3, 1)
            arrays[name] = np.ascontiguousarray(self.base._cast(name, arr))
        if not all(a.shape == self.base.shapes[n] for n, a in arrays.items()):
            want = ", ".join(f"{n}{list(s)}" for n, s in self.base.shapes.items())
            raise ConfigError(f"tflite: debug runs the flatbuffer once at its fixed input shapes ({want}); "
                              "pick an input set of that shape with --input-set")
        self.base._run(arrays)
        found = {}
        for m in modules:
            if m in self.taps:
                found[m] = np.array(self.interpreter.get_tensor(int(self.taps[m])))
        return found

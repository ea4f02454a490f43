"""``modelport debug`` for OpenVINO IR: module outputs found through friendly names, exposed with ``add_outputs``.

``openvino.convert_model`` names each operation after the PyTorch module that ran it
(``__module.blocks.0.fc/aten::linear/Add``), and the names survive ``save_model``. Each round reads the IR, adds
the requested module outputs as model outputs, compiles with the export's precision hint and runs once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport import GraphNode

_PARAMETER_TYPES = ("Parameter", "Constant", "Result")


def module_of(friendly_name: str, type_name: str) -> str | None:
    """``__module.blocks.0.fc/aten::linear/Add`` → ``blocks.0.fc``; ``aten::mul/Multiply`` → the model (``""``)."""
    if type_name in _PARAMETER_TYPES:
        return None
    head = friendly_name.split("/", 1)[0]
    if head.startswith("__module."):
        return head[len("__module."):]
    if "/" in friendly_name and friendly_name.split("/", 1)[0].startswith("aten::"):
        return ""
    return None


def _port_id(output: Any) -> str:
    return f"{output.get_node().get_friendly_name()}:{output.get_index()}"


def graph_nodes(model: Any) -> tuple[list[GraphNode], list[str], dict[str, Any]]:
    """The IR as GraphNode records in topological order, its result tensors, and port id → (op, index)."""
    nodes = []
    ports: dict[str, Any] = {}
    results: list[str] = []
    for op in model.get_ordered_ops():
        type_name = op.get_type_name()
        inputs = [_port_id(op.input_value(i)) for i in range(op.get_input_size())]
        outputs = []
        for i in range(op.get_output_size()):
            pid = f"{op.get_friendly_name()}:{i}"
            ports[pid] = (op, i)
            outputs.append(pid)
        if type_name == "Result":
            results.extend(inputs)
        nodes.append(GraphNode(module_of(op.get_friendly_name(), type_name), inputs, outputs))
    return nodes, results, ports


class OpenVINOIntermediates:
    """An IR that returns the tensors at module boundaries (one compile and run per round)."""

    mode = "end-to-end"

    def __init__(self, xml: Path, *, hint: str, device: str, threads: int | None) -> None:
        import openvino as ov
        from modelport.commands.debug import module_boundaries

        self.xml = Path(xml)
        self.core = ov.Core()
        self.config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint}
        if threads and device.upper().startswith("CPU"):
            self.config["INFERENCE_NUM_THREADS"] = int(threads)
        self.device = device
        nodes, results, _ports = graph_nodes(self.core.read_model(str(self.xml)))
        self.taps = module_boundaries(nodes, results)
        self.unavailable: dict[str, str] = {}
        self.notes: list[str] = []
        if not self.taps:
            self.notes.append("openvino: no operation is named after a PyTorch module (was the IR converted from "
                              "ONNX or another framework?)")
        self.runtime = f"openvino {ov.get_version().split('-')[0]} {device} {hint}"

    def run(self, inputs: Mapping[str, Any], modules: Sequence[str], module_inputs: Any = None) -> dict[str, Any]:
        import numpy as np

        model = self.core.read_model(str(self.xml))
        _nodes, _results, ports = graph_nodes(model)
        wanted = {self.taps[m] for m in modules if m in self.taps and self.taps[m] in ports}
        order = sorted(wanted)
        results = {_port_id(r.input_value(0)): j for j, r in enumerate(model.get_results())}
        tags = {pid: f"modelport_debug:{pid}" for pid in order if pid not in results}
        for pid, tag in tags.items():
            port = ports[pid][0].output(ports[pid][1])
            port.get_tensor().add_names({tag})
            model.add_outputs([port])
        compiled = self.core.compile_model(model, self.device, self.config)
        values = list(inputs.values())
        feed = {}
        for i, port in enumerate(compiled.inputs):
            names = port.get_names()
            value = next((inputs[n] for n in names if n in inputs), values[i])
            dtype = port.get_element_type()
            if dtype.is_static() and dtype.get_type_name() != "bf16":
                value = np.ascontiguousarray(value, dtype=dtype.to_dtype())
            feed[port] = value
        result = compiled.create_infer_request().infer(feed)
        by_id = {pid: np.array(result[compiled.output(tags[pid]) if pid in tags else compiled.outputs[results[pid]]])
                 for pid in order}
        return {m: by_id[self.taps[m]] for m in modules if self.taps.get(m) in by_id}

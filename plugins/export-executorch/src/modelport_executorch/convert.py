"""PyTorch → ExecuTorch: torch.export, ``to_edge_transform_and_lower`` (XNNPACK or portable), ``.pte``.

Two things about dynamic batches with executorch 1.5 and torch 2.13, both found on the bundled models:

* the edge dialect's operator dtype check (``exir/verification/arg_validator.py``) calls ``len()`` on the first
  tensor a list-returning op gives back (``split`` in attention), which guards the symbolic batch and pins it to
  the example size. With a dynamic axis the export skips that check (``_check_ir_validity=False``); the runtime
  validation checks the numbers instead.
* ExecuTorch plans memory for the largest shape, so a dynamic batch needs an upper bound (``max_batch``). While
  XNNPACK lowers a convolution, torch's fake convolution picks a kernel by batch size and guards ``batch < 16``,
  so a convolutional program accepts at most 15 per call. The program's real capacity is read back from the
  ``.pte`` and recorded; the runner splits a larger batch into calls of at most that size and says so.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from typing import Any

from modelport import Artifact, ConfigError, ExportFailed, ExportRequest

from modelport_executorch import FILE, FORMAT


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Keep library deprecations out of export.json's notes and prints off the CLI's stdout."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        for category in (DeprecationWarning, FutureWarning, ResourceWarning):
            warnings.filterwarnings("ignore", category=category)
        warnings.filterwarnings("ignore", message="This API is experimental")
        yield


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def delegation_summary(graph_module: Any) -> dict[str, Any]:
    """How much of the graph a backend took: node counts overall and per operator (executorch.devtools)."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(graph_module)
    by_op = {op: {"delegated": b.delegated, "non_delegated": b.non_delegated}
             for op, b in sorted(info.delegation_by_operator.items())}
    total = info.num_delegated_nodes + info.num_non_delegated_nodes
    return {
        "delegated_subgraphs": info.num_delegated_subgraphs,
        "delegated_nodes": info.num_delegated_nodes,
        "non_delegated_nodes": info.num_non_delegated_nodes,
        "delegated_fraction": round(info.num_delegated_nodes / total, 4) if total else 0.0,
        "by_operator": by_op,
    }


def export_executorch(request: ExportRequest) -> Artifact:
    """Lower ``request.model`` to ``model.pte`` and record delegation and the program's input capacity."""
    import importlib.metadata

    import torch

    backend = request.options.get("backend", "xnnpack")
    raw = request.options.get("max_batch")
    max_batch = 32 if raw is None else int(raw)
    if max_batch < 1:
        raise ConfigError(f"executorch: max_batch must be at least 1, got {max_batch}")
    spec = request.inputs
    if spec.dynamic_batch and spec.batch_size > max_batch:
        raise ConfigError(f"executorch: the example batch {spec.batch_size} is larger than max_batch={max_batch}")

    args = request.example_inputs
    if spec.dynamic_batch and spec.batch_size < 2 <= max_batch:
        args = request.make_inputs(batch=2)  # a batch of 1 lets torch.export specialize the batch axis
    with quiet():
        from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower

        partitioner: list[Any] = []
        if backend == "xnnpack":
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

            partitioner = [XnnpackPartitioner()]
        from modelport.plugins.converter_errors import converter_error, guard_log

        with guard_log() as guards:
            try:
                ep = torch.export.export(request.model, args, dynamic_shapes=request.torch_dynamic_shapes(max_batch),
                                         strict=False)
            except Exception as exc:
                raise converter_error("executorch: torch.export failed", exc, guards=guards) from exc
        try:
            edge = to_edge_transform_and_lower(ep, partitioner=partitioner,
                                               compile_config=EdgeCompileConfig(_check_ir_validity=not spec.has_dynamic))
            delegation = delegation_summary(edge.exported_program().graph_module)
            program = edge.to_executorch()
        except Exception as exc:
            raise ExportFailed(f"executorch: lowering to ExecuTorch failed: {type(exc).__name__}: "
                               f"{_first_line(exc)}"[:600]) from exc
        path = request.workdir / FILE
        path.write_bytes(program.buffer)

    from modelport_executorch.runtime import method_io

    inputs, outputs = method_io(path)
    if len(inputs) != len(spec.names) or len(outputs) != len(request.output_names):
        raise ExportFailed(f"executorch: the program takes {len(inputs)} inputs and returns {len(outputs)} outputs; "
                           f"the model has {len(spec.names)} and {len(request.output_names)}")
    named_in = dict(zip(spec.names, inputs, strict=True))
    named_out = dict(zip(request.output_names, outputs, strict=True))
    batch: dict[str, Any] = {"dynamic": spec.dynamic_batch}
    if spec.dynamic_batch:
        capacity = min(io_["shape"][0] for io_ in inputs if io_["shape"])
        batch.update(max_batch_option=max_batch, program_capacity=capacity)
        if capacity < max_batch:
            batch["runner"] = f"batches larger than {capacity} run in chunks of at most {capacity}"
            request.note(f"executorch: the program accepts at most {capacity} samples per call (max_batch={max_batch}; "
                         "lowering narrowed the batch range); modelport's runner splits larger batches into chunks")
    else:
        batch["size"] = spec.batch_size
    if spec.has_dynamic:
        request.note("executorch: exported with the edge IR dtype check off (_check_ir_validity=False): with it on, "
                     "executorch 1.5 pins a dynamic batch to the example size; runtime validation checks the numbers")
    if backend == "xnnpack":
        request.note(f"executorch: XNNPACK took {delegation['delegated_nodes']} of "
                     f"{delegation['delegated_nodes'] + delegation['non_delegated_nodes']} graph nodes "
                     f"in {delegation['delegated_subgraphs']} subgraph(s)")
    version = importlib.metadata.version("executorch")
    return Artifact(
        format=FORMAT, path=path, files=[FILE], precision="fp32",
        details={
            "executorch": version,
            "backend": backend,
            "partitioner": "XnnpackPartitioner" if backend == "xnnpack" else None,
            "edge_ir_validity_check": not spec.has_dynamic,
            "delegation": delegation,
            "input_order": spec.names,
            "output_order": list(request.output_names),
            "inputs": named_in,
            "outputs": named_out,
            "batch": batch,
            "torch": torch.__version__,
        },
    )

"""PyTorch → LiteRT flatbuffer with litert-torch: wrap the model for named IO and layout, convert, quantize.

litert-torch 0.10 lowers through a JAX bridge that cannot carry symbolic dimensions (its own test
``_convert/test/test_compiled_model.py`` says so: "a `dynamic_shapes` conversion cannot be built here"), so the
flatbuffer always has fixed shapes. A declared dynamic batch is converted at batch 1 and the runner runs larger
batches one sample at a time; the record, the metadata and the README say so.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from collections.abc import Iterator
from typing import Any

from modelport import Artifact, ConfigError, ExportFailed, ExportRequest

from modelport_tflite import FILE, FIX, FORMAT, PRECISION

SIGNATURE = "serving_default"


def artifact_names(names: list[str]) -> list[str]:
    """Output names as the flatbuffer's signature holds them: ``output.0`` → ``output_0``, unique."""
    out: list[str] = []
    for name in names:
        safe = re.sub(r"[^A-Za-z0-9_]", "_", name) or "output"
        base, i = safe, 1
        while safe in out:
            safe, i = f"{base}_{i}", i + 1
        out.append(safe)
    return out


def nhwc_inputs(request: ExportRequest) -> list[str]:
    """The inputs that ``layout=nhwc`` turns channels-last: every 4-D floating-point input."""
    return [t.name for t in request.inputs.tensors if len(t.shape) == 4 and t.is_float]


def _wrapper(model: Any, names: list[str], nhwc: list[str], out_names: list[str]) -> Any:
    """A module whose keyword inputs name the flatbuffer's inputs and whose dict output names its outputs."""
    import torch
    from modelport.engine.outputs import flatten_outputs

    class ModelportTFLiteWrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
            args = [inputs[n].permute(0, 3, 1, 2) if n in nhwc else inputs[n] for n in names]
            flat = flatten_outputs(self.model(*args))
            if len(flat) != len(out_names):
                raise RuntimeError(f"the model returned {len(flat)} outputs, expected {len(out_names)}")
            return {key: t for key, (_, t) in zip(out_names, flat, strict=True)}

    return ModelportTFLiteWrapper().eval()


@contextlib.contextmanager
def _quiet_converter() -> Iterator[None]:
    """litert-torch prints rich progress and ai-edge-quantizer prints sizes on stdout; keep ``--json`` clean.

    Library deprecation warnings are dropped too, so export.json's notes hold what matters to the user.
    """
    old = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            for category in (DeprecationWarning, FutureWarning, ResourceWarning):
                warnings.filterwarnings("ignore", category=category)
            yield
    finally:
        if old is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = old


def _quant_config(quantize: str) -> Any:
    if quantize == "none":
        return None
    from litert_torch.generative.quantize import quant_recipes

    if quantize == "dynamic_int8":
        return quant_recipes.full_dynamic_recipe()
    return quant_recipes.full_fp16_recipe()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def mixed_outputs(request: ExportRequest, batch: int = 3, atol: float = 1e-4, rtol: float = 1e-3) -> list[str]:
    """Outputs for which a batch is not the stack of its samples run one at a time (CLIP's [B, B] logits).

    The runner emulates a dynamic batch by looping over samples; that is only right when each output row depends
    on its own sample alone. Returns one line per output that breaks it (empty when emulation is exact).
    """
    import torch
    from modelport.engine.outputs import flatten_outputs

    args = request.make_inputs(batch=batch, seed=11)
    with torch.no_grad():
        whole = flatten_outputs(request.model(*args))
        singles = [flatten_outputs(request.model(*[a[i:i + 1] for a in args])) for i in range(batch)]
    problems = []
    for j, (name, full) in enumerate(whole):
        try:
            stacked = torch.cat([s[j][1] for s in singles], dim=0)
        except (RuntimeError, IndexError):
            problems.append(f"{name}: one sample at a time it cannot be stacked into the batch's shape "
                            f"{list(full.shape)}")
            continue
        if stacked.shape != full.shape:
            problems.append(f"{name}: shape {list(full.shape)} at batch {batch}, but {list(stacked.shape)} when its "
                            "samples run one at a time")
        elif (full.is_floating_point() and not torch.allclose(stacked.float(), full.float(), atol=atol, rtol=rtol)) or (not full.is_floating_point() and not torch.equal(stacked, full)):
            problems.append(f"{name}: each row depends on the other samples of the batch")
    return problems


def export_tflite(request: ExportRequest) -> Artifact:
    """Convert ``request.model`` to ``model.tflite`` and describe what the flatbuffer really expects."""
    import importlib.metadata

    import torch

    layout = request.options.get("layout", "nchw")
    quantize = request.options.get("quantize", "none")
    spec = request.inputs
    names = spec.names
    nhwc = nhwc_inputs(request) if layout == "nhwc" else []
    if layout == "nhwc" and not nhwc:
        raise ConfigError("tflite: layout=nhwc needs a 4-D floating-point (N, C, H, W) input; this model has none")
    out_names = artifact_names(request.output_names)

    # fixed shapes only (see the module docstring): a dynamic batch converts at batch 1
    per_sample = spec.dynamic_batch
    if per_sample:
        mixed = mixed_outputs(request)
        if mixed:
            raise ExportFailed(
                "tflite: the flatbuffer holds batch 1 and a dynamic batch is run one sample at a time, which is wrong "
                f"for this model because its outputs mix samples ({'; '.join(mixed)}); export a fixed batch "
                "instead (drop --dynamic-batch and give --batch N)"[:800])
    example = request.make_inputs(batch=1) if per_sample and spec.batch_size != 1 else request.example_inputs
    fixed_other = {t.name: {str(a): lbl for a, lbl in t.dynamic.items() if a != 0} for t in spec.tensors}
    fixed_other = {k: v for k, v in fixed_other.items() if v}

    sample_kwargs = {}
    for name, tensor in zip(names, example, strict=True):
        sample_kwargs[name] = tensor.permute(0, 2, 3, 1).contiguous() if name in nhwc else tensor

    with _quiet_converter():
        try:
            import litert_torch
        except ImportError as exc:  # pragma: no cover - availability reports this first
            raise ExportFailed(f"tflite: litert-torch is not importable ({_first_line(exc)}); {FIX}") from exc
        try:
            edge = litert_torch.convert(_wrapper(request.model, names, nhwc, out_names), sample_kwargs=sample_kwargs,
                                        quant_config=_quant_config(quantize))
            path = request.workdir / FILE
            edge.export(str(path))
        except Exception as exc:
            raise ExportFailed(f"tflite: litert-torch could not convert the model: {type(exc).__name__}: "
                               f"{_first_line(exc)}"[:600]) from exc

    from modelport_tflite.runtime import signature_io

    inputs, outputs = signature_io(path)
    missing = [n for n in names if n not in inputs]
    if missing or [o for o in out_names if o not in outputs]:
        raise ExportFailed(f"tflite: the flatbuffer's signature {sorted(inputs)} -> {sorted(outputs)} does not name "
                           f"the model's inputs {names} / outputs {out_names}")
    input_dtypes = {n: inputs[n]["dtype"] for n in names}
    changed = {n: d for n, d in input_dtypes.items() if d != spec[n].dtype}
    if changed:
        request.note("tflite: " + ", ".join(f"{n} is {d} in the flatbuffer (was {spec[n].dtype})" for n, d in changed.items())
                     + " — litert-torch downcasts 64-bit tensors; feed the flatbuffer's dtypes")
    batch: dict[str, Any] = {"flatbuffer": "fixed", "size": int(example[0].shape[0]) if example[0].dim() else 1}
    if per_sample:
        batch.update(dynamic_requested=True, runner="one sample at a time",
                     why="litert-torch 0.10 cannot convert a dynamic batch dimension",
                     emulation_check="batch 3 equals its samples run one at a time, for every output")
        request.note("tflite: the flatbuffer has a fixed batch of 1 (litert-torch 0.10 cannot convert dynamic "
                     "dimensions); modelport's runner runs larger batches one sample at a time")
    if fixed_other:
        batch["fixed_dynamic_axes"] = fixed_other
        request.note("tflite: dynamic axes other than the batch are fixed at their example size in the flatbuffer: "
                     + ", ".join(f"{n}:{','.join(a)}" for n, a in fixed_other.items()))

    versions = {d: importlib.metadata.version(d) for d in ("litert-torch", "ai-edge-litert")}
    details: dict[str, Any] = {
        "converter": f"litert-torch {versions['litert-torch']}",
        "runtime": f"ai-edge-litert {versions['ai-edge-litert']}",
        "layout": layout,
        "nhwc_inputs": nhwc,
        "quantize": quantize,
        "signature": SIGNATURE,
        "input_order": names,
        "output_order": out_names,
        "inputs": {n: inputs[n] for n in names},
        "outputs": {o: outputs[o] for o in out_names},
        "batch": batch,
        "torch": torch.__version__,
    }
    if quantize != "none":
        version = importlib.metadata.version("ai-edge-quantizer")
        details["quantization"] = {
            "method": quantize,
            "weights": "int8 per channel" if quantize == "dynamic_int8" else "float16",
            "activations": "float32, quantized to int8 at run time" if quantize == "dynamic_int8" else "float32",
            "tool": f"ai-edge-quantizer {version} (litert-torch quant_recipes)",
        }
        details["validation_hint"] = (f"quantize={quantize} changes the weights; compare with -o quantize=none, or "
                                      "loosen the tolerance with --atol/--rtol if the drift is acceptable")
    return Artifact(
        format=FORMAT, path=path, files=[FILE], precision=PRECISION[quantize], details=details,
        input_names=list(names), output_names=out_names, input_dtypes=input_dtypes,
    )


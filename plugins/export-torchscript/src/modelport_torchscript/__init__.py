"""modelport plugin: TorchScript archives (``model.torchscript``) from ``torch.jit.trace`` or ``torch.jit.script``.

Format ``torchscript``. Options: ``mode=trace|script`` (trace by default, under ``torch.no_grad()``),
``optimize_for_inference`` (off by default). The archive is run back with ``torch.jit.load`` for validation
and benchmarks; outputs are flattened exactly as the core flattens the PyTorch model's (dicts become named
outputs), so the comparison lines up output by output.

torch.jit warns that it is deprecated (torch 2.13): the warning is recorded once in export.json instead of on
every trace, script, save and load. Tracing bakes value-dependent Python control flow into the graph; the
core's validation on several input sets turns that into a validation failure (exit 2), and the message then
points at ``-o mode=script`` and the pt2 / onnx formats.

This module only declares the format; the format object (``format.py``: ``TorchScriptFormat``) loads on first
use and imports torch inside its methods, so ``modelport formats`` stays fast.
"""

from __future__ import annotations

from typing import Any

from modelport import FormatSpec, OptionSpec, hookimpl

FORMAT = "torchscript"
FILE = "model.torchscript"
EXTRA_FILE = "modelport.json"
SUFFIXES = (".torchscript", ".ts", ".jit")
MODES = ("trace", "script")

DEPRECATION_NOTE = (
    "torch.jit is deprecated in torch {torch} (torch.jit.trace/script/save/load warn DeprecationWarning); "
    "this archive loads with torch.jit.load in this torch — plan a move to the pt2 (torch.export) or onnx format"
)
TRACE_HINT = (
    "torch.jit.trace records only the control flow taken for the example input (Python if/for on tensor values "
    "is baked in); try -o mode=script, or the pt2 / onnx formats"
)
# for model cards: runs {path} on a numpy dict `inputs`
USAGE = ('import torch\n\nmodel = torch.jit.load("{path}").eval()\n'
         "outputs = model(*[torch.from_numpy(v) for v in inputs.values()])")


@hookimpl
def register_formats(register: Any) -> None:
    """Declare the ``torchscript`` format; torch is the core's own dependency, so it is always available."""
    register(FormatSpec(
        name=FORMAT,
        display_name="TorchScript",
        files=(FILE,),
        options=(
            OptionSpec("mode", "choice", "trace", "torch.jit.trace (records one run) or torch.jit.script "
                       "(compiles Python control flow)", choices=MODES),
            OptionSpec("optimize_for_inference", "bool", False,
                       "freeze the module and apply torch.jit.optimize_for_inference (conv-bn folding...)"),
            OptionSpec("quantize", "choice", "none", "dynamic: int8 weights for every nn.Linear "
                       "(torch.ao.quantization.quantize_dynamic, activations quantized at run time); validated "
                       "with int8 tolerances", choices=("none", "dynamic")),
        ),
        config_aliases={"optimize": "optimize_for_inference"},  # the multi-framework export convention's key
        description="TorchScript archive; load with torch.jit.load(path) (torch.jit is deprecated in torch 2.13)",
        implementation="modelport_torchscript.format:TorchScriptFormat",
        suffixes=(*SUFFIXES, ".pt", ".pth"),  # inspect: .pt/.pth only when the zip holds TorchScript code
        usage=USAGE,
        runtime_library="torch",
        hub_library="pytorch",
    ))

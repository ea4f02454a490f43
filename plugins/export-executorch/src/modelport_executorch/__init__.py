"""modelport format ``executorch``: an ExecuTorch program (``model.pte``), XNNPACK-delegated by default.

torch.export → ``to_edge_transform_and_lower`` (XNNPACK partitioner, or none for the portable kernels) →
``.pte``, validated by running it in ``executorch.runtime`` on CPU. The metadata records how many graph nodes
XNNPACK took. This module only declares the format; the format object (``format.py``: ``ExecuTorchFormat``)
loads on first use, and executorch (several seconds to import) inside its methods only.
"""

from __future__ import annotations

from typing import Any

from modelport import (
    FormatSpec,
    OptionSpec,
    hookimpl,
    install_hint,
    requires,
)

FORMAT = "executorch"
FILE = "model.pte"
FIX = install_hint("modelport-export-executorch")
# for model cards: runs {path} on a numpy dict `inputs`
USAGE = ("import torch\nfrom executorch.runtime import Runtime\n\n"
         'method = Runtime.get().load_program("{path}").load_method("forward")\n'
         "outputs = method.execute([torch.from_numpy(v) for v in inputs.values()])")
BACKENDS = ("xnnpack", "portable")


@hookimpl
def register_formats(register: Any) -> None:
    """Declare ``executorch``; its format object loads on first use."""
    register(FormatSpec(
        name=FORMAT,
        display_name="ExecuTorch",
        files=(FILE,),
        options=(
            OptionSpec("backend", "choice", "xnnpack", "xnnpack: delegate what XNNPACK supports (fast CPU kernels); "
                       "portable: ExecuTorch's portable kernels only", choices=BACKENDS),
            OptionSpec("max_batch", "int", 32, "upper bound of a dynamic batch (--dynamic-batch): ExecuTorch plans "
                       "memory for the largest batch"),
        ),
        availability=requires("executorch", fix=FIX),
        description="ExecuTorch .pte program; validated in executorch.runtime on CPU",
        config_aliases={"delegate": "backend"},
        implementation="modelport_executorch.format:ExecuTorchFormat",
        suffixes=(".pte",),
        usage=USAGE,
        runtime_library="executorch",
        hub_library="executorch",
    ))

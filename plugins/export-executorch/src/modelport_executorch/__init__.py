"""modelport format ``executorch``: an ExecuTorch program (``model.pte``), XNNPACK-delegated by default.

torch.export → ``to_edge_transform_and_lower`` (XNNPACK partitioner, or none for the portable kernels) →
``.pte``, validated by running it in ``executorch.runtime`` on CPU. The metadata records how many graph nodes
XNNPACK took. executorch (several seconds to import) loads inside hook bodies only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport import (
    Artifact,
    ExportRequest,
    FormatSpec,
    OptionSpec,
    ValidationFailed,
    ValidationRun,
    hookimpl,
    install_hint,
    requires,
)

FORMAT = "executorch"
FILE = "model.pte"
FIX = install_hint("modelport-export-executorch")
BACKENDS = ("xnnpack", "portable")


@hookimpl
def register_formats(register: Any) -> None:
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
    ))


@hookimpl
def export(request: ExportRequest) -> Artifact | None:
    if request.format != FORMAT:
        return None
    from modelport_executorch.convert import export_executorch

    return export_executorch(request)


@hookimpl
def load_runner(artifact: Artifact, options: Mapping[str, Any]) -> Any:
    if artifact.format != FORMAT:
        return None
    from modelport_executorch.runtime import ExecuTorchRunner

    return ExecuTorchRunner(artifact.path, artifact.details, options.get("threads"))


@hookimpl
def load_intermediates(artifact: Artifact, options: Mapping[str, Any]) -> Any:
    """Per-module sub-programs for ``modelport debug`` (the .pte itself keeps no module boundaries)."""
    if artifact.format != FORMAT:
        return None
    from modelport_executorch.intermediates import ExecuTorchSubprograms

    return ExecuTorchSubprograms(artifact, options.get("model"), options.get("modules") or {})


@hookimpl
def validate(artifact: Artifact, inputs: Sequence[Mapping[str, Any]]) -> ValidationRun | None:
    """Run every input set in executorch.runtime and record the program's planned capacity and delegation."""
    if artifact.format != FORMAT:
        return None
    from modelport_executorch.runtime import ExecuTorchRunner

    runner = ExecuTorchRunner(artifact.path, artifact.details, artifact.options.get("threads"))
    try:
        outputs = [list(runner(dict(s))) for s in inputs]
    except (ValueError, RuntimeError) as exc:
        raise ValidationFailed(f"executorch: the program failed to run: {exc}"[:800]) from exc
    return ValidationRun(outputs=outputs, checks=runner.checks(), runtime=runner.runtime)


@hookimpl
def describe_metadata(artifact: Artifact, request: ExportRequest | None) -> dict[str, Any] | None:
    if artifact.format != FORMAT:
        return None
    d = artifact.details
    return {"extra_metadata": {"executorch": {
        "executorch_version": d.get("executorch"),
        "backend": d.get("backend"),
        "delegation": d.get("delegation"),
        "inputs": d.get("inputs"),
        "outputs": d.get("outputs"),
        "batch": d.get("batch"),
    }}}


@hookimpl
def inspect_artifact(path: Path, options: Mapping[str, Any]) -> dict[str, Any] | None:
    if path.suffix != ".pte" or not path.is_file():
        return None
    from modelport_executorch.runtime import describe_program

    return describe_program(path)

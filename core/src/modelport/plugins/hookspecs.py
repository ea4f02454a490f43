"""The hooks a modelport plugin implements — this module is the plugin author's reference.

A plugin is a module (or object) with functions decorated by ``@modelport.hookimpl`` whose names are
the hooks below. It is found through the ``modelport`` entry-point group::

    [project.entry-points.modelport]
    onnx = "modelport_onnx"

Rules every plugin follows:

* Import nothing heavy (torch, onnx, tensorflow...) at module level: import it inside hook bodies,
  so ``modelport formats`` stays fast with every plugin installed.
* ``firstresult`` hooks return ``None`` for requests that are not theirs (another format, scheme...).
* Raise :class:`modelport.ExportFailed` / :class:`modelport.ConfigError` with one clear line;
  any other exception is reported with the plugin's name and version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from modelport.plugins.types import (
    Artifact,
    ExportRequest,
    FormatSpec,
    IntermediateRunner,
    ModelEntry,
    PublisherSpec,
    PublishResult,
    PullResult,
    Runner,
    Target,
    ValidationRun,
)

if TYPE_CHECKING:  # sources imports the engine (pipeline, plugins), which imports these specs
    from modelport.models.sources import SourceSpec

NAME = "modelport"

hookspec = pluggy.HookspecMarker(NAME)
hookimpl = pluggy.HookimplMarker(NAME)


# ----------------------------------------------------------------------------- discovery


@hookspec
def register_formats(register: Callable[[FormatSpec], None]) -> None:
    """Declare the formats this plugin exports, by calling ``register(FormatSpec(...))`` once per format.

    All implementations are called. Two plugins registering the same format name is an error that
    names both. The spec's ``availability`` must be cheap: it is called by ``modelport formats``.
    """


@hookspec
def register_publishers(register: Callable[[PublisherSpec], None]) -> None:
    """Declare publish targets by URL scheme, by calling ``register(PublisherSpec(...))``.

    All implementations are called. Two plugins registering the same scheme is an error.
    """


@hookspec
def register_sources(register: Callable[[SourceSpec], None]) -> None:
    """Declare model sources — reference prefixes such as ``hf:`` — by calling ``register(SourceSpec(...))``.

    All implementations are called; two plugins registering the same name is an error that names both.
    ``modelport export NAME:REF`` calls the spec's ``resolve(SourceRequest)``, which returns a
    :class:`modelport.ResolvedModel`: the module plus what the source knows (inputs bound to the forward's
    parameters by name, task, class names, preprocessing, real example inputs, components). The built-in
    references (``file.py:factory``, ``pkg.mod:factory``, ``.pt2``, TorchScript) are sources registered
    the same way by ``modelport.builtin.sources``. See :mod:`modelport.models.sources`.
    """


# ----------------------------------------------------------------------------- export


@hookspec(firstresult=True)
def export(request: ExportRequest) -> Artifact | None:
    """Write ``request.model`` in ``request.format`` into ``request.workdir``.

    The first non-None result wins: return None when ``request.format`` is not one of yours.

    :param request: the model (eval mode), example inputs, parsed options, the workdir to write in.
    :returns: an :class:`Artifact` naming the files written (relative to the workdir).
    :raises modelport.ExportFailed: the converter refused the model (one line: what and why).
    """


@hookspec(firstresult=True)
def load_runner(artifact: Artifact, options: Mapping[str, Any]) -> Runner | None:
    """Load an artifact once and return a runner: ``runner({name: ndarray}) -> [ndarray, ...]``.

    The first non-None result wins: return None for formats that are not yours. Validation calls the
    runner on a few inputs, ``bench`` thousands of times — session creation is never inside a timing.
    ``options`` holds run settings: ``threads`` (int or None), ``device``.
    Outputs come back flattened in the model's output order, as numpy arrays.
    """


@hookspec(firstresult=True)
def validate(artifact: Artifact, inputs: Sequence[Mapping[str, Any]]) -> ValidationRun | None:
    """Run ``artifact`` in its own runtime on each input set and return the outputs plus checks.

    The first non-None result wins. When every implementation returns None, the core loads the
    artifact through ``load_runner`` and calls the runner on each input set — so most plugins need
    only ``load_runner``. Implement this hook for structural checks (``onnx.checker``) or when the
    artifact cannot run here — return ``ValidationRun(outputs=None, skipped="why")``.
    The core compares outputs with PyTorch's; plugins never implement the comparison.
    """


@hookspec
def describe_metadata(artifact: Artifact, request: ExportRequest | None) -> dict[str, Any] | None:
    """Contribute fields to metadata.json (opset, runtime versions, IO names...).

    All implementations are called; their dicts are merged in plugin order. Keys that are not part
    of the metadata schema go under ``extra_metadata``. Return None when the artifact is not yours.
    ``request`` is None when metadata is described again for an existing export.
    """


@hookspec(firstresult=True)
def inspect_artifact(path: Path, options: Mapping[str, Any]) -> dict[str, Any] | None:
    """Describe an artifact file (inputs, outputs, ops...) for ``modelport inspect``.

    The first non-None result wins: return None for files that are not yours. A format that keeps PyTorch module
    paths answers ``options``: ``by_module``/``module`` (PREFIX) with ``modules`` (nodes grouped by module), ``nodes``
    with one row per node (module, class, node, op, inferred), ``check`` with ``hierarchy_check`` and ``tree`` with
    ``module_tree`` (module, class, parent, nodes) — ``inspect --format/--check/--graphml`` render them
    (:mod:`modelport.commands.module_view`).
    """


# ----------------------------------------------------------------------------- debug


@hookspec(firstresult=True)
def load_intermediates(artifact: Artifact, options: Mapping[str, Any]) -> IntermediateRunner | None:
    """Load an artifact so that it can return the tensors at PyTorch module boundaries, for ``modelport debug``.

    The first non-None result wins: return None for formats that are not yours. The plugin only exposes tensors;
    the core picks which modules to ask for (a bounded set per run, so large models never expose every tensor at
    once), runs PyTorch with hooks, compares and names the first module over tolerance.
    ``options`` holds ``threads``, ``model`` (the PyTorch ``nn.Module``, for formats that rebuild a module's
    sub-program) and ``modules`` (PyTorch module path → class name, in execution order, for formats whose tensor
    names need resolving). :func:`modelport.commands.debug.module_boundaries` maps a graph whose nodes carry module paths
    to ``taps``. Raise :class:`modelport.ConfigError` with one line when the artifact cannot run here.
    """


# ----------------------------------------------------------------------------- publish


@hookspec(firstresult=True)
def publish(export_dir: Path, target: Target, options: Mapping[str, Any]) -> PublishResult | None:
    """Upload an export directory (or several, see ``options['export_dirs']``) to ``target``.

    The first non-None result wins: return None for schemes that are not yours. ``options`` holds the
    parsed publisher options plus ``dry_run`` (stage into ``options['stage_dir']``, touch nothing
    remote) and ``force``. Never log or write a token.
    """


@hookspec(firstresult=True)
def pull(target: Target, dest: Path, options: Mapping[str, Any]) -> PullResult | None:
    """Download a published export into ``dest`` (an empty temporary folder).

    The first non-None result wins. The core verifies every file's sha256 against metadata.json
    afterwards and deletes the download on mismatch.
    """


@hookspec(firstresult=True)
def list_models(target: Target, options: Mapping[str, Any]) -> list[ModelEntry] | None:
    """List the models published at ``target`` — a registry folder, an owner, a repository — for ``modelport list``.

    The first non-None result wins: return None for schemes that are not yours (declare ``can_list=True`` in
    your PublisherSpec). Each :class:`ModelEntry` is one model version with its exports' metadata.json as
    published (read it as data; never execute anything from it) and a ``pull_target`` per export that your
    ``pull`` accepts. ``options`` holds the parsed publisher options plus ``name`` and ``version`` (either may be
    None): filters that let you fetch less; the core filters the result again. Never log or return a token.
    """


# ----------------------------------------------------------------------------- commands


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the ``modelport`` command line (``cli`` is its click group), as llm and datasette do.

    All implementations are called once, the first time the CLI looks up a command it does not know or
    lists its commands. Use it for commands with dependencies of their own (``modelport serve`` comes
    from ``modelport-serve``): define them with ``@cli.command()`` and import heavy modules inside the
    command body, so ``modelport --help`` stays fast. A plugin whose implementation raises, or that
    replaces a core command, is shown as broken by ``modelport plugins`` and its commands are dropped.
    """

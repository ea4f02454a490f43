"""Model sources: turn a model reference (``SOURCE:REF``) into a module plus what is known about it.

A source is registered by a plugin through the ``register_sources(register)`` hook, exactly as formats
are. ``modelport export hf:./my-bert -f onnx`` asks the ``hf`` source (distribution
``modelport-source-hf``) to resolve ``./my-bert``; the source returns a :class:`ResolvedModel` — the
``nn.Module`` and, when it knows them, its inputs (names bound to the forward's parameters, dtypes, dynamic
axes), task, class names, preprocessing and real example inputs — so the user gives no ``--input`` flags.

The references modelport always understood are built-in sources, registered through the same hook
(``modelport.builtin.sources``): ``factory`` (``pkg.mod:factory`` / ``path/to/file.py:factory``),
``pt2``, ``torchscript`` and ``pickle``. An unprefixed reference goes to the first built-in source whose
``claims`` accepts it; a reference may also name its source explicitly (``pt2:model.pt2``).

A model that deploys as several artifacts (an encoder-decoder with a KV cache: ``encoder``, ``decoder``,
``decoder_with_past``) resolves to a ResolvedModel whose ``components`` each export into their own folder.

Nothing here imports torch: sources import their heavy libraries inside ``resolve``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import ConfigError
from modelport.plugins.types import Availability

if TYPE_CHECKING:  # pragma: no cover
    from modelport.engine.inputs import InputSpec
    from modelport.engine.pipeline import ExportResult
    from modelport.plugins.host import PluginHost

_SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_\-]+$")  # two characters at least: ``C:\model.pt2`` is a path


@dataclass
class SourceRequest:
    """What the user asked a source to load.

    :param reference: the reference without the ``SOURCE:`` prefix (``./my-bert``, ``org/model``).
    :param raw: the reference as typed (``hf:./my-bert``).
    :param task: ``--task`` when given; a source may infer it and should say how in ``ResolvedModel.source``.
    :param trust_code: ``--trust-code``: the user allows code shipped with the model to run.
    :param input_text: ``--input-text``: real text a text model's example/validation inputs are tokenized from.
    :param batch: ``--batch``: the example batch size the inputs should have.
    :param options: anything else the CLI or API caller passed for the source (``model_kwargs``...).
    """

    reference: str
    raw: str
    task: str | None = None
    trust_code: bool = False
    input_text: str | None = None
    batch: int | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    checkpoint_prefix: str | None = None
    strict: bool = True
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResolvedModel:
    """A loaded model and what its source knows about it; every field but ``module`` is optional.

    :param module: the ``torch.nn.Module`` to export (eval mode). Its forward's parameter names are the
        input names in ``inputs``: inputs are bound to the forward by name.
    :param source: facts for the export record (``reference``, ``kind``, revision, inferred task...).
        Paths and names only — never file contents or tokens.
    :param inputs: the input spec (names, example shapes, dtypes, dynamic axes, integer ranges).
    :param input_sets: real example inputs (``{name: ndarray}`` per set, at the spec's batch) used first for
        export and validation — tokenized text, a chain of decoding steps.
    :param task / class_names / preprocessing / postprocessing / task_extras: for metadata.json.
    :param components: the artifacts this model deploys as, name → ResolvedModel (``encoder``,
        ``decoder_with_past``); when set, ``module`` is not exported itself.
    """

    module: Any
    source: dict[str, Any] = field(default_factory=dict)
    inputs: InputSpec | None = None
    input_sets: list[dict[str, Any]] | None = None
    task: str | None = None
    model_name: str | None = None
    class_names: list[str] | None = None
    preprocessing: dict[str, Any] | None = None
    postprocessing: dict[str, Any] | None = None
    task_extras: dict[str, Any] | None = None
    components: dict[str, ResolvedModel] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceSpec:
    """What a plugin declares about a model source in ``register_sources``.

    :param name: the reference prefix: ``hf`` serves ``hf:REF``. Lower case, two characters at least.
    :param display_name: human name (``Hugging Face transformers``).
    :param resolve: ``resolve(SourceRequest) -> ResolvedModel``; raise ConfigError / ModelLoadError with
        one line. Import heavy libraries inside it.
    :param availability: a cheap check (``modelport.requires("transformers")``), never importing them.
    :param claims: for built-in sources only: whether an unprefixed reference is theirs.
    :param description: one line for ``modelport sources``-style listings and the docs.
    """

    name: str
    display_name: str
    resolve: Callable[[SourceRequest], ResolvedModel]
    availability: Callable[[], Availability] = Availability.ok
    claims: Callable[[str], bool] | None = None
    description: str = ""
    examples: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _SOURCE_NAME.match(self.name):
            raise ValueError(f"source name {self.name!r}: lower-case letters, digits, - or _, two characters at least")


def split_reference(ref: str, sources: Mapping[str, Any]) -> tuple[str | None, str]:
    """``(source name, rest)`` when ``ref`` starts with a registered ``NAME:``, else ``(None, ref)``.

    A registered prefix wins over a Python module of the same name (``hf:x`` is the hf source even if a
    module ``hf`` exists); a file or folder of that exact name on disk wins over both.
    """
    name, sep, rest = ref.partition(":")
    if sep and name in sources and rest and not Path(ref).exists():
        return name, rest
    return None, ref


def find_source(host: PluginHost, ref: str) -> tuple[SourceSpec, str]:
    """The source that serves ``ref`` and the reference it gets, or ConfigError (exit 3) naming the choices."""
    sources = host.sources
    name, rest = split_reference(ref, sources)
    if name is not None:
        spec: SourceSpec = sources[name][0]
        avail = host.availability_of(spec.availability)
        if not avail.export:
            fix = f" ({avail.fix})" if avail.fix else ""
            raise ConfigError(f"model source {name!r} is unavailable: {avail.reason}{fix}")
        return spec, rest
    prefix, sep, _ = ref.partition(":")
    if sep and _SOURCE_NAME.match(prefix) and not Path(ref).exists():
        from modelport.plugins.catalog import CATALOG

        entry = next((e for e in CATALOG if e.kind == "source" and e.name == prefix), None)
        if entry is not None:
            raise ConfigError(f"model source {prefix!r} is not installed: {entry.install}")
    for spec, _owner in sources.values():
        if spec.claims is not None and spec.claims(ref):
            return spec, ref
    known = ", ".join(f"{n}:" for n in sorted(sources) if sources[n][0].claims is None)
    raise ConfigError(
        f"model {ref}: not a .pt2 / TorchScript file, module:factory or file.py:factory"
        + (f", and no source prefix matches (installed: {known})" if known else "")
    )


def resolve(ref: str, *, host: PluginHost | None = None, **request: Any) -> ResolvedModel:
    """Load the model named by ``ref`` through its source (``hf:./bert``, ``models.py:build``, ``net.pt2``).

    Keywords are :class:`SourceRequest`'s fields past ``raw``: ``task``, ``trust_code``, ``input_text``, ``batch``,
    ``model_kwargs``, ``checkpoint``, ``checkpoint_prefix``, ``strict``, ``options``.
    """
    from modelport.errors import ModelportError, PluginContractError
    from modelport.plugins.host import get_plugin_manager

    _check_request_keywords(request)
    host = host or get_plugin_manager()
    spec, rest = find_source(host, ref)
    given = {**request, "task": request.get("task") or None, "model_kwargs": dict(request.get("model_kwargs") or {}),
             "options": dict(request.get("options") or {})}
    source_request = SourceRequest(reference=rest, raw=ref, **given)
    try:
        resolved = spec.resolve(source_request)
    except ModelportError:
        raise
    except Exception as exc:
        from modelport.errors import ModelLoadError

        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelLoadError(f"model {ref}: source {spec.name!r} failed: {type(exc).__name__}: {first}"[:600]) from exc
    if not isinstance(resolved, ResolvedModel):
        raise PluginContractError(
            f"model source {spec.name!r} broke the contract: resolve returned {type(resolved).__name__}, "
            "expected modelport.ResolvedModel"
        )
    resolved.source.setdefault("reference", ref)
    resolved.source.setdefault("source", spec.name)
    return resolved


def _check_request_keywords(request: Mapping[str, Any]) -> None:
    """A keyword :func:`resolve` does not take is a TypeError before anything loads, as for any function."""
    unknown = [k for k in request if k not in SourceRequest.__dataclass_fields__ or k in ("reference", "raw")]
    if unknown:
        raise TypeError(f"resolve() got an unexpected keyword argument {unknown[0]!r}")


def resolved_inputs(
    resolved: ResolvedModel, *, batch: int | None = None, dynamic: Sequence[str] = (), dynamic_batch: bool = False,
) -> InputSpec:
    """The source's input spec with ``--batch`` / ``--dynamic`` / ``--dynamic-batch`` applied, or exit 3."""
    if resolved.inputs is None:
        raise ConfigError("no input spec: give --input NAME:1x3x224x224[:float32], --vision 3x224x224 or --text SEQ_LEN[:VOCAB]")
    spec = resolved.inputs
    if batch:
        for t in spec.tensors:
            if t.shape and t.shape[0] != batch:
                t.shape = (batch, *t.shape[1:])
    if dynamic_batch:
        spec.with_dynamic_batch()
    spec.with_dynamic(list(dynamic))
    return spec


def export_resolved(resolved: ResolvedModel, formats: Sequence[str], inputs: InputSpec | None = None,
                    **kwargs: Any) -> ExportResult:
    """Export a resolved model (every component of it, each in its own folder) through the pipeline.

    Keywords are :func:`modelport.engine.pipeline.export`'s. Explicit ``model_name``, ``task``, ``class_names``,
    ``preprocessing`` and ``postprocessing`` win over what the source knew. Components go to
    ``OUTPUT/<component>[/<format>]`` and, with an exports root, are named ``<model>-<component>``; the result's
    keys are then ``<component>/<format>``.
    """
    from modelport.engine.pipeline import export as run_export

    given = _ExportTarget.take(kwargs)
    settings = kwargs.get("settings")
    if settings is not None:  # where to write, from ExportSettings when not given as a keyword
        given = given.defaults_from(settings)
    name = given.model_name or resolved.model_name
    if not resolved.components:
        sets = resolved.input_sets if inputs is None or inputs is resolved.inputs else None
        return run_export(
            resolved.module, formats, inputs if inputs is not None else resolved_inputs(resolved),
            output_dir=given.output_dir, exports_root=given.exports_root, model_name=name,
            task=given.task or resolved.task, class_names=given.class_names or resolved.class_names,
            preprocessing=given.preprocessing or resolved.preprocessing,
            postprocessing=given.postprocessing or resolved.postprocessing,
            task_extras=resolved.task_extras, source={**resolved.source}, reference_inputs=sets,
            per_format_dirs=given.per_format_dirs, **kwargs,
        )
    if inputs is not None:
        raise ConfigError("this model exports as several components "
                          f"({', '.join(resolved.components)}); their inputs come from the source, drop --input")
    return _export_components(resolved, formats, name, given, kwargs)


@dataclass(frozen=True)
class _ExportTarget:
    """The keywords of :func:`export_resolved` it reads itself: where to write and what overrides the source."""

    output_dir: str | Path | None = None
    exports_root: str | Path | None = None
    model_name: str | None = None
    task: str | None = None
    class_names: Sequence[str] | None = None
    preprocessing: Mapping[str, Any] | None = None
    postprocessing: Mapping[str, Any] | None = None
    per_format_dirs: bool | None = None

    @classmethod
    def take(cls, kwargs: dict[str, Any]) -> _ExportTarget:
        """Take this class's fields out of ``kwargs`` (the rest go on to the pipeline)."""
        return cls(**{f: kwargs.pop(f) for f in cls.__dataclass_fields__ if f in kwargs})

    def defaults_from(self, settings: Any) -> _ExportTarget:
        """Where to write from ``settings`` (an ExportSettings) for what was not given as a keyword."""
        return replace(
            self, output_dir=self.output_dir if self.output_dir is not None else settings.output_dir,
            exports_root=self.exports_root if self.exports_root is not None else settings.exports_root,
            per_format_dirs=self.per_format_dirs if self.per_format_dirs is not None else settings.per_format_dirs)

    def keywords(self) -> dict[str, Any]:
        """The fields as keywords of :func:`export_resolved` (not copied: mappings pass through as given)."""
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def _export_components(resolved: ResolvedModel, formats: Sequence[str], name: str | None, given: _ExportTarget,
                       kwargs: dict[str, Any]) -> ExportResult:
    """Export each component of ``resolved`` into its own folder; the results keyed ``<component>/<format>``."""
    from modelport.engine.pipeline import ExportResult
    from modelport.folder.store import safe_name, slug

    output_dir, exports_root = given.output_dir, given.exports_root
    base = Path(output_dir) if output_dir is not None else Path("exports") / safe_name(name or "model", "model name")
    results: dict[str, Any] = {}
    for comp_name, comp in resolved.components.items():
        comp.source = {**resolved.source, **comp.source, "component": comp_name}
        comp.model_name = slug(f"{name or comp.model_name or 'model'}-{comp_name}")
        sub_target = replace(given, output_dir=None if exports_root is not None else base / comp_name,
                             model_name=comp.model_name)
        sub = export_resolved(comp, formats, None, **sub_target.keywords(), **kwargs)
        for fmt, r in sub.items():
            results[f"{comp_name}/{fmt}"] = r
    return ExportResult(results)

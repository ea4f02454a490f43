"""Records that cross the plugin boundary: what a plugin declares, receives and returns.

Plain dataclasses, importable without torch, so a plugin module can use them at import time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from modelport.engine.inputs import InputSpec


# --------------------------------------------------------------------------- availability


@dataclass(frozen=True)
class Availability:
    """Whether a format can export and validate on this machine, and if not, why and how to fix it.

    A format can be *exportable* but not *validatable* here (Core ML prediction needs macOS):
    ``export=True, validate=False`` with the reason in ``validate_reason``.
    """

    export: bool = True
    validate: bool = True
    reason: str | None = None
    validate_reason: str | None = None
    fix: str | None = None

    @classmethod
    def ok(cls) -> Availability:
        return cls()

    @classmethod
    def unavailable(cls, reason: str, fix: str | None = None) -> Availability:
        return cls(export=False, validate=False, reason=reason, validate_reason=reason, fix=fix)

    @classmethod
    def export_only(cls, validate_reason: str) -> Availability:
        return cls(export=True, validate=False, validate_reason=validate_reason)

    @property
    def available(self) -> bool:
        return self.export


def missing_modules(*modules: str) -> list[str]:
    """Top-level modules among ``modules`` that are not installed — found without importing them."""
    import importlib.util

    missing = []
    for name in modules:
        try:
            if importlib.util.find_spec(name) is None:
                missing.append(name)
        except (ImportError, ValueError):
            missing.append(name)
    return missing


def requires(*modules: str, fix: str | None = None) -> Callable[[], Availability]:
    """Build a cheap availability check: ok when every module is importable (not imported)."""

    def check() -> Availability:
        missing = missing_modules(*modules)
        if missing:
            return Availability.unavailable(f"missing Python module(s): {', '.join(missing)}", fix=fix)
        return Availability.ok()

    return check


# --------------------------------------------------------------------------- options


_OPTION_TYPES = ("bool", "int", "float", "str", "choice", "path", "json")


@dataclass(frozen=True)
class OptionSpec:
    """One ``-o key=value`` option of a format or publisher: its type, default and help."""

    name: str
    type: str = "str"
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()
    tune: tuple[Any, ...] | None = None  # values ``modelport optimize`` tries (None: not searched)
    # only changes how the artifact is run, not the file written: ``optimize`` exports once and reloads the runner
    # with the value in ``load_runner``'s options (the plugin must read it from there, else from artifact.options)
    runtime: bool = False
    # --- calibration size as a searched dimension (issue 18 §2) ---
    # ``tune`` is tried only in candidates where each named option has one of the listed values (an option declared
    # earlier, or its default), e.g. ``{"quantize": ("static",)}``: elsewhere it is left out, so the grid does not grow
    tune_when: Mapping[str, tuple[Any, ...]] | None = None
    # the value is a number of calibration items: ``optimize`` caps the tune values at the items it holds out of
    # --sample-inputs for calibration, hands the candidate exactly that many, and never scores on them
    calibration: bool = False

    def __post_init__(self) -> None:
        if self.type not in _OPTION_TYPES:
            raise ValueError(f"option {self.name!r}: type must be one of {_OPTION_TYPES}")
        if self.calibration and self.type != "int":
            raise ValueError(f"option {self.name!r}: a calibration size is an int option")
        if self.type == "choice" and not self.choices:
            raise ValueError(f"option {self.name!r}: a choice option needs choices")

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "default": self.default, "help": self.help}
        if self.choices:
            out["choices"] = list(self.choices)
        return out


# --------------------------------------------------------------------------- formats / publishers


@dataclass(frozen=True)
class FormatSpec:
    """What a plugin declares about a format in ``register_formats``.

    :param name: short name used on the command line (``onnx``).
    :param display_name: human name (``ONNX``).
    :param files: what the export writes, e.g. ``("model.onnx", "model.onnx.data?")`` — ``?`` marks optional.
    :param options: the format's ``-o`` options.
    :param availability: a cheap check — never imports heavy modules; use ``find_spec`` or a cached subprocess.
    :param upstream: formats this one is built from (TensorRT from ONNX).
    :param precision_option: name of the option that selects precision, if any (for the tolerance profile).
    :param implementation: the format object the core calls directly — a class, an instance, or a lazy
        ``"package.module:Class"`` reference (imported on first use, so ``modelport formats`` stays fast). Its
        methods: ``export(request)``, ``load_runner(artifact, options)`` and optionally ``validate(artifact,
        inputs)``, ``describe(artifact, request)``, ``inspect(path, options)``, ``load_intermediates(artifact,
        options)``. None: the core calls the plugin's hooks instead (the older style, still supported).
    :param suffixes: file suffixes ``inspect`` hands to this format object (``(".safetensors",)``).
    :param usage: a Python snippet that runs the artifact, for model cards: ``{path}`` is the main file and a
        numpy dict ``inputs`` is defined before it (``session = ort.InferenceSession("{path}")...``).
    :param runtime_library: the pip package the ``usage`` snippet needs (``onnxruntime``).
    :param hub_library: the Hugging Face Hub ``library_name`` of a card with only this format (``onnx``,
        ``pytorch``); empty: ``modelport``.
    :param needs_gpu: the export needs a GPU (TensorRT builds its engine on one): ``--executor ray`` asks for one.
    """

    name: str
    display_name: str
    files: tuple[str, ...]
    options: tuple[OptionSpec, ...] = ()
    availability: Callable[[], Availability] = Availability.ok
    upstream: tuple[str, ...] = ()
    description: str = ""
    config_aliases: Mapping[str, str] = field(default_factory=dict)
    implementation: Any = None
    suffixes: tuple[str, ...] = ()
    usage: str = ""
    runtime_library: str = ""
    hub_library: str = ""
    needs_gpu: bool = False

    def option(self, name: str) -> OptionSpec | None:
        for opt in self.options:
            if opt.name == name or name in opt.aliases:
                return opt
        return None


@dataclass(frozen=True)
class PublisherSpec:
    """What a plugin declares about a publish target in ``register_publishers``."""

    scheme: str
    display_name: str
    options: tuple[OptionSpec, ...] = ()
    availability: Callable[[], Availability] = Availability.ok
    can_pull: bool = False
    description: str = ""
    can_list: bool = False
    #: environment variables holding this publisher's token: never printed, logged or written (redacted)
    token_env: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """A parsed publish/pull target such as ``hf://me/repo@main`` or ``file:///srv/registry``."""

    scheme: str
    location: str
    raw: str

    @classmethod
    def parse(cls, raw: str) -> Target:
        from modelport.errors import ConfigError

        if "://" not in raw:
            raise ConfigError(f"target {raw!r} has no scheme; use e.g. file://DIR, hf://OWNER/REPO, github://OWNER/REPO@TAG")
        scheme, _, location = raw.partition("://")
        if not scheme or not scheme.isascii() or not scheme.replace("+", "").replace("-", "").isalnum():
            raise ConfigError(f"target {raw!r} has an invalid scheme")
        if not location:
            raise ConfigError(f"target {raw!r} names no location after {scheme}://")
        return cls(scheme=scheme.lower(), location=location, raw=raw)


# --------------------------------------------------------------------------- export


@dataclass
class Artifact:
    """What ``export`` returns: the files written into ``request.workdir`` and facts about them.

    :param path: the main file or package (``workdir/model.onnx``).
    :param files: every file written, relative to the workdir (``model.onnx``, ``model.onnx.data``).
    :param precision: ``fp32`` / ``fp16`` / ``bf16`` / ``int8`` — picks the tolerance profile.
    :param details: recorded in export.json under ``details`` (exporter used, options resolved...).
    :param warnings: recorded once in export.json.
    :param input_names / output_names: as the artifact names them, when it renames them.
    :param input_dtypes: dtypes the artifact really expects (TFLite turns int64 into int32).
    """

    format: str
    path: Path
    files: list[str] = field(default_factory=list)
    precision: str = "fp32"
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    input_names: list[str] | None = None
    output_names: list[str] | None = None
    input_dtypes: dict[str, str] | None = None
    options: dict[str, Any] = field(default_factory=dict)


class Runner(Protocol):
    """A loaded artifact: call it with named numpy inputs, get the flat list of numpy outputs."""

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> Sequence[np.ndarray]: ...


@dataclass
class GraphNode:
    """One node of an artifact's graph, for mapping PyTorch modules to artifact tensors (``modelport debug``).

    :param module: the PyTorch module path the converter recorded for the node (``blocks.0.attn``), ``""`` for the
        model itself, None when unknown.
    :param inputs / outputs: tensor names the node reads and writes.
    """

    module: str | None
    inputs: Sequence[str] = ()
    outputs: Sequence[str] = ()


class IntermediateRunner(Protocol):
    """A loaded artifact that can return the tensors at PyTorch module boundaries — what ``load_intermediates`` returns.

    ``mode`` is ``"end-to-end"`` (one run of the artifact on the model inputs; each module's output is the tensor
    the artifact computed there, so errors accumulate as they do in deployment) or ``"per-module"`` (each module's
    artifact counterpart runs alone on the inputs PyTorch gave that module, so each row is that module's own error).
    ``taps`` maps module path → the artifact's name for that module's output; ``unavailable`` maps module path →
    why the artifact cannot expose it (fused away, delegated, folded into a constant). An optional ``notes`` list
    of one-line strings is shown under the table (how the tensors were obtained, what they do not show).
    """

    mode: str
    taps: Mapping[str, str]
    unavailable: Mapping[str, str]
    runtime: str | None

    def run(self, inputs: Mapping[str, np.ndarray], modules: Sequence[str],
            module_inputs: Mapping[str, tuple[tuple[Any, ...], dict[str, Any]]] | None = None) -> Mapping[str, Any]:
        """The outputs of ``modules`` (a bounded subset of ``taps``) as numpy arrays, by module path.

        ``module_inputs`` (per-module mode only) holds, per module, the positional and keyword torch tensors
        PyTorch passed to it. A module that could not be computed is simply left out of the result.
        """
        ...


@dataclass
class ValidationRun:
    """What ``validate`` returns.

    :param outputs: one list of numpy outputs (flattened, in the model's output order) per input set,
        or None when the artifact cannot be run here.
    :param checks: structural checks performed, name → result (``onnx.checker: ok``).
    :param skipped: why the numeric check could not run here (``numeric check needs macOS``).
    :param runtime: runtime name and version used.
    :param problems: structural checks that failed (one line each): the export is still written, and
        the run ends with exit 2, so the user has the artifact to inspect.
    """

    outputs: list[list[Any]] | None = None
    checks: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    runtime: str | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class ExportRequest:
    """Everything a format plugin needs to write one artifact.

    ``model`` is an ``nn.Module`` in eval mode, this format's own copy (never run before: export may run it
    freely). Its forward takes ``example_inputs`` positionally, in the input spec's order; when the user's model
    binds inputs by keyword, the core hands hook-style plugins a wrapper that passes each to the parameter of its
    name, and format objects the user's module with ``binding`` (see :meth:`positional_model`). ``options`` are already parsed and defaulted from the format's
    OptionSpecs. Write only inside ``workdir``. ``sample_inputs`` holds real inputs (one sample per
    dict, numpy) when the user gave ``--sample-inputs`` — use them for calibration. ``metadata`` holds
    what is known before export (model_name, task_type, class_names, preprocessing...) for formats
    that embed metadata in the artifact.
    """

    format: str
    model: Any
    inputs: InputSpec
    example_inputs: tuple[Any, ...]
    options: dict[str, Any]
    workdir: Path
    output_names: list[str]
    task: str | None = None
    model_name: str = "model"
    threads: int | None = None
    sample_inputs: list[dict[str, Any]] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    _upstream: Callable[..., Artifact] | None = field(default=None, repr=False)
    _notes: list[str] = field(default_factory=list, repr=False)
    binding: Any = None
    _positional: Any = field(default=None, repr=False)

    def positional_model(self) -> Any:
        """``model`` callable with ``example_inputs`` by position: the binding wrapper for a keyword-bound model.

        Format objects receive the user's own module in ``model`` (store it, read its class and state_dict) and
        ``binding`` (:class:`modelport.engine.binding.Binding`: which inputs go by ``positional`` / ``keyword``); tracing
        exporters that call the model positionally use this.
        """
        return self._positional if self._positional is not None else self.model

    @property
    def input_names(self) -> list[str]:
        return self.inputs.names

    def make_inputs(self, batch: int | None = None, seed: int = 0) -> tuple[Any, ...]:
        """Seeded example tensors for this spec, optionally at another batch size."""
        return self.inputs.make_torch(batch=batch, seed=seed)

    def torch_dynamic_shapes(self, max_batch: int = 1 << 16) -> Any:
        """``dynamic_shapes`` for ``torch.export.export`` from the input spec (None when nothing is dynamic).

        The batch axis becomes ``Dim("batch", min=1, max=max_batch)``; other dynamic axes ``Dim.AUTO``.
        One label shared by several inputs (``input_ids`` / ``attention_mask``) is one ``Dim``.
        """
        import re

        import torch

        if not self.inputs.has_dynamic:
            return None
        dims: dict[str, Any] = {}
        shapes = []
        for t in self.inputs.tensors:
            per: dict[int, Any] = {}
            for axis, label in t.dynamic.items():
                if label not in dims:
                    dims[label] = (torch.export.Dim(re.sub(r"\W", "_", label), min=1, max=max_batch) if axis == 0
                                   else torch.export.Dim.AUTO)
                per[axis] = dims[label]
            shapes.append(per or None)
        return tuple(shapes)

    def upstream(self, format: str, **options: Any) -> Artifact:
        """Ask the core for an artifact of another format (TensorRT builds from ONNX).

        The core exports it with the given options into a folder inside ``workdir`` and returns it.
        """
        if self._upstream is None:
            from modelport.errors import PluginContractError

            raise PluginContractError("upstream artifacts are only available during an export")
        return self._upstream(format, **options)

    def note(self, message: str) -> None:
        """Record a message once in export.json (deprecation warnings, fallbacks taken)."""
        if message not in self._notes:
            self._notes.append(message)


@dataclass
class PublishResult:
    """What ``publish`` returns: where the export went."""

    url: str
    revision: str | None = None
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    message: str | None = None


@dataclass
class PullResult:
    """What ``pull`` returns: the files downloaded into the destination folder."""

    source: str
    files: list[str] = field(default_factory=list)


@dataclass
class PublishedExport:
    """One export folder of a published model (one format), as a registry lists it.

    :param format: the export's format (``onnx``).
    :param folder: its folder inside the published model (``""`` for the model's root).
    :param pull_target: what ``modelport pull`` takes to download exactly this export.
    :param metadata: its metadata.json as published — untrusted JSON, shown but never executed.
    :param metadata_sha256: sha256 of the metadata.json bytes: the key of the local download cache.
    :param pull_options: publisher options the pull needs besides the target (``{"folder": "onnx"}``).
    :param bench: its bench.json when it was published.
    """

    format: str
    folder: str
    pull_target: str
    metadata: dict[str, Any] = field(default_factory=dict)
    metadata_sha256: str | None = None
    pull_options: dict[str, Any] = field(default_factory=dict)
    bench: dict[str, Any] | None = None

    @property
    def size(self) -> int:
        """Bytes of the artifact files metadata.json lists."""
        files = self.metadata.get("files") or {}
        return sum(int(m.get("bytes") or 0) for m in files.values() if isinstance(m, Mapping))

    @property
    def validation_status(self) -> str:
        v = self.metadata.get("validation")
        return str(v.get("status") or "not run") if isinstance(v, Mapping) else "not run"


@dataclass
class ModelEntry:
    """What ``list_models`` returns per published model version: where it is and what its exports are.

    :param name: the model's name in the registry (folder, repository or ``model_name``).
    :param version: the version (registry folder, branch, release tag).
    :param target: the registry that was listed (``file:///srv/zoo``, ``hf://alice``, ``github://o/r``).
    :param exports: one per format published under this name and version.
    :param published_at: ISO 8601 time of publication, when the registry knows it.
    :param url: where a person can look at it.
    :param revision: the registry's immutable revision (commit), when it has one.
    """

    name: str
    version: str
    target: str
    exports: list[PublishedExport] = field(default_factory=list)
    published_at: str | None = None
    url: str | None = None
    revision: str | None = None

    @property
    def ref(self) -> str:
        """``TARGET/NAME@VERSION``: what ``modelport info`` and ``load_pretrained`` take."""
        return f"{self.target.rstrip('/')}/{self.name}@{self.version}"

    @property
    def formats(self) -> list[str]:
        return [e.format for e in self.exports]

    @property
    def size(self) -> int:
        return sum(e.size for e in self.exports)


def to_jsonable(obj: Any) -> Any:
    """Turn records, paths and numpy scalars into plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(obj).items() if not k.startswith("_")}
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "shape", None) == ():
        return obj.item()
    return obj

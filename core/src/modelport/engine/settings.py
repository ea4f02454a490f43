"""Export settings as one typed object: a new setting is one field here, and reaches the API and the CLI from it.

:class:`ExportSettings` holds how an export runs (validation, tolerances, threads, destination, options);
:class:`ModelInfo` holds what is known about the model (name, task, class names, pre/postprocessing, source).
``pipeline.export(**kwargs)`` accepts every field of both as a keyword; a field whose metadata names a ``cli``
flag becomes a ``modelport export`` option through :func:`cli_options`. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_EXTRA_BATCHES = (4, 8)


def _cli(*decls: str, help: str, invert: bool = False, parse: Callable[[Any], Any] | None = None,
         **click_kwargs: Any) -> dict[str, Any]:
    """Field metadata that makes a setting a CLI flag (``invert``: a ``--no-X`` flag that sets the field False;
    ``parse``: turns the flag's text into the setting's value, one line and exit 3 on bad text)."""
    return {"cli": decls, "help": help, "invert": invert, "parse": parse, "click": click_kwargs}


def _parse_jobs(text: str | None) -> int | None:
    from modelport.engine.jobs import parse_jobs  # jobs imports nothing heavy, but settings stays a leaf at import

    return parse_jobs(text)


@dataclass(frozen=True)
class ExportSettings:
    """How an export runs. Add a setting here (with ``metadata=_cli(...)`` for a flag) and use it in the stage
    that needs it; ``pipeline.export`` accepts it as a keyword and ``modelport export`` as a flag."""

    output_dir: str | Path | None = field(default=None, metadata=_cli(
        "--output-dir", "--output_dir", "output_dir", type="path", help="Where to write (one folder per format when several)."))
    exports_root: str | Path | None = field(default=None, metadata=_cli(
        "--exports-root", type="path", help="Write exports/<export-id>/ and keep exports/index.json."))
    validate: bool = field(default=True, metadata=_cli(
        "--no-validate", invert=True, help="Skip running the artifact against PyTorch."))
    allow_inconclusive: bool = field(default=False, metadata=_cli(
        "--allow-inconclusive",
        help="Exit 0 when validation is inconclusive (empty, all-zero or constant reference outputs)."))
    force: bool = field(default=False, metadata=_cli("--force", help="Replace an existing output."))
    atol: float | None = field(default=None, metadata=_cli("--atol", type=float, help="Override the absolute tolerance."))
    rtol: float | None = field(default=None, metadata=_cli("--rtol", type=float, help="Override the relative tolerance."))
    threads: int | None = field(default=None, metadata=_cli(
        "--threads", type=int, help="Thread count for PyTorch and every runtime."))
    jobs: int | None = field(default=None, metadata=_cli(
        "--jobs", metavar="N", parse=_parse_jobs,
        help="Formats exported at once, in worker processes: N or auto (the default: min(formats, cores / 2)); "
             "1: one after another in this process."))
    executor: str = field(default="local", metadata=_cli(
        "--executor", type="choice", choices=("local", "ray"), default="local", show_default=True,
        help="local: this machine; ray: each format a Ray task (RAY_ADDRESS or a local Ray; "
             "pip install 'modelport[ray]')."))
    # set by the API, or by the CLI from other flags (-o, --config, --batch, --sample-inputs, -f all)
    options: Sequence[str] | Mapping[str, Any] = ()
    config: Mapping[str, Any] | None = None
    nms: Any = None
    sample_inputs: Mapping[str, Any] | None = field(default=None, compare=False)
    extra_batches: Sequence[int] = DEFAULT_EXTRA_BATCHES
    per_format_dirs: bool | None = None

    @property
    def exports_root_path(self) -> Path | None:
        return Path(self.exports_root) if self.exports_root is not None else None


@dataclass(frozen=True)
class ModelInfo:
    """What is known about the model before export; it goes to metadata.json, export.json and the request."""

    model_name: str | None = None
    task: str | None = None
    class_names: Sequence[str] | None = None
    preprocessing: Mapping[str, Any] | None = None
    postprocessing: Mapping[str, Any] | None = None
    task_extras: Mapping[str, Any] | None = None
    source: Mapping[str, Any] | None = None
    reference_inputs: Sequence[Mapping[str, Any]] | None = field(default=None, compare=False)

    def request_metadata(self) -> dict[str, Any]:
        """What a format plugin may embed in its artifact (``ExportRequest.metadata``); empty values left out."""
        from modelport.plugins.types import to_jsonable

        items = {
            "model_name": self.model_name, "task_type": self.task or "other",
            "class_names": list(self.class_names) if self.class_names else None,
            "preprocessing": dict(self.preprocessing) if self.preprocessing else None,
            "postprocessing": dict(self.postprocessing) if self.postprocessing else None,
            "source": to_jsonable(dict(self.source)) if self.source else None,
        }
        return {k: v for k, v in items.items() if v is not None}


_SETTINGS = frozenset(f.name for f in dataclasses.fields(ExportSettings))
_INFO = frozenset(f.name for f in dataclasses.fields(ModelInfo))


def from_keywords(kwargs: Mapping[str, Any], settings: ExportSettings | None = None,
                  where: str = "export") -> tuple[ExportSettings, ModelInfo]:
    """Split keyword arguments into settings and model info (over ``settings`` when given); unknown → TypeError."""
    unknown = [k for k in kwargs if k not in _SETTINGS and k not in _INFO]
    if unknown:
        raise TypeError(f"{where}() got an unexpected keyword argument {unknown[0]!r}")
    base = settings or ExportSettings()
    chosen = dataclasses.replace(base, **{k: v for k, v in kwargs.items() if k in _SETTINGS})
    return chosen, ModelInfo(**{k: v for k, v in kwargs.items() if k in _INFO})


def from_flags(flags: Mapping[str, Any], **extra: Any) -> ExportSettings:
    """The settings the CLI's flags (as click passes them) name, plus ``extra`` fields set from other flags."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(ExportSettings):
        if "cli" in f.metadata and _param_name(f) in flags:
            value = flags[_param_name(f)]
            if f.metadata["parse"] is not None:
                value = f.metadata["parse"](value)
            values[f.name] = not value if f.metadata["invert"] else value
    return ExportSettings(**values, **extra)


def _param_name(f: dataclasses.Field[Any]) -> str:
    """The click parameter a flagged field arrives as: its explicit name, or the first flag in snake_case."""
    decls = f.metadata["cli"]
    return decls[-1] if not decls[-1].startswith("-") else decls[0].lstrip("-").replace("-", "_")


def cli_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a click command with one option per flagged setting, in field order.

    Each option's parameter name is the field's explicit name in ``cli`` or its first flag in snake_case
    (``no_validate``); :func:`from_flags` reads them back.
    """
    import click

    for f in reversed(dataclasses.fields(ExportSettings)):
        if "cli" not in f.metadata:
            continue
        decls = [d for d in f.metadata["cli"] if d.startswith("-")] + [_param_name(f)]
        kwargs: dict[str, Any] = dict(f.metadata["click"])
        if kwargs.get("type") == "path":
            kwargs["type"] = click.Path()
        elif kwargs.get("type") == "choice":
            kwargs["type"] = click.Choice(kwargs.pop("choices"))
        if f.type in ("bool", bool):
            kwargs["is_flag"] = True
        command = click.option(*decls, help=f.metadata["help"], **kwargs)(command)
    return command

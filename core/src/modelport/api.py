"""The Python API: export, validate, publish, pull, formats — the same pipeline the CLI runs."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport.engine.inputs import InputSpec
from modelport.engine.pipeline import ExportResult, FormatResult, validate_export
from modelport.engine.pipeline import export as _export
from modelport.errors import ConfigError, PluginContractError, PublishError
from modelport.plugins.host import FormatStatus, PluginHost, get_plugin_manager
from modelport.plugins.types import PublishResult, PullResult, Target


def export(
    model: Any,
    formats: Sequence[str] | str,
    inputs: InputSpec | None = None,
    output_dir: str | Path | None = None,
    **kwargs: Any,
) -> ExportResult:
    """Export a model to each format, validate each artifact and write its folder.

    ``model`` is an ``nn.Module``, a reference a model source resolves (``"hf:./my-bert"``,
    ``"models.py:build"``, ``"net.pt2"``) or a :class:`ResolvedModel` from :func:`resolve`; for the last two
    ``inputs`` may be left out when the source knows them. ``result["onnx"].artifact_path``,
    ``result["onnx"].validation.max_abs_diff``, ``result.metadata_path``.
    Keywords are the fields of :class:`modelport.engine.settings.ExportSettings` and ``ModelInfo`` (or pass
    ``settings=ExportSettings(...)``; a keyword beside it wins).
    ``options`` is per format (``{"onnx": {"opset": 17}}``), for every format that has the option
    (``{"strict": True}``), or the CLI's ``["onnx.opset=17"]``; unknown keys are a ConfigError.
    Failures are in each FormatResult (``status``, ``error``, ``exit_code``), not raised, so one bad
    format never hides the others; configuration errors (unknown format...) raise ConfigError.
    ``jobs=N`` exports N formats at once in worker processes (default: auto, ``jobs=1``: in order, here);
    ``executor="ray"`` makes each format a Ray task (``modelport[ray]``, docs/scale-out.md).
    """
    from modelport.models.sources import ResolvedModel, export_resolved

    if output_dir is not None:  # else settings=ExportSettings(output_dir=...) decides
        kwargs["output_dir"] = output_dir
    if isinstance(formats, str):
        formats = [f for f in formats.split(",") if f]
    if inputs is not None and not isinstance(inputs, InputSpec):
        raise ConfigError(
            f"inputs must be a modelport.InputSpec (modelport.vision(3, 224, 224), modelport.text(128), "
            f"modelport.InputSpec([modelport.TensorSpec('x', (1, 8), 'float32')])), got {type(inputs).__name__}; "
            "real example tensors go in sample_inputs={name: array}")
    if isinstance(model, str):
        source_kwargs = {k: kwargs.pop(k) for k in ("trust_code", "input_text", "model_kwargs", "checkpoint")
                         if k in kwargs}
        # the source reads the task (Optimum's names, ``-with-past``); metadata gets the task it resolved
        model = resolve(model, task=kwargs.pop("task", None), host=kwargs.get("host"), **source_kwargs)
    if isinstance(model, ResolvedModel):
        return export_resolved(model, formats, inputs, **kwargs)
    if inputs is None:
        raise ConfigError("inputs are required for an nn.Module: pass modelport.vision(...), modelport.text(...) "
                          "or an InputSpec")
    return _export(model, formats, inputs, **kwargs)


def resolve(reference: str, **kwargs: Any) -> Any:
    """Load a model through its source: ``resolve("hf:./my-bert", task="text-classification")``.

    Returns a :class:`modelport.ResolvedModel` (the module, its inputs, task, class names, preprocessing...).
    Keyword arguments: ``task``, ``trust_code``, ``input_text``, ``batch``, ``model_kwargs``, ``checkpoint``.
    """
    from modelport.models.sources import resolve as _resolve

    return _resolve(reference, **kwargs)


def validate(export_dir: str | Path, **kwargs: Any) -> FormatResult:
    """Re-run an export folder's artifact on its recorded inputs and compare with the recorded outputs."""
    return validate_export(export_dir, **kwargs)


def debug(export_dir: str | Path, model: Any = None, *, trust_code: bool = False, **kwargs: Any) -> Any:
    """Name the module where an export's artifact starts to disagree with the PyTorch ``model``.

    Returns a :class:`modelport.commands.debug.DebugReport` (``report.named_module``, ``report.rows``, ``report.to_dict()``).
    ``model`` is the ``nn.Module`` that was exported; without it the record's source is loaded, which runs code
    named by a file modelport did not write in this run and therefore needs ``trust_code=True``.
    Keyword arguments: ``atol``, ``rtol``, ``max_probes``, ``input_set``, ``threads``.
    """
    from modelport.commands.debug import debug_export

    return debug_export(export_dir, model, trust_code=trust_code, **kwargs)


def formats(host: PluginHost | None = None) -> list[FormatStatus]:
    """Every known format and its status on this machine."""
    return (host or get_plugin_manager()).format_statuses()


def publisher_options(host: PluginHost, scheme: str,
                      options: Sequence[str] | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``scheme://`` publisher's options resolved from any shape export's ``options`` takes."""
    from modelport.plugins.options import resolve_publisher_options

    return resolve_publisher_options(host.require_publisher(scheme), options)


def publish(
    export_dir: str | Path | Sequence[str | Path],
    target: str,
    *,
    dry_run: bool = False,
    stage_dir: str | Path | None = None,
    force: bool = False,
    options: Sequence[str] | Mapping[str, Any] | None = None,
    host: PluginHost | None = None,
) -> PublishResult:
    """Publish one export folder (or several of one model) to ``target`` (``file://``, ``hf://``, ``github://``).

    ``options`` are the publisher's (``modelport formats --options``), in the shapes export takes:
    ``{"private": True}``, ``{"hf": {"private": True}}`` or ``["private=true"]``.
    """
    from modelport.folder.exportdir import ExportFolder

    host = host or get_plugin_manager()
    tgt = Target.parse(target)
    dirs = [Path(export_dir)] if isinstance(export_dir, (str, Path)) else [Path(d) for d in export_dir]
    if not dirs:
        raise ConfigError("publish needs at least one export directory")
    for d in dirs:
        if not d.is_dir():
            raise ConfigError(f"{d}: no such export directory")
        _ = ExportFolder.open(d).metadata  # record and metadata.json checked before the publisher starts
    opts = publisher_options(host, tgt.scheme, options)
    opts.update(dry_run=dry_run, force=force, export_dirs=dirs)
    if dry_run:
        stage = Path(stage_dir) if stage_dir else Path(tempfile.mkdtemp(prefix="modelport-dry-run-"))
        stage.mkdir(parents=True, exist_ok=True)
        opts["stage_dir"] = stage
    from modelport.engine.pipeline import call_hook

    result = call_hook(host, tgt.scheme, "publish", export_dir=dirs[0], target=tgt, options=opts)
    if result is None:
        raise ConfigError(f"no installed plugin publishes to {tgt.scheme}://")
    if not isinstance(result, PublishResult):
        raise PluginContractError(f"the {tgt.scheme}:// publisher broke the contract: publish returned {type(result).__name__}")
    return result


def pull(target: str, dest: str | Path, *, force: bool = False, options: Sequence[str] | Mapping[str, Any] | None = None,
         host: PluginHost | None = None) -> PullResult:
    """Download a published export into ``dest`` and verify every file's sha256 against its metadata.json.

    The download lands in a temporary folder beside ``dest``; on any mismatch it is deleted and
    nothing appears at ``dest``. Nothing downloaded is ever executed or unpickled.
    """
    from modelport.engine.pipeline import call_hook
    from modelport.folder.exportdir import KNOWN_FILES, ExportFolder, verify_files
    from modelport.folder.store import StagedDir, safe_relpath

    host = host or get_plugin_manager()
    tgt = Target.parse(target)
    spec = host.require_publisher(tgt.scheme)
    if not spec.can_pull:
        raise ConfigError(f"{tgt.scheme}:// cannot pull")
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())) and not force:
        raise ConfigError(f"{dest} already exists and is not empty; pass --force to replace it")
    from modelport.folder.store import check_replaceable

    check_replaceable(dest, "pull --force")  # never the registry itself, never a folder of user files
    opts = publisher_options(host, tgt.scheme, options)
    with StagedDir(dest, force=True) as staged:
        result = call_hook(host, tgt.scheme, "pull", target=tgt, dest=staged.path, options=opts)
        if result is None:
            raise ConfigError(f"no installed plugin pulls from {tgt.scheme}://")
        if not isinstance(result, PullResult):
            raise PluginContractError(f"the {tgt.scheme}:// publisher broke the contract: pull returned {type(result).__name__}")
        for rel in result.files:
            safe_relpath(rel, "pulled file name")
        folder = ExportFolder.open(staged.path)  # record and metadata.json checked against their schemas
        files = dict(folder.metadata.get("files") or {})
        if not files:
            raise PublishError(f"{tgt.raw}: metadata.json lists no files to verify")
        # export.json also lists reference.npz, which `modelport validate` trusts: both tables must agree
        for rel, meta in (folder.record.get("files") or {}).items():
            safe_relpath(str(rel), "file name in export.json")
            if rel in files and files[rel] != meta:
                raise PublishError(f"{tgt.raw}: metadata.json and export.json disagree about {rel}")
            files.setdefault(rel, meta)
        bad = verify_files(staged.path, files)
        if bad:
            raise PublishError(f"{tgt.raw}: refusing the download, sha256 does not match metadata.json: {', '.join(bad)}")
        extra_ok = set(KNOWN_FILES)
        for p in staged.path.rglob("*"):
            if p.is_symlink():
                raise PublishError(f"{tgt.raw}: refusing the download, it contains a symbolic link")
        unlisted = [p.relative_to(staged.path).as_posix() for p in staged.path.rglob("*")
                    if p.is_file() and p.relative_to(staged.path).as_posix() not in files
                    and p.relative_to(staged.path).as_posix() not in extra_ok]
        for rel in unlisted:
            (staged.path / rel).unlink()
        staged.commit()
    shutil.rmtree(staged.path, ignore_errors=True)
    result.files = sorted(set(result.files) - set(unlisted))
    return result

"""The model-zoo side: browse what is published, read one model's card, load a verified model in one call.

::

    from modelport import zoo

    zoo.print_zoo_summary("hf://alice")                       # a table of every model alice published
    entry = zoo.get_model_info("hf://alice/cnn")              # metadata, signature, validation, bench
    model = zoo.load_pretrained("hf://alice/cnn")             # downloaded once, every file sha256-checked
    outputs = model({"image": batch})                         # a list of numpy arrays

A reference is ``TARGET/NAME[@VERSION]``: ``file:///srv/zoo/cnn@v2``, ``hf://alice/cnn``, ``github://o/r/cnn@v1.0``.
Without a version, the latest one. Registries answer through the ``list_models`` hook, so a third-party publisher
is browsable the same way.

Downloads are cached under ``$MODELPORT_CACHE`` (else ``$XDG_CACHE_HOME/modelport``, else ``~/.cache/modelport``),
one folder per export keyed by the sha256 of its metadata.json — which itself pins the sha256 of every artifact
file. Every file is checked again before each load; offline (``MODELPORT_OFFLINE=1``, ``HF_HUB_OFFLINE=1``, or an
unreachable registry) a cached entry still loads. Nothing downloaded runs code: formats whose loading can execute
code from the file (TorchScript programs, TensorRT engines that may embed host code, ``pytorch`` state dicts whose
factory is imported) load only with ``trust_code=True``; a ``.pt2`` archive is read first and refused only when it
holds pickled or native parts — see docs/security.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import ConfigError, PluginContractError, PublishError
from modelport.folder.exportdir import METADATA_FILE, ExportFolder
from modelport.plugins.types import ModelEntry, PublishedExport, Target
from modelport.terminal.console import escape

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from modelport.plugins.host import PluginHost

__all__ = [
    "CODE_FORMATS", "PREFERENCE", "PretrainedModel", "cache_dir", "download_model", "entry_json", "get_model_info",
    "list_models", "load_pretrained", "parse_ref", "print_model_info", "print_zoo_summary",
]

#: Formats tried first to last when ``load_pretrained`` is given none (those that cannot run here are skipped).
PREFERENCE = ("tensorrt", "onnx", "openvino", "coreml", "tflite", "executorch", "pt2", "torchscript", "pytorch")
#: Formats whose loading always runs code carried by the file: loaded from a download only with ``trust_code=True``.
#: A ``pt2`` archive is not among them: once downloaded and verified it is read (member names and payload configs,
#: :func:`modelport.folder.trust.pt2_code_parts`) and refused only when it holds pickled or native parts.
CODE_FORMATS = {
    "torchscript": "a TorchScript archive is a program: its code runs when it is loaded and called",
    "tensorrt": "a TensorRT engine may embed host code (plugins, a lean runtime) that runs when it is deserialized",
    "pytorch": "running it imports and calls the factory its file names to rebuild the model",
}
CACHE_MARKER = ".modelport-cache.json"


# ----------------------------------------------------------------------------- references and the cache


def parse_ref(ref: str) -> tuple[Target, str, str | None]:
    """``TARGET/NAME[@VERSION]`` → (the registry target, NAME, VERSION or None)."""
    target = Target.parse(ref)
    path, at, version = target.location.partition("@")
    head, _, name = path.rstrip("/").rpartition("/")
    if not head or not name or (at and not version):
        raise ConfigError(f"{ref!r} is not TARGET/NAME[@VERSION] (e.g. file:///srv/zoo/cnn@v2, hf://alice/cnn, "
                          "github://alice/models/cnn@v1.0)")
    registry = f"{target.scheme}://{head}"
    return Target(target.scheme, head, registry), name, version or None


def cache_dir() -> Path:
    """Where downloads are kept: ``$MODELPORT_CACHE``, else ``$XDG_CACHE_HOME/modelport``, else ``~/.cache/modelport``."""
    if os.environ.get("MODELPORT_CACHE"):
        return Path(os.environ["MODELPORT_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "modelport"


def _offline(offline: bool | None) -> bool:
    if offline is not None:
        return offline
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("MODELPORT_OFFLINE", "HF_HUB_OFFLINE"))


def _sha256(path: Path) -> str:
    from modelport.folder.store import sha256_file

    return sha256_file(path)


def _verify_cached(folder: Path, key: str) -> list[str]:
    """What is wrong with a cached export folder (empty when every file matches): metadata.json must hash to
    ``key`` and every file it or export.json lists must match its sha256 (modelport.folder.exportdir checks them)."""
    md_path = folder / METADATA_FILE
    if md_path.is_symlink() or not md_path.is_file():
        return ["metadata.json (missing)"]
    if _sha256(md_path) != key:
        return ["metadata.json (sha256 mismatch)"]
    if any(p.is_symlink() for p in folder.rglob("*")):
        return ["a symbolic link"]
    try:
        return ExportFolder.open(folder).verify()
    except ConfigError as exc:
        return [str(exc)]


def _remove_cached(folder: Path) -> None:
    """Delete a cache folder — only one that carries the marker modelport wrote into it."""
    if (folder / CACHE_MARKER).is_file() and not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)
    else:
        raise PublishError(f"{folder}: in the cache but not written by modelport (no {CACHE_MARKER}); move it away")


def _ref_record(ref: str, fmt: str | None) -> Path:
    digest = hashlib.sha256(f"{ref}\0{fmt or ''}".encode()).hexdigest()
    return cache_dir() / "refs" / f"{digest}.json"


@dataclass
class CachedExport:
    """A verified export folder in the cache and where it came from."""

    path: Path
    entry: ModelEntry
    export: PublishedExport
    downloaded: bool


def _fetch(export: PublishedExport, options: Mapping[str, Any], host: PluginHost) -> tuple[Path, bool]:
    """The cache folder of ``export``: a hit when it is there and every file verifies, else pulled (sha256 checked)."""
    from modelport.api import pull
    from modelport.folder.store import now_iso, write_json_atomic
    from modelport.publishers.publishing import say

    if not export.metadata_sha256:
        raise PluginContractError(f"{export.pull_target}: the lister gave no metadata sha256, which the cache needs")
    exports = cache_dir() / "exports"
    folder = exports / export.metadata_sha256
    if folder.is_dir():
        bad = _verify_cached(folder, export.metadata_sha256)
        if not bad:
            return folder, False
        say(f"warning: cached copy of {export.pull_target} changed on disk ({', '.join(bad)}); downloading it again")
        _remove_cached(folder)
    exports.mkdir(parents=True, exist_ok=True)
    scratch = exports / f".download-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        pull(export.pull_target, scratch, options={**dict(options), **export.pull_options}, host=host)
        key = _sha256(scratch / METADATA_FILE)
        if key != export.metadata_sha256:
            raise PublishError(f"{export.pull_target}: metadata.json changed between listing and download; try again")
        write_json_atomic(scratch / CACHE_MARKER, {"pull_target": export.pull_target, "downloaded_at": now_iso()})
        try:
            os.replace(scratch, folder)
        except OSError:
            if not folder.is_dir():  # another process may have put the same export there first
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder, True


def _entry_from_json(data: Mapping[str, Any]) -> ModelEntry:
    exports = [PublishedExport(**{k: e.get(k) for k in ("format", "folder", "pull_target", "metadata",
                                                          "metadata_sha256", "pull_options", "bench")})
               for e in data.get("exports") or []]
    return ModelEntry(name=str(data["name"]), version=str(data["version"]), target=str(data["target"]), exports=exports,
                      published_at=data.get("published_at"), url=data.get("url"), revision=data.get("revision"))


def _entry_dump(entry: ModelEntry) -> dict[str, Any]:
    from modelport.plugins.types import to_jsonable

    data: dict[str, Any] = to_jsonable(entry)
    return data


def _cached(ref: str, fmt: str | None, exc: BaseException | None) -> CachedExport:
    """The export last downloaded for ``ref``, from the cache alone (offline)."""
    from modelport.publishers.publishing import say

    record = _ref_record(ref, fmt)
    why = f" ({exc})" if exc is not None else ""
    if not record.is_file():
        if exc is not None:
            raise exc
        raise ConfigError(f"{ref}: offline and not in the cache ({cache_dir()}); load it once online first")
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        entry = _entry_from_json(data["entry"])
        export = next(e for e in entry.exports if e.metadata_sha256 == data["key"])
    except (ValueError, KeyError, TypeError, StopIteration):
        raise ConfigError(f"{record}: damaged cache record; delete it and load {ref} online") from None
    folder = cache_dir() / "exports" / str(data["key"])
    bad = _verify_cached(folder, str(data["key"])) if folder.is_dir() else ["the folder (missing)"]
    if bad:
        raise PublishError(f"{ref}: the cached copy does not verify ({', '.join(bad)}) and the registry cannot be "
                           f"reached{why}")
    if exc is not None:
        say(f"warning: {ref}: registry not reachable{why}; using the cached copy")
    return CachedExport(folder, entry, export, downloaded=False)


# ----------------------------------------------------------------------------- listing and info


def _host(host: PluginHost | None) -> PluginHost:
    from modelport.plugins.host import get_plugin_manager

    return host or get_plugin_manager()


def list_models(target: str, *, options: Mapping[str, Any] | None = None, host: PluginHost | None = None,
                name: str | None = None, version: str | None = None) -> list[ModelEntry]:
    """Every model version published at ``target`` (``file://DIR``, ``hf://OWNER``, ``github://OWNER/REPO``).

    ``options`` are the publisher's options (``endpoint``, ``api_url``...); ``name`` / ``version`` filter.
    """
    from modelport.api import publisher_options
    from modelport.commands.listing import version_key
    from modelport.engine.pipeline import call_hook

    host = _host(host)
    tgt = Target.parse(target)
    spec = host.require_publisher(tgt.scheme)
    if not spec.can_list:
        raise ConfigError(f"{tgt.scheme}:// ({spec.display_name}) cannot list its models")
    opts = publisher_options(host, tgt.scheme, dict(options or {}))
    opts.update(name=name, version=version)
    entries = call_hook(host, tgt.scheme, "list_models", target=tgt, options=opts)
    if entries is None:
        raise ConfigError(f"no installed plugin lists {tgt.scheme}:// targets")
    if not isinstance(entries, list) or not all(isinstance(e, ModelEntry) for e in entries):
        raise PluginContractError(f"the {tgt.scheme}:// publisher broke the contract: list_models must return a list "
                                  "of modelport.ModelEntry")
    kept = [e for e in entries if (not name or e.name == name) and (not version or e.version == version)]
    return sorted(kept, key=lambda e: (e.name, version_key(e.version)))


def get_model_info(ref: str, *, options: Mapping[str, Any] | None = None, host: PluginHost | None = None) -> ModelEntry:
    """One published model version (``TARGET/NAME[@VERSION]``, the latest without a version) with its exports."""
    from modelport.commands.listing import latest

    registry, name, version = parse_ref(ref)
    entries = list_models(registry.raw, options=options, host=host, name=name, version=version)
    entry = latest(entries)
    if entry is None:
        what = f"{name}@{version}" if version else name
        raise ConfigError(f"{ref}: no model {what} at {registry.raw} (see `modelport list {registry.raw}`)")
    return entry


# ----------------------------------------------------------------------------- choosing a format


def _statuses(host: PluginHost) -> dict[str, Any]:
    return {s.name: s for s in host.format_statuses() if getattr(s, "kind", "format") == "format"}


def _runnable(fmt: str, statuses: Mapping[str, Any]) -> str | None:
    """None when ``fmt`` can run on this machine, else why not."""
    s = statuses.get(fmt)
    if s is None:
        return "no installed plugin knows this format"
    if s.status != "available":
        return s.describe()
    if not s.can_validate:
        return f"cannot run here ({s.reason or 'no runtime'})"
    return None


def choose_export(entry: ModelEntry, fmt: str | None, *, host: PluginHost, trust_code: bool,
                  to_run: bool = True) -> PublishedExport:
    """The export to use: ``fmt`` when given, else the first of :data:`PREFERENCE` that can run here and, unless
    ``trust_code``, runs no code from the file."""
    if not entry.exports:
        raise ConfigError(f"{entry.ref}: publishes no export")
    if fmt:
        export = next((e for e in entry.exports if e.format == fmt), None)
        if export is None:
            raise ConfigError(f"{entry.ref} has no {fmt} export; it has {', '.join(entry.formats)}")
        if to_run:
            if fmt in CODE_FORMATS and not trust_code:
                raise ConfigError(f"{entry.ref}: refusing to load the {fmt} export, {CODE_FORMATS[fmt]}; pass "
                                  "trust_code=True (--trust-code) only if you trust its publisher")
            reason = _runnable(fmt, _statuses(host))
            if reason:
                raise ConfigError(f"{entry.ref}: the {fmt} export cannot be loaded here: {reason}")
        return export
    order = {f: i for i, f in enumerate(PREFERENCE)}
    ranked = sorted(entry.exports, key=lambda e: order.get(e.format, len(order)))
    if not to_run:
        return ranked[0]
    statuses = _statuses(host)
    skipped = []
    for export in ranked:
        if export.format in CODE_FORMATS and not trust_code:
            skipped.append(f"{export.format}: {CODE_FORMATS[export.format]} (needs trust_code=True)")
            continue
        reason = _runnable(export.format, statuses)
        if reason:
            skipped.append(f"{export.format}: {reason}")
            continue
        return export
    raise ConfigError(f"{entry.ref}: no export can be loaded here — " + "; ".join(skipped))


# ----------------------------------------------------------------------------- download and load


def _resolve(ref: str, fmt: str | None, *, options: Mapping[str, Any] | None, host: PluginHost, trust_code: bool,
             offline: bool | None, to_run: bool) -> CachedExport:
    """Resolve ``ref`` online and fetch the chosen export through the cache; offline, use the cache alone."""
    from modelport.folder.store import write_json_atomic

    if _offline(offline):
        hit = _cached(ref, fmt, None)
        choose_export(hit.entry, hit.export.format, host=host, trust_code=trust_code, to_run=to_run)
        return hit
    try:
        entry = get_model_info(ref, options=options, host=host)
    except PublishError as exc:  # the registry cannot be reached: what we downloaded before still loads
        hit = _cached(ref, fmt, exc)
        choose_export(hit.entry, hit.export.format, host=host, trust_code=trust_code, to_run=to_run)
        return hit
    export = choose_export(entry, fmt, host=host, trust_code=trust_code, to_run=to_run)
    registry, _, _ = parse_ref(ref)
    pub_opts = dict(options or {})
    folder, downloaded = _fetch(export, pub_opts, host)
    record = {"ref": ref, "format": fmt, "key": export.metadata_sha256, "registry": registry.raw,
              "entry": _entry_dump(ModelEntry(entry.name, entry.version, entry.target, [export], entry.published_at,
                                              entry.url, entry.revision))}
    write_json_atomic(_ref_record(ref, fmt), record)
    return CachedExport(folder, entry, export, downloaded)


def download_model(ref: str, dest: str | Path | None = None, *, format: str | None = None,
                   options: Mapping[str, Any] | None = None, force: bool = False, offline: bool | None = None,
                   host: PluginHost | None = None) -> Path:
    """Download one export of a published model (``pull``: every file checked against its sha256).

    Without ``dest`` the verified folder in the cache is returned (do not modify it); with ``dest`` a copy is
    written there (an existing non-empty ``dest`` needs ``force``). ``format`` picks the export, else the
    preferred one (see :data:`PREFERENCE`). Nothing is loaded or executed.
    """
    from modelport.folder.store import StagedDir

    host = _host(host)
    hit = _resolve(ref, format, options=options, host=host, trust_code=True, offline=offline, to_run=False)
    if dest is None:
        return hit.path
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())) and not force:
        raise ConfigError(f"{dest} already exists and is not empty; pass force=True to replace it")
    with StagedDir(dest, force=True) as staged:
        for p in sorted(hit.path.rglob("*")):
            rel = p.relative_to(hit.path)
            if rel.as_posix() == CACHE_MARKER:
                continue
            if p.is_dir():
                (staged.path / rel).mkdir(parents=True, exist_ok=True)
            else:
                (staged.path / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(p, staged.path / rel)
        staged.commit()
    return dest


@dataclass
class PretrainedModel:
    """A published model, downloaded, verified and loaded in its runtime: call it on numpy inputs.

    ``model({"image": x})`` (or ``model(image=x)``) returns the outputs as a list of numpy arrays in the model's
    output order; :meth:`predict` returns them by name.
    """

    ref: str
    format: str
    path: Path
    metadata: dict[str, Any]
    entry: ModelEntry
    runner: Any = field(repr=False)
    downloaded: bool = False

    @property
    def input_names(self) -> list[str]:
        return list((self.metadata.get("input_shape") or {}).keys())

    @property
    def output_names(self) -> list[str]:
        return list((self.metadata.get("output_shape") or {}).keys())

    def __call__(self, inputs: Mapping[str, np.ndarray] | None = None, **named: np.ndarray) -> list[np.ndarray]:
        import numpy as np

        given = {**dict(inputs or {}), **named}
        missing = [n for n in self.input_names if n not in given]
        unknown = [n for n in given if n not in self.input_names]
        if missing or unknown:
            raise ConfigError(f"{self.ref}: expects inputs {', '.join(self.input_names)}"
                              + (f"; missing {', '.join(missing)}" if missing else "")
                              + (f"; unknown {', '.join(unknown)}" if unknown else ""))
        dtypes = self.metadata.get("input_dtype") or {}
        feed = {}
        for n in self.input_names:  # runners take the inputs in the model's order
            value = np.asarray(given[n])
            want = dtypes.get(n)
            if want and str(value.dtype) != str(want):
                raise ConfigError(f"{self.ref}: input {n} must be {want}, got {value.dtype}")
            feed[n] = value
        return [np.asarray(o) for o in self.runner(feed)]

    def predict(self, inputs: Mapping[str, np.ndarray] | None = None, **named: np.ndarray) -> dict[str, np.ndarray]:
        """The outputs by name."""
        outputs = self(inputs, **named)
        names = self.output_names if len(self.output_names) == len(outputs) else [f"output_{i}" for i in range(len(outputs))]
        return dict(zip(names, outputs))


def _load_runner(opened: ExportFolder, fmt: str, host: PluginHost, threads: int | None, *, ref: str,
                 trust_code: bool) -> Any:
    from modelport.engine.pipeline import call_hook
    from modelport.folder.trust import UntrustedCode

    folder = opened.path
    if opened.format != fmt:
        raise PublishError(f"{folder}: export.json says {opened.format}, metadata.json says {fmt}; refusing it")
    artifact = opened.artifact
    try:  # every file was checked against its sha256: what runs code is known from the files themselves
        opened.trust(trust_code=trust_code, verified=True)
    except UntrustedCode as exc:
        reason = str(exc).split(": ", 2)[-1].replace("--trust-code (Python: trust_code=True)", "trust_code=True (--trust-code)")
        raise UntrustedCode(f"{ref}: refusing to load the {fmt} export: {reason}") from None
    artifact.options.setdefault("threads", threads)
    runner = call_hook(host, fmt, "load_runner", artifact=artifact, options={"threads": threads})
    if runner is None:
        raise ConfigError(f"no installed plugin can run {fmt} artifacts (see `modelport formats`)")
    return runner


def load_pretrained(ref: str, format: str | None = None, *, trust_code: bool = False, threads: int | None = None,
                    options: Mapping[str, Any] | None = None, offline: bool | None = None,
                    host: PluginHost | None = None) -> PretrainedModel:
    """Download (once), verify and load a published model: ``load_pretrained("hf://alice/cnn")(inputs)``.

    ``format`` picks the export; without it, the first of :data:`PREFERENCE` that can run on this machine.
    Every file is checked against its sha256 before loading, also on a cache hit. Formats whose loading can run
    code from the file (:data:`CODE_FORMATS`, a ``.pt2`` with pickled parts) need ``trust_code=True``. ``options`` are the publisher's
    options (``endpoint``...); ``offline=True`` (or ``MODELPORT_OFFLINE=1``) uses the cache alone.
    """
    if threads is not None and (not isinstance(threads, int) or threads <= 0):
        raise ConfigError("threads must be a positive integer")
    host = _host(host)
    hit = _resolve(ref, format, options=options, host=host, trust_code=trust_code, offline=offline, to_run=True)
    opened = ExportFolder.open(hit.path)  # every file was checked against its sha256 by _verify_cached
    metadata = opened.metadata
    runner = _load_runner(opened, hit.export.format, host, threads, ref=ref, trust_code=trust_code)
    return PretrainedModel(ref=ref, format=hit.export.format, path=hit.path, metadata=metadata, entry=hit.entry,
                           runner=runner, downloaded=hit.downloaded)


# ----------------------------------------------------------------------------- what people read


def entry_json(entry: ModelEntry) -> dict[str, Any]:
    """An entry for ``--json``: its fields, the reference, formats, size and each export's validation status."""
    data = _entry_dump(entry)
    data.update(ref=entry.ref, formats=entry.formats, size=entry.size)
    for export, out in zip(entry.exports, data["exports"]):
        out.update(size=export.size, validation_status=export.validation_status)
    return data


def _validation_cell(exports: Sequence[PublishedExport]) -> str:
    """``3 passed`` when every export shares a status, else each format's own (``onnx passed, tflite failed``)."""
    statuses = {x.validation_status for x in exports}
    if len(statuses) == 1 and len(exports) > 1:
        return f"{len(exports)} {statuses.pop()}"
    return ", ".join(f"{x.format} {x.validation_status}" for x in exports)


def summary_table(entries: Sequence[ModelEntry], title: str) -> Any:
    """A rich table: model, version, formats, size, validation, publication date (the full time is in ``--json``)."""
    from modelport.publishers.publishing import human_size
    from modelport.terminal.render import new_table

    table = new_table(title)
    for col in ("model", "version", "formats", "size", "validation", "published"):
        table.add_column(col, justify="right" if col == "size" else "left", overflow="fold")
    for e in entries:
        table.add_row(*(escape(x) for x in (e.name, e.version, " ".join(dict.fromkeys(e.formats)), human_size(e.size),
                                            _validation_cell(e.exports),
                                            (e.published_at or "—")[:10])))  # remote text: never rich markup
    return table


def _console(file: Any) -> Any:
    """stdout's table console (the terminal's width, or ``$COLUMNS``), or one writing to ``file``."""
    from rich.console import Console

    from modelport.terminal.console import stdout_console

    return stdout_console() if file is None else Console(file=file, highlight=False, width=200)


def print_zoo_summary(target: str, *, options: Mapping[str, Any] | None = None, host: PluginHost | None = None,
                      file: Any = None) -> list[ModelEntry]:
    """Print the table of every model at ``target`` (stdout by default) and return the entries."""
    entries = list_models(target, options=options, host=host)
    console = _console(file)
    console.print(summary_table(entries, f"Models at {target}"))
    if not entries:
        console.print("no models published there yet")
    return entries


def _cell(value: Any) -> str:
    from modelport.publishers.publishing import format_number

    return format_number(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value or "—")


def print_model_info(entry: ModelEntry, file: Any = None) -> None:
    """The card of one model version in the terminal: metadata, signature, validation per format, bench numbers."""
    from modelport.publishers.publishing import human_size
    from modelport.terminal.render import new_table

    out = _console(file)
    md = entry.exports[0].metadata if entry.exports else {}
    out.print(f"[bold]{escape(entry.name)}[/] {escape(entry.version)}  ({escape(entry.ref)})")
    for label, value in (("url", entry.url), ("published", entry.published_at), ("revision", entry.revision),
                         ("task", md.get("task_type")), ("framework", md.get("framework")),
                         ("torch", md.get("torch_version")), ("modelport", md.get("modelport_version"))):
        if value:
            out.print(f"{label}: {escape(value)}")
    if md.get("class_names"):
        names = [str(c) for c in md["class_names"]]
        out.print("classes: " + escape(", ".join(names[:20])) + (f", … ({len(names)})" if len(names) > 20 else ""))
    if md.get("preprocessing"):
        out.print(f"preprocessing: {escape(json.dumps(md['preprocessing'], sort_keys=True))}")

    sig = new_table("Signature")
    for col in ("", "name", "shape", "dtype"):
        sig.add_column(col, overflow="fold")
    for kind, shapes, dtypes in (("input", md.get("input_shape"), md.get("input_dtype")),
                                 ("output", md.get("output_shape"), md.get("output_dtype"))):
        for name, shape in (shapes or {}).items():
            dims = " × ".join(str(d) for d in shape) if isinstance(shape, list) else str(shape)
            sig.add_row(kind, escape(name), escape(dims), escape((dtypes or {}).get(name, "?")))
    out.print(sig)

    # the folder only where it is not the format's own name; a rule shared by every export once, under the table
    folders = any(e.folder not in ("", e.format) for e in entry.exports)
    rules = {str((e.metadata.get("validation") or {}).get("rule") or "—") for e in entry.exports
             if isinstance(e.metadata.get("validation"), dict)}
    val = new_table("Formats and validation")
    cols = ["format", *(["folder"] if folders else []), "files", "size", "precision", "status", "max abs", "min cos",
            *(["rule"] if len(rules) > 1 else [])]
    for col in cols:
        val.add_column(col, justify="right" if col in ("size", "max abs", "min cos") else "left", overflow="fold")
    for e in entry.exports:
        raw = e.metadata.get("validation")
        v: dict[str, Any] = raw if isinstance(raw, dict) else {}
        cells = [e.format, *([e.folder or "."] if folders else []), " ".join(sorted(e.metadata.get("files") or {})),
                 human_size(e.size), str(e.metadata.get("precision") or "—"),
                 e.validation_status + (f" ({v['reason']})" if v.get("reason") else ""),
                 _cell(v.get("max_abs_diff")), _cell(v.get("min_cosine")), *([str(v.get("rule") or "—")] if len(rules) > 1 else [])]
        val.add_row(*(escape(x) for x in cells))
    out.print(val)
    if len(rules) == 1:
        out.print(f"pass rule: {escape(rules.pop())}", soft_wrap=True)

    # every export's bench.json carries PyTorch eager's row (parity "reference"): show it once per batch size;
    # an artifact's row is named by its folder when two exports share a format
    unique: dict[tuple[str, ...], tuple[str, dict[str, Any]]] = {}
    for e in entry.exports:
        for r in (e.bench or {}).get("rows") or []:
            if not isinstance(r, dict):
                continue
            eager = r.get("parity") == "reference"
            name = str(r.get("format") or e.format)
            label = name if eager or e.folder in ("", e.format) else f"{name} ({e.folder})"
            unique.setdefault(("eager" if eager else e.folder, name, str(r.get("batch"))), (label, r))
    if unique:
        bench = new_table("Benchmark (as published)")
        for col in ("format", "batch", "p50 ms", "p90 ms", "p99 ms", "per s", "vs eager"):
            bench.add_column(col, justify="left" if col == "format" else "right", overflow="fold")
        for label, r in unique.values():
            bench.add_row(escape(label), escape(r.get("batch", "—")), _cell(r.get("p50_ms")),
                          _cell(r.get("p90_ms")), _cell(r.get("p99_ms")), _cell(r.get("throughput")),
                          f"{r['speedup']:.2f}x" if isinstance(r.get("speedup"), (int, float)) else "—")
        out.print(bench)
    out.print(f"load it: modelport.zoo.load_pretrained({escape(repr(entry.ref))})")

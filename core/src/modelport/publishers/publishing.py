"""What a publisher sends: the files of one or more export folders, where each goes, and the model card.

Shared by every publisher (modelport-publish-hf, modelport-publish-github, third-party ones): the model card
on the Hub and the release notes on GitHub say the same thing because they are rendered here. What else a
publisher needs is importable from here too: :func:`publisher_hooks` (:mod:`modelport.publishers.hooks`),
:class:`RetryPolicy` (:mod:`modelport.publishers.retry`), ``redact``, ``safe_relpath``, ``human_size``. Standard
library only — importing it stays cheap. Publishers test against :mod:`modelport.testing.http`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from modelport.errors import ConfigError, PublishError
from modelport.folder.exportdir import BENCH_FILE, METADATA_FILE, RECORD_FILE, REFERENCE_FILE, ExportFolder
from modelport.folder.exportdir import CARD_FILE as CARD_FILE  # publishers import it from here
from modelport.folder.store import safe_relpath as safe_relpath  # publishers pass error=PublishError
from modelport.folder.store import sha256_file
from modelport.publishers.hooks import publisher_hooks as publisher_hooks  # publishers import these from here
from modelport.publishers.retry import RetryPolicy as RetryPolicy
from modelport.publishers.retry import parse_retry_after as parse_retry_after
from modelport.terminal.redaction import redact as redact
from modelport.terminal.strings import human_size, one_line

#: Files of an export folder that are published besides the artifact files listed in metadata.json.
EXTRA_FILES = (METADATA_FILE, RECORD_FILE, BENCH_FILE, REFERENCE_FILE)


# ----------------------------------------------------------------------------- names and hashes


def git_blob_sha1(path: Path) -> str:
    """The git blob id of a file (what a git host reports for a non-LFS file)."""
    h = hashlib.sha1(usedforsecurity=False)
    h.update(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def say(message: str) -> None:
    """A progress line on stderr (stdout is for results and --json), shown even while a command captures output."""
    from modelport.terminal.console import say as _say

    _say(message)


def base_url(url: object, option: str) -> str:
    """An http(s) base URL without its trailing slash; a ConfigError naming ``option`` for anything else."""
    text = str(url).rstrip("/")
    if not re.match(r"https?://", text):
        raise ConfigError(f"{option} {text!r} is not an http(s) URL")
    return text


# ----------------------------------------------------------------------------- export folders


@dataclass
class PublishedFile:
    """One file of an export folder: its name inside the export, its local path, size and hashes."""

    rel: str
    path: Path
    size: int
    sha256: str


@dataclass
class ExportBundle:
    """One export folder and the folder it goes to in the target (``""`` for the target's root)."""

    export_dir: Path
    folder: str
    metadata: dict[str, Any]
    record: dict[str, Any]
    bench: dict[str, Any] | None
    files: list[PublishedFile] = field(default_factory=list)

    @property
    def format(self) -> str:
        return str(self.metadata.get("export_format") or self.record.get("format") or "?")

    @property
    def model_name(self) -> str:
        return str(self.metadata.get("model_name") or "model")

    @property
    def artifact_files(self) -> list[str]:
        return sorted((self.metadata.get("files") or {}).keys())

    def in_target(self, rel: str) -> str:
        """Where ``rel`` of this export goes in the target (``onnx/model.onnx``)."""
        return f"{self.folder}/{rel}" if self.folder else rel


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {what} ({one_line(exc)})") from None


def load_bundle(export_dir: Path, folder: str) -> ExportBundle:
    """Read an export folder as every reader does (modelport.folder.exportdir: record and metadata.json checked
    against their schemas, every recorded file against its sha256) and list the files to publish."""
    export_dir = Path(export_dir)
    opened = ExportFolder.open(export_dir)
    metadata = opened.metadata
    if not metadata.get("files"):
        raise ConfigError(f"{export_dir / METADATA_FILE}: lists no artifact files; re-export the model")
    opened.check_intact()
    bench_path = export_dir / BENCH_FILE
    bench = _read_json(bench_path, BENCH_FILE) if bench_path.is_file() else None
    bundle = ExportBundle(export_dir, folder, metadata, opened.record, bench if isinstance(bench, dict) else None)
    table = opened.files()
    for rel in sorted(metadata["files"]) + [n for n in EXTRA_FILES if n not in metadata["files"]]:
        safe_relpath(rel, "file name in metadata.json", PublishError)
        path = export_dir / rel
        if path.is_symlink():
            raise PublishError(f"{export_dir}: refusing to publish the symbolic link {rel}")
        if path.is_file():  # a recorded file was just checked against its sha256; the others are hashed here
            digest = table[rel]["sha256"] if rel in table else sha256_file(path)
            bundle.files.append(PublishedFile(rel, path, path.stat().st_size, digest))
    return bundle


def public_path(value: object) -> object:
    """A local path as it may be published: an absolute one (``/home/me/proj/models.py:net``) loses its folders."""
    if not isinstance(value, str) or not value:
        return value
    head, sep, tail = value.rpartition(":") if re.search(r":[A-Za-z_][\w.]*$", value) else (value, "", "")
    if PurePosixPath(head).is_absolute() or re.match(r"^[A-Za-z]:[\\/]", head) or head.startswith("~"):
        head = re.split(r"[\\/]", head)[-1]
    return f"{head}{sep}{tail}"


def public_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """export.json as published: local absolute paths (model reference, checkpoint, format details) reduced to file
    names."""
    out = json.loads(json.dumps(record, default=str))
    source = out.get("source")
    if isinstance(source, dict):
        source["reference"] = public_path(source.get("reference"))
        ckpt = source.get("checkpoint")
        if isinstance(ckpt, dict) and "path" in ckpt:
            ckpt["path"] = public_path(ckpt.get("path"))
    details = out.get("details")
    if isinstance(details, dict):  # a format's own local paths (the pytorch format's factory_local)
        for key, value in details.items():
            details[key] = public_path(value)
    out.pop("seal", None)  # made with this machine's key: meaningless anywhere else
    return out


def collect_bundles(export_dirs: Sequence[Path], base: str = "") -> list[ExportBundle]:
    """Load every export folder and give each its folder in the target.

    One export goes to ``base`` itself; several exports of one model go to ``base/<format>`` each, or
    ``base/<export folder name>`` when two share a format (two pt2 exports with different options).
    """
    if base:
        safe_relpath(base, "target folder", PublishError)
    dirs = [Path(d) for d in export_dirs]
    if not dirs:
        raise ConfigError("publish needs at least one export directory")
    if len(dirs) == 1:
        return [load_bundle(dirs[0], base)]
    first = [load_bundle(d, "") for d in dirs]
    names = {b.model_name for b in first}
    if len(names) > 1:
        raise ConfigError(f"several exports go to one target only when they are of one model; got {', '.join(sorted(names))}")
    formats = [b.format for b in first]
    use_format = len(set(formats)) == len(formats)
    folders: list[str] = []
    for b in first:
        leaf = b.format if use_format else b.export_dir.resolve().name
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", leaf):
            raise ConfigError(f"{b.export_dir}: folder name {leaf!r} is not usable in a target; rename the export folder")
        folders.append(f"{base}/{leaf}" if base else leaf)
    if len(set(folders)) != len(folders):
        raise ConfigError("two exports would go to the same folder; give the export folders different names")
    for b, folder in zip(first, folders):
        b.folder = folder
    return first


# ----------------------------------------------------------------------------- model card

_PIPELINE_TAGS = {
    "detection": "object-detection",
    "object-detection": "object-detection",
    "segmentation": "image-segmentation",
    "image-segmentation": "image-segmentation",
    "pose": "keypoint-detection",
    "keypoint-detection": "keypoint-detection",
    "text-encoding": "feature-extraction",
    "feature-extraction": "feature-extraction",
    "text-classification": "text-classification",
    "image-classification": "image-classification",
}


def _format_spec(fmt: str) -> Any:
    """The installed plugin's FormatSpec of ``fmt`` (its card usage snippet and Hub library), or None."""
    from modelport.plugins.host import get_plugin_manager

    return (get_plugin_manager().formats.get(fmt) or (None, None))[0]


def _shape(shape: Any) -> str:
    if isinstance(shape, (list, tuple)):
        return " × ".join(str(d) for d in shape) if shape else "scalar"
    return str(shape)


def format_number(value: Any, digits: int = 3) -> str:
    """A number as a table cell: three significant digits, scientific when tiny or huge, — when missing."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if value == 0:
        return "0"
    if abs(value) < 1e-3 or abs(value) >= 1e5:
        return f"{value:.{digits}g}" if abs(value) >= 1e5 else f"{value:.2e}"
    return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:.{digits + 1}g}"


def pipeline_tag(metadata: Mapping[str, Any]) -> str | None:
    """The Hub's pipeline tag for the task in metadata.json, or None for ``other``."""
    task = str(metadata.get("task_type") or "").lower()
    if task in _PIPELINE_TAGS:
        return _PIPELINE_TAGS[task]
    if task == "classification":
        dtypes = list((metadata.get("input_dtype") or {}).values())
        return "text-classification" if dtypes and all(str(d).startswith("int") for d in dtypes) else "image-classification"
    return None


def _feed(metadata: Mapping[str, Any]) -> str:
    """A numpy input dict for the usage snippet, dynamic dims set to 1."""
    parts = []
    for name, shape in (metadata.get("input_shape") or {}).items():
        dims = tuple(d if isinstance(d, int) else 1 for d in (shape or []))
        dtype = str((metadata.get("input_dtype") or {}).get(name, "float32"))
        if dtype.startswith("int"):
            parts.append(f'"{name}": np.ones({dims!r}, dtype=np.{dtype})')
        else:
            parts.append(f'"{name}": np.random.rand({", ".join(str(d) for d in dims)}).astype(np.{dtype})')
    return "{" + ", ".join(parts) + "}"


def _main_file(bundle: ExportBundle) -> str:
    artifact = bundle.record.get("artifact")
    if isinstance(artifact, str) and artifact:
        return bundle.in_target(artifact)
    files = bundle.artifact_files
    return bundle.in_target(files[0]) if files else bundle.in_target("model")


def front_matter(bundles: Sequence[ExportBundle], license: str | None) -> str:
    """YAML front matter for the Hub: library_name, tags (one per format), pipeline_tag, license."""
    formats = sorted({b.format for b in bundles})
    spec = _format_spec(formats[0]) if len(formats) == 1 else None
    library = getattr(spec, "hub_library", "") or "modelport"
    tags = ["modelport", "pytorch", *formats]
    lines = ["---", f"library_name: {library}", "tags:"]
    lines += [f"- {json.dumps(t)}" for t in dict.fromkeys(tags)]
    tag = pipeline_tag(bundles[0].metadata)
    if tag:
        lines.append(f"pipeline_tag: {tag}")
    if license:
        lines.append(f"license: {json.dumps(license)}")
    lines.append("---")
    return "\n".join(lines) + "\n"


def render_card(
    bundles: Sequence[ExportBundle],
    *,
    license: str | None = None,
    pull_target: Callable[[ExportBundle], str] | None = None,
    with_front_matter: bool = True,
) -> str:
    """The model card (Hub README.md) / release notes: formats, signature, validation, benchmark, sha256, usage.

    Deterministic: the same exports give the same text, so re-publishing them changes nothing.
    """
    out: list[str] = []
    if with_front_matter:
        out.append(front_matter(bundles, license))
    out += _card_intro(bundles, license)
    out += _card_formats(bundles)
    out += _card_signature(bundles[0].metadata)
    out += _card_validation(bundles)
    out += _card_benchmark(bundles)
    out += _card_files(bundles)
    out += _card_usage(bundles, pull_target)
    out.append("Generated by modelport from metadata.json, export.json and bench.json.")
    return "\n".join(out) + "\n"


def _card_intro(bundles: Sequence[ExportBundle], license: str | None) -> list[str]:
    """The card's title and first lines: what was exported, with which versions, task and license."""
    out: list[str] = []
    first = bundles[0]
    md = first.metadata
    out.append(f"# {first.model_name}\n")
    versions = ", ".join(x for x in (f"modelport {md.get('modelport_version')}" if md.get("modelport_version") else "",
                                      f"torch {md.get('torch_version')}" if md.get("torch_version") else "") if x)
    out.append(f"PyTorch model `{first.model_name}` exported to {', '.join(sorted({b.format for b in bundles}))}"
               f" and checked numerically against PyTorch" + (f" ({versions})" if versions else "") + ".")
    out.append(f"Task: {md.get('task_type') or 'other'}." + (f" License: {license}." if license else "") + "\n")
    return out


def _card_formats(bundles: Sequence[ExportBundle]) -> list[str]:
    """The Formats section: one row per export folder."""
    out: list[str] = []
    out.append("## Formats\n")
    out.append("| format | folder | files | size | precision | exported |")
    out.append("|---|---|---|---|---|---|")
    for b in bundles:
        size = sum(f.size for f in b.files if f.rel in b.artifact_files)
        out.append(f"| {b.format} | `{b.folder or '.'}/` | {', '.join(f'`{n}`' for n in b.artifact_files)} | "
                   f"{human_size(size)} | {b.metadata.get('precision') or '—'} | {b.metadata.get('created_at') or '—'} |")
    out.append("")
    return out


def _card_signature(md: dict[str, Any]) -> list[str]:
    """The Signature section: inputs and outputs with shapes, dtypes, dynamic axes; classes."""
    out: list[str] = []
    out.append("## Signature\n")
    out.append("| | name | shape | dtype | dynamic axes |")
    out.append("|---|---|---|---|---|")
    dyn = md.get("dynamic_axes") or {}
    for name, shape in (md.get("input_shape") or {}).items():
        axes = ", ".join(f"{k}: {v}" for k, v in (dyn.get(name) or {}).items()) or "—"
        out.append(f"| input | `{name}` | {_shape(shape)} | {(md.get('input_dtype') or {}).get(name, '?')} | {axes} |")
    for name, shape in (md.get("output_shape") or {}).items():
        axes = ", ".join(f"{i}: {d}" for i, d in enumerate(shape) if isinstance(d, str)) or "—"
        out.append(f"| output | `{name}` | {_shape(shape)} | {(md.get('output_dtype') or {}).get(name, '?')} | {axes} |")
    if md.get("class_names"):
        names = [str(c) for c in md["class_names"]]
        shown = ", ".join(names[:20]) + (f", … ({len(names)} classes)" if len(names) > 20 else "")
        out.append(f"\nClasses: {shown}")
    if md.get("preprocessing"):
        out.append(f"\nPreprocessing: `{json.dumps(md['preprocessing'], sort_keys=True)}`")
    out.append("")
    return out


def _card_validation(bundles: Sequence[ExportBundle]) -> list[str]:
    """The Validation section: how each artifact compared with PyTorch."""
    out: list[str] = []
    out.append("## Validation\n")
    out.append("Each artifact was run in its own runtime on seeded inputs and compared with PyTorch's outputs.\n")
    out.append("| format | status | max abs diff | min cosine | batch sizes | input sets | rule |")
    out.append("|---|---|---|---|---|---|---|")
    for b in bundles:
        v = b.metadata.get("validation") or {}
        status = str(v.get("status") or "not run") + (f" ({v['reason']})" if v.get("reason") else "")
        batches = ", ".join(str(x) for x in v.get("batch_sizes") or []) or "—"
        rule = str(v.get("rule") or "—").replace("|", "\\|")
        out.append(f"| {b.format} | {status} | {format_number(v.get('max_abs_diff'))} | {format_number(v.get('min_cosine'), 6)} | "
                   f"{batches} | {v.get('input_sets', '—')} | {rule} |")
    out.append("")
    return out


def _card_benchmark(bundles: Sequence[ExportBundle]) -> list[str]:
    """The Benchmark section (empty when no bundle was benchmarked), each measurement once."""
    out: list[str] = []
    bench_rows = [(b, row) for b in bundles if b.bench for row in b.bench.get("rows") or [] if isinstance(row, dict)]
    if not bench_rows:
        return out
    out.append("## Benchmark\n")
    machine = next((b.bench.get("machine") for b in bundles if b.bench and b.bench.get("machine")), None)
    if isinstance(machine, dict):
        out.append("Measured on " + ", ".join(f"{k} {v}" for k, v in machine.items() if v is not None) + ".\n")
    out.append("| format | batch | p50 ms | p90 ms | p99 ms | throughput /s | vs PyTorch eager |")
    out.append("|---|---|---|---|---|---|---|")
    seen = set()
    for _b, row in bench_rows:
        key = (row.get("format"), row.get("batch"), row.get("export_dir"))
        if key in seen:
            continue
        seen.add(key)
        speed = row.get("speedup")
        out.append(f"| {row.get('format')} | {row.get('batch')} | {format_number(row.get('p50_ms'))} | {format_number(row.get('p90_ms'))} | "
                   f"{format_number(row.get('p99_ms'))} | {format_number(row.get('throughput'))} | "
                   f"{format_number(speed) + '×' if isinstance(speed, (int, float)) else '—'} |")
    out.append("")
    return out


def _card_files(bundles: Sequence[ExportBundle]) -> list[str]:
    """The Files section: every file's size and sha256, as the target holds it."""
    out: list[str] = []
    out.append("## Files (sha256)\n")
    out.append("| file | bytes | sha256 |")
    out.append("|---|---|---|")
    for b in bundles:
        for f in b.files:
            out.append(f"| `{b.in_target(f.rel)}` | {f.size} | `{f.sha256}` |")
    out.append("")
    return out


def _card_usage(bundles: Sequence[ExportBundle], pull_target: Callable[[ExportBundle], str] | None) -> list[str]:
    """The Usage section: pull and validate commands, and a runtime snippet per format."""
    out: list[str] = []
    out.append("## Usage\n")
    for b in bundles:
        out.append(f"### {b.format}" + (f" (`{b.folder}/`)" if b.folder else "") + "\n")
        if pull_target is not None:
            out.append("Download and check every file against its sha256, then re-validate:\n")
            local = f"./{b.model_name}-{b.folder.rsplit('/', 1)[-1] or b.format}"
            out.append(f"```bash\npip install modelport\nmodelport pull {pull_target(b)} {local}\nmodelport validate {local}\n```\n")
        spec = _format_spec(b.format)
        package, snippet = getattr(spec, "runtime_library", ""), getattr(spec, "usage", "")
        if snippet:
            path = _main_file(b).rsplit("/", 1)[-1] if pull_target is not None else _main_file(b)
            out.append(f"Run it with {package} (`pip install {package}`):\n")
            prelude = "import numpy as np\n" + f"inputs = {_feed(b.metadata)}\n"
            out.append("```python\n" + prelude + snippet.format(path=path) + "\n```\n")
        else:
            out.append(f"Load `{_main_file(b)}` with the {b.format} runtime.\n")
    return out

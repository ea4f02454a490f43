"""First-party plugins the core knows by name, so a missing one shows how to install it — in a form that works
where the user is: from a source checkout (``pip install -c constraints.txt ./plugins/export-onnx``) or from a
package index (``pip install modelport-export-onnx``)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    kind: str  # "format", "publisher" or "source"
    distribution: str
    display_name: str
    note: str = ""

    @property
    def folder(self) -> str:
        """The distribution's folder in the source repository (``plugins/export-onnx``)."""
        return "plugins/" + self.distribution.removeprefix("modelport-")

    @property
    def install(self) -> str:
        return install_hint(self.distribution)


CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry("onnx", "format", "modelport-export-onnx", "ONNX"),
    CatalogEntry("torchscript", "format", "modelport-export-torchscript", "TorchScript"),
    CatalogEntry("openvino", "format", "modelport-export-openvino", "OpenVINO IR"),
    CatalogEntry("tensorrt", "format", "modelport-export-tensorrt", "TensorRT"),
    CatalogEntry("coreml", "format", "modelport-export-coreml", "Core ML"),
    CatalogEntry("tflite", "format", "modelport-export-tflite", "TFLite (LiteRT)"),
    CatalogEntry("executorch", "format", "modelport-export-executorch", "ExecuTorch"),
    CatalogEntry("pytorch", "format", "modelport-export-pytorch", "PyTorch state dict (safetensors)"),
    CatalogEntry("hf", "publisher", "modelport-publish-hf", "Hugging Face Hub"),
    CatalogEntry("github", "publisher", "modelport-publish-github", "GitHub Releases"),
    CatalogEntry("triton", "publisher", "modelport-publish-triton", "Triton model repository"),
    CatalogEntry("hf", "source", "modelport-source-hf", "Hugging Face transformers (hf:PATH_OR_ID)"),
)


def catalog_entry(name: str, kind: str | None = None) -> CatalogEntry | None:
    for entry in CATALOG:
        if entry.name == name and (kind is None or entry.kind == kind):
            return entry
    return None


def _checkout_of(core_dir: Path) -> Path | None:
    root = core_dir.parent
    if (core_dir / "pyproject.toml").is_file() and (root / "plugins").is_dir() and (root / "constraints.txt").is_file():
        return root
    return None


@functools.lru_cache(maxsize=1)
def source_checkout() -> Path | None:
    """The repository root when this modelport was installed from a source checkout, else None.

    pip records a local-folder install in the distribution's ``direct_url.json``; an editable install of the
    src layout also shows through the package's own location (``core/src/modelport``).
    """
    import importlib.metadata as im
    import json
    from urllib.parse import unquote, urlparse

    try:
        text = im.distribution("modelport").read_text("direct_url.json")
    except im.PackageNotFoundError:
        text = None
    if text:
        try:
            url = json.loads(text).get("url", "")
        except ValueError:
            url = ""
        if url.startswith("file://"):
            found = _checkout_of(Path(unquote(urlparse(url).path)))
            if found is not None:
                return found
    here = Path(__file__).resolve().parents[1]  # core/src/modelport in an editable install
    return _checkout_of(here.parents[1]) if len(here.parents) > 1 else None


def _shown_path(path: Path) -> str:
    """``path`` as the user should type it from the current folder: relative inside it, absolute outside."""
    try:
        rel = os.path.relpath(path, Path.cwd())
    except ValueError:  # another drive on Windows
        return str(path)
    if rel.startswith(".."):
        return str(path)
    return "." if rel == "." else f"./{rel}"


def install_hint(distribution: str, *, extra: str | None = None, index_url: str | None = None) -> str:
    """The pip command that installs ``distribution`` from here: its folder in a source checkout (with the
    repository's torch constraints), else its name on a package index."""
    root = source_checkout()
    suffix = f"[{extra}]" if extra else ""
    index = f" --extra-index-url {index_url}" if index_url else ""
    folder = "core" if distribution == "modelport" else "plugins/" + distribution.removeprefix("modelport-")
    if root is not None and (root / folder / "pyproject.toml").is_file():
        constraints = _shown_path(root / "constraints.txt")
        target = _shown_path(root / folder) + suffix
        quoted = f"'{target}'" if extra else target
        return f"pip install -c {constraints} {quoted}{index}"
    target = distribution + suffix
    return f"pip install {f'{target!r}' if extra else target}{index}"

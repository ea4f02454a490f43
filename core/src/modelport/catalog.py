"""First-party plugins the core knows by name, so a missing one shows how to install it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    kind: str  # "format", "publisher" or "source"
    distribution: str
    display_name: str
    note: str = ""

    @property
    def install(self) -> str:
        return f"pip install {self.distribution}"


CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry("onnx", "format", "modelport-export-onnx", "ONNX"),
    CatalogEntry("torchscript", "format", "modelport-export-torchscript", "TorchScript"),
    CatalogEntry("openvino", "format", "modelport-export-openvino", "OpenVINO IR"),
    CatalogEntry("tensorrt", "format", "modelport-export-tensorrt", "TensorRT"),
    CatalogEntry("coreml", "format", "modelport-export-coreml", "Core ML"),
    CatalogEntry("tflite", "format", "modelport-export-tflite", "TFLite (LiteRT)"),
    CatalogEntry("executorch", "format", "modelport-export-executorch", "ExecuTorch"),
    CatalogEntry("hf", "publisher", "modelport-publish-hf", "Hugging Face Hub"),
    CatalogEntry("github", "publisher", "modelport-publish-github", "GitHub Releases"),
    CatalogEntry("hf", "source", "modelport-source-hf", "Hugging Face transformers (hf:PATH_OR_ID)"),
)


def catalog_entry(name: str, kind: str | None = None) -> CatalogEntry | None:
    for entry in CATALOG:
        if entry.name == name and (kind is None or entry.kind == kind):
            return entry
    return None

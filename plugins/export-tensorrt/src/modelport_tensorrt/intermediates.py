"""``modelport debug`` for TensorRT: each module built alone into an engine with the artifact's precision flags.

Marking every tensor of a network as an output is what runs out of memory in other tools, and an engine keeps
no module boundaries. So each module the core asks about (a bounded set per round) is exported to ONNX on the
inputs PyTorch gave it, built into its own engine with the artifact's ``fp16`` / ``int8`` flags, and run: the row
is that module's own error under TensorRT's kernels. Needs TensorRT and a CUDA device; without them the sub-ONNX
is still written (so an export problem is named) and the build says what is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelport import Artifact, ConfigError, missing_modules
from modelport.plugins.format_base import PerModuleIntermediates


class TensorRTSubengines(PerModuleIntermediates):
    """Per-module mode: one ONNX sub-graph and one engine per module, run on PyTorch's inputs to it."""

    format = "tensorrt"
    redo = "builds each module again"
    refusal = "cannot be exported to ONNX alone"

    def configure(self, artifact: Artifact) -> None:
        opts = {**(artifact.options or {}), **((artifact.details or {}).get("builder") or {})}
        self.fp16 = bool(opts.get("fp16")) or artifact.precision == "fp16"
        self.int8 = bool(opts.get("int8")) or artifact.precision == "int8"
        self.device = int(opts.get("device") or 0)
        self.notes = ["tensorrt: each module was built into its own engine with the artifact's precision flags "
                      "and run on the inputs PyTorch gave it"]
        if self.int8:
            self.notes.append("tensorrt: int8 sub-engines use TensorRT's default dynamic ranges, not the "
                              "artifact's calibration cache")
        self.runtime = "TensorRT"

    def tap(self, module: str) -> str:
        return f"{module} (own engine{', fp16' if self.fp16 else ''}{', int8' if self.int8 else ''})"

    def convert(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], folder: Path) -> Path:
        """The module's own ONNX file (a module torch.onnx refuses is a row); the engine is built in execute."""
        return self.sub_onnx(name, args, kwargs, folder)

    def execute(self, converted: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self.build_and_run(converted, args)

    def sub_onnx(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], folder: Path) -> Path:
        """Export module ``name`` alone to ``folder/NAME.onnx`` (inputs ``input_0``..., one output)."""
        import torch

        path = folder / f"{name or 'model'}.onnx"
        names = [f"input_{i}" for i in range(len(args))]
        torch.onnx.export(self.model.get_submodule(name), args, str(path), kwargs=kwargs or None,
                          input_names=names, dynamo=False)
        return path

    def build_and_run(self, onnx_path: Path, args: tuple[Any, ...]) -> Any:
        """Build an engine from ``onnx_path`` and run it once: the runtime call (TensorRT + CUDA)."""
        missing = missing_modules("tensorrt")
        if missing:
            raise ConfigError("tensorrt: debug builds an engine per module and needs TensorRT and a CUDA device "
                              "(pip install 'modelport-export-tensorrt[tensorrt]' on a machine with an NVIDIA GPU)")
        import numpy as np
        import tensorrt as trt

        from modelport_tensorrt.build import make_logger
        from modelport_tensorrt.runtime import TensorRTRunner

        logger = make_logger(trt)
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):
            raise ConfigError(f"tensorrt: the parser refuses {onnx_path.name}: {parser.get_error(0)}")
        config = builder.create_builder_config()
        if self.fp16:
            config.set_flag(trt.BuilderFlag.FP16)
        if self.int8:
            config.set_flag(trt.BuilderFlag.INT8)
        data = builder.build_serialized_network(network, config)
        if data is None:
            raise ConfigError(f"tensorrt: building {onnx_path.name} failed: {'; '.join(logger.errors[:2])}")
        engine = onnx_path.with_suffix(".engine")
        engine.write_bytes(bytes(data))
        runner = TensorRTRunner(engine, device=self.device)
        feed = {f"input_{i}": a.numpy() for i, a in enumerate(args)}
        return np.asarray(runner(feed)[0])

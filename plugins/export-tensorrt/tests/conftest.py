"""Fixtures: the example models, and an export path whose TensorRT build step is replaced by a recorder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from modelport.testing import load_module
from trt_test_support import EXAMPLES, onnx_summary

ENGINE_BYTES = b"\x00engine-bytes-from-the-builder\xff" * 64


@pytest.fixture(scope="session")
def examples() -> ModuleType:
    return load_module(EXAMPLES, "modelport_examples_models")


@pytest.fixture(autouse=True)
def private_probe_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own availability cache, so no answer leaks between tests or from the user's home."""
    monkeypatch.setenv("MODELPORT_CACHE_DIR", str(tmp_path_factory.mktemp("probe-cache")))


@dataclass
class BuildRecorder:
    """Stands in for ``build.build_engine``: records the plan and the ONNX it was handed, returns fixed bytes."""

    calls: list[Any] = field(default_factory=list)
    onnx: list[dict[str, Any]] = field(default_factory=list)
    onnx_files: list[list[str]] = field(default_factory=list)

    def __call__(self, plan: Any) -> tuple[bytes, dict[str, Any]]:
        self.calls.append(plan)
        # the upstream folder is deleted after the export: read the ONNX while the build would
        self.onnx.append(onnx_summary(plan.onnx_path))
        self.onnx_files.append(sorted(p.name for p in Path(plan.onnx_path).parent.iterdir()))
        if plan.int8 and plan.calibration_cache is not None:
            plan.calibration_cache.write_bytes(b"calibration table")
        outputs = list(self.onnx[-1]["outputs"])
        # the profile as build_engine reports it when the parsed network keeps every declared axis dynamic
        profile = plan.profile.to_dict() if plan.profile else None
        return ENGINE_BYTES, {"tensorrt": "not run (build step replaced in tests)", "outputs": outputs,
                              "profile": profile, "notes": []}


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> BuildRecorder:
    """Make TensorRT look available and replace ONLY the GPU build step (``build.build_engine``) with a recorder.

    Everything else is real: option checks, the core's pipeline, the ONNX plugin's export of the upstream
    artifact, the plan handed to the builder, writing model.engine, export.json and metadata.json. The build
    step is replaced because it needs TensorRT and an NVIDIA GPU, which this machine does not have.
    """
    import modelport_tensorrt.build as build
    import modelport_tensorrt.probe as probe
    from modelport import Availability

    rec = BuildRecorder()
    monkeypatch.setattr(probe, "tensorrt_availability", lambda: Availability.ok())
    monkeypatch.setattr(build, "build_engine", rec)
    return rec

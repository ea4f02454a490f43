"""Real TensorRT builds on a real GPU: the bundled CNN and transformer at fp32 / fp16 (and the CNN at int8),
validated by the core against PyTorch, with build time and latency against PyTorch on the same GPU.

Marked ``gpu`` and skipped, with the reason, where TensorRT cannot run (no TensorRT, no CUDA device). Run them
with ``pytest -m gpu -s plugins/export-tensorrt/tests``; the measured numbers are printed and, when
``MODELPORT_GPU_RESULTS`` names a file, written there as JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import modelport
import numpy as np
import pytest
from modelport.testing import read_record, run_cli
from modelport_tensorrt.probe import tensorrt_availability
from trt_test_support import EXAMPLES

AVAILABILITY = tensorrt_availability()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not AVAILABILITY.export,
                       reason=f"needs TensorRT and an NVIDIA GPU: {AVAILABILITY.reason} ({AVAILABILITY.fix})"),
]

RESULTS: list[dict[str, Any]] = []
MODELS = {
    "small_cnn": (["--vision", "3x32x32"], lambda: modelport.vision(3, 32, 32, batch=8)),
    "small_transformer": (["--text", "16"], lambda: modelport.text(16, batch=8)),
}


def _latency_ms(fn: Any, warmup: int = 20, runs: int = 200) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"p50": round(statistics.median(times), 4), "p90": round(times[int(0.9 * len(times))], 4)}


def _torch_cuda_latency(model: Any, arrays: dict[str, np.ndarray], half: bool) -> dict[str, float]:
    """PyTorch eager on the same GPU, including the same host→device and device→host copies as the engine runner."""
    import torch
    from modelport.engine.outputs import flatten_outputs

    model = model.cuda().eval()
    if half:
        model = model.half()

    def run() -> None:
        args = []
        for a in arrays.values():
            t = torch.from_numpy(a).cuda()
            args.append(t.half() if half and t.is_floating_point() else t)
        with torch.no_grad():
            out = model(*args)
        for _, t in flatten_outputs(out):
            t.cpu()

    return _latency_ms(run)


def _record(entry: dict[str, Any]) -> None:
    RESULTS.append(entry)
    print(json.dumps(entry))
    path = os.environ.get("MODELPORT_GPU_RESULTS")
    if path:
        Path(path).write_text(json.dumps(RESULTS, indent=2), encoding="utf-8")


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("model_name", list(MODELS))
def test_engine_builds_validates_and_is_timed_against_pytorch(tmp_path: Path, examples: ModuleType,
                                                              model_name: str, precision: str) -> None:
    import tensorrt as trt
    from modelport.engine.pipeline import artifact_from_dir
    from modelport_tensorrt.runtime import TensorRTRunner

    input_args, spec_at_8 = MODELS[model_name]
    out = tmp_path / f"{model_name}-{precision}"
    args = ["export", f"{EXAMPLES}:{model_name}", *input_args, "--dynamic-batch", "-f", "tensorrt",
            "--output-dir", str(out), "-q"]
    if precision == "fp16":
        args += ["-o", "fp16=true"]
    t0 = time.perf_counter()
    proc = run_cli(*args, timeout=900)
    export_s = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = read_record(out)
    assert record["validation"]["status"] == "passed"
    assert record["validation"]["batch_sizes"] == [1, 4, 8]
    assert record["validation"]["runtime"].startswith("TensorRT ")
    assert record["precision"] == precision

    # the file is TensorRT's own serialization: a plain Runtime loads it with no offset
    engine = trt.Runtime(trt.Logger(trt.Logger.ERROR)).deserialize_cuda_engine((out / "model.engine").read_bytes())
    assert engine is not None

    runner = TensorRTRunner.for_artifact(artifact_from_dir(out, record), {})
    arrays = spec_at_8().make_numpy(seed=3)
    outputs = runner(arrays)
    assert [o.shape[0] for o in outputs] == [8] * len(outputs)
    trt_ms = _latency_ms(lambda: runner(arrays))
    torch_ms = _torch_cuda_latency(getattr(examples, model_name)(), arrays, half=precision == "fp16")
    _record({
        "model": model_name, "precision": precision, "gpu": record["details"]["device"]["name"],
        "tensorrt": record["details"]["tensorrt"], "build_s": record["details"]["build_s"],
        "export_s_total": round(export_s, 2), "engine_bytes": record["details"]["engine_bytes"],
        "max_abs_diff": record["validation"]["max_abs_diff"], "batch": 8,
        "tensorrt_ms": trt_ms, "pytorch_cuda_ms": torch_ms,
    })


def test_int8_cnn_calibrates_on_sample_inputs_and_passes_the_int8_profile(tmp_path: Path) -> None:
    samples = tmp_path / "samples.npz"
    np.savez(samples, input=np.random.default_rng(0).standard_normal((64, 3, 32, 32), dtype=np.float32))
    out = tmp_path / "int8"
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "--dynamic-batch", "-f", "tensorrt",
                   "-o", "int8=true", "--sample-inputs", str(samples), "--output-dir", str(out), "-q", timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = read_record(out)
    assert record["precision"] == "int8"
    assert record["validation"]["status"] == "passed"
    assert (out / "calibration.cache").stat().st_size > 0
    assert record["details"]["calibration"]["samples"] == 64

    # the cache alone rebuilds the engine without calibrating again (no --sample-inputs)
    again = tmp_path / "int8-again"
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "--dynamic-batch", "-f", "tensorrt",
                   "-o", "int8=true", "-o", f"calibration_cache={out / 'calibration.cache'}",
                   "--output-dir", str(again), "-q", timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_timing_cache_is_written_and_reused(tmp_path: Path) -> None:
    cache = tmp_path / "trt.timing"
    for i in range(2):
        proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "-f", "tensorrt", "-o",
                       f"timing_cache={cache}", "--output-dir", str(tmp_path / f"run{i}"), "-q", timeout=900)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert cache.stat().st_size > 0


def test_a_batch_above_the_profile_is_refused_with_the_range(tmp_path: Path) -> None:
    from modelport.engine.pipeline import artifact_from_dir
    from modelport_tensorrt.runtime import TensorRTRunner

    out = tmp_path / "small-profile"
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "--dynamic-batch", "-f", "tensorrt",
                   "-o", "max_batch=4", "--no-validate", "--output-dir", str(out), "-q", timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runner = TensorRTRunner.for_artifact(artifact_from_dir(out), {})
    assert runner({"input": np.zeros((4, 3, 32, 32), np.float32)})[0].shape == (4, 10)
    with pytest.raises(ValueError, match=r"input input has shape 8x3x32x32; this engine accepts 1x3x32x32 \.\. 4x3x32x32"):
        runner({"input": np.zeros((8, 3, 32, 32), np.float32)})

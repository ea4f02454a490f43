"""The ``export`` hook's work: check the options, get the ONNX artifact from the core, build, describe.

Option problems are ConfigErrors (exit 3) raised before any time is spent exporting. The GPU part — parsing and
building — is ``build.build_engine``; everything around it runs (and is tested) without TensorRT.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport import Artifact, ConfigError, ExportRequest

from modelport_tensorrt import CALIBRATION_FILE, ENGINE_FILE, FORMAT, build
from modelport_tensorrt.profiles import ShapeProfile, derive_profile, map_inputs

MAX_OPTIMIZATION_LEVEL = 5
# appended by the core to a numeric validation failure: where to look first, per precision
VALIDATION_HINTS = {
    "fp32": "TF32 is off, so an fp32 engine should match closely; compare with `-f onnx` of the same model to see "
            "whether the difference comes from the ONNX export",
    "fp16": "TensorRT picks fp16 kernels where faster (reduced-precision accumulation); rebuild without fp16=true, or "
            "loosen the tolerance with --atol/--rtol if the difference is acceptable",
    "int8": "int8 accuracy depends on the calibration data: pass --sample-inputs that look like real inputs "
            "(hundreds of samples), or use fp16=true",
}


@dataclass
class BuildPlan:
    """Everything ``build.build_engine`` needs, resolved and checked: paths, precision, profile, builder knobs."""

    onnx_path: Path
    engine_path: Path
    input_map: dict[str, str | None]
    input_dtypes: dict[str, str]
    profile: ShapeProfile | None
    spec: Any
    fp16: bool = False
    int8: bool = False
    calibration_samples: list[dict[str, Any]] | None = None
    calibration_cache: Path | None = None
    calibration_source: Path | None = None
    workspace_gib: float | None = None
    optimization_level: int | None = None
    timing_cache: Path | None = None
    device: int = 0
    notes: list[str] = field(default_factory=list)


def check_options(request: ExportRequest) -> ShapeProfile | None:
    """Refuse option combinations that cannot work (exit 3) and return the shape profile from the input spec."""
    opts = request.options
    if opts.get("int8") and not request.sample_inputs and not opts.get("calibration_cache"):
        raise ConfigError("tensorrt: int8=true calibrates on real inputs; pass --sample-inputs FILE.npz "
                          "(or -o calibration_cache=FILE from an earlier int8 build)")
    if opts.get("int8") and request.sample_inputs and not request.inputs.dynamic_batch and request.inputs.batch_size != 1:
        raise ConfigError(f"tensorrt: int8 calibration feeds one sample at a time, but the engine's batch is fixed at "
                          f"{request.inputs.batch_size}; export with --dynamic-batch or an example batch of 1")
    cache = opts.get("calibration_cache")
    if cache and not opts.get("int8"):
        raise ConfigError("tensorrt: calibration_cache is only used with int8=true")
    if cache and not Path(cache).is_file():
        raise ConfigError(f"tensorrt: calibration_cache {cache}: no such file")
    workspace = opts.get("workspace")
    if workspace is not None and not float(workspace) > 0:
        raise ConfigError(f"tensorrt: workspace={workspace} must be a positive number of GiB")
    level = opts.get("builder_optimization_level")
    if level is not None and not 0 <= int(level) <= MAX_OPTIMIZATION_LEVEL:
        raise ConfigError(f"tensorrt: builder_optimization_level={level} must be between 0 and {MAX_OPTIMIZATION_LEVEL}")
    device = opts.get("device")
    if device is not None and int(device) < 0:
        raise ConfigError(f"tensorrt: device={device} must be a CUDA device index (0, 1, ...)")
    timing = opts.get("timing_cache")
    if timing:
        p = Path(timing)
        if p.exists() and not p.is_file():
            raise ConfigError(f"tensorrt: timing_cache {p} exists and is not a file")
        if not p.exists() and p.parent != Path("") and not p.parent.is_dir():
            raise ConfigError(f"tensorrt: timing_cache {p}: folder {p.parent} does not exist")
    return derive_profile(
        request.inputs, max_batch=opts.get("max_batch"), min_shape=opts.get("min_shape"),
        opt_shape=opts.get("opt_shape"), max_shape=opts.get("max_shape"),
    )


def upstream_options(options: dict[str, Any]) -> dict[str, Any]:
    """What the engine asks of the ONNX export: the opset, simplification, exporter, and always fp32.

    TensorRT does reduced precision itself (fp16 / int8 builder flags), so the ONNX it parses stays fp32.
    Options left at None are not sent (the ONNX plugin's own default applies).
    """
    wanted = {"opset": options.get("opset"), "simplify": options.get("simplify"),
              "exporter": options.get("exporter"), "fp16": False}
    return {k: v for k, v in wanted.items() if v is not None}


def export_engine(request: ExportRequest) -> Artifact:
    """The ``export`` hook for format ``tensorrt``."""
    opts = request.options
    profile = check_options(request)
    up_opts = upstream_options(opts)
    onnx_art = request.upstream("onnx", **up_opts)
    onnx_inputs = list(onnx_art.input_names or request.input_names)
    input_map = map_inputs(request.input_names, onnx_inputs)
    for core, net in input_map.items():
        if net is None:
            request.note(f"tensorrt: the ONNX exporter dropped input {core!r} (the model does not use it); "
                         "the engine ignores it")
    workdir = request.workdir
    cal_cache = workdir / CALIBRATION_FILE if opts.get("int8") else None
    plan = BuildPlan(
        onnx_path=Path(onnx_art.path), engine_path=workdir / ENGINE_FILE, input_map=input_map, input_dtypes={t.name: t.dtype for t in request.inputs.tensors}, profile=profile,
        spec=request.inputs, fp16=bool(opts.get("fp16")), int8=bool(opts.get("int8")),
        calibration_samples=(list(request.sample_inputs) if opts.get("int8") and request.sample_inputs else None),
        calibration_cache=cal_cache,
        calibration_source=Path(opts["calibration_cache"]) if opts.get("calibration_cache") else None,
        workspace_gib=float(opts["workspace"]) if opts.get("workspace") is not None else None,
        optimization_level=int(opts["builder_optimization_level"]) if opts.get("builder_optimization_level") is not None else None,
        timing_cache=Path(opts["timing_cache"]) if opts.get("timing_cache") else None,
        device=int(opts.get("device") or 0),
    )
    engine, result = build.build_engine(plan)
    # exactly TensorRT's bytes: a header of our own would make trtexec and every other runtime reject the file
    build.write_atomic(plan.engine_path, engine)
    result["engine_bytes"] = plan.engine_path.stat().st_size
    del engine
    for note in [*(profile.notes if profile else []), *result.get("notes", [])]:
        request.note(note)

    files = [ENGINE_FILE]
    if cal_cache is not None and cal_cache.is_file():
        files.append(CALIBRATION_FILE)
    precision = "int8" if plan.int8 else "fp16" if plan.fp16 else "fp32"
    details: dict[str, Any] = {
        **{k: v for k, v in result.items() if k != "notes"},
        "input_map": input_map,
        "requested_profile": profile.to_dict() if profile else None,
        "upstream": {
            "format": "onnx", "options": up_opts, "opset": onnx_art.details.get("opset"),
            "exporter": onnx_art.details.get("exporter"), "nodes": onnx_art.details.get("nodes"),
            "simplify": onnx_art.details.get("simplify"),
        },
        "builder": {
            "fp16": plan.fp16, "int8": plan.int8, "workspace_gib": plan.workspace_gib,
            "builder_optimization_level": plan.optimization_level, "device": plan.device,
            "timing_cache": str(plan.timing_cache) if plan.timing_cache else None,
        },
    }
    details["validation_hint"] = VALIDATION_HINTS[precision]
    if plan.int8:
        details["quantization"] = result.get("calibration") or {"mode": "int8"}
    engine_inputs = [input_map[n] for n in request.input_names if input_map[n] is not None]
    in_dtypes = result.get("input_dtypes") or {}
    changed = {n: d for n, d in in_dtypes.items() if d != plan.input_dtypes.get(_core_name(input_map, n))}
    return Artifact(
        format=FORMAT, path=plan.engine_path, files=files, precision=precision, details=details,
        input_names=engine_inputs if engine_inputs != list(request.input_names) else None,
        output_names=onnx_art.output_names, input_dtypes=changed or None,
    )


def _core_name(input_map: dict[str, str | None], net: str) -> str | None:
    return next((c for c, n in input_map.items() if n == net), None)

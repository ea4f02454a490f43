"""The input spec from the export flags (--input, --vision, --text, --sample-inputs, --config keys) or from
what the model source knows; shared by ``modelport export`` and ``modelport optimize``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError, ModelportError


@dataclass(frozen=True)
class InputFlags:
    """The flags and config keys an input spec is built from (``build_input_spec``'s keywords, grouped)."""

    inputs: Sequence[str]
    vision: str | None
    text: str | None
    batch: int | None
    dynamic: Sequence[str]
    dynamic_batch: bool
    sample_arrays: Any
    model_ref: str | None
    config: dict[str, Any]
    trust_code: bool = False


def build_input_spec(*, source_spec: Any = None, **flags: Any) -> Any:
    """The input spec from --input / --vision / --text / --sample-inputs / what the model source knows.

    ``flags`` are :class:`InputFlags`' fields as keywords (``inputs=``, ``vision=``, ... ``trust_code=``).
    """
    f = InputFlags(**flags)
    given = sum(bool(x) for x in (f.inputs, f.vision, f.text))
    if given > 1:
        raise ConfigError("use one of --input, --vision or --text")
    b = f.batch or int(f.config.get("batch_size") or 1)
    if b <= 0:
        raise ConfigError("--batch must be a positive integer")
    spec = _base_spec(f, b, source_spec)
    _apply_dynamic(spec, f.config, f.dynamic_batch, f.dynamic)
    if f.sample_arrays is not None:
        _check_samples(spec, f.sample_arrays)
    return spec


def _base_spec(f: InputFlags, b: int, source_spec: Any) -> Any:
    """The spec from the first thing given, in order: --input, --vision, --text, config, samples, source, .pt2."""
    from modelport.engine.inputs import InputSpec, parse_input, parse_text, parse_vision, spec_from_samples

    if f.inputs:
        tensors = [parse_input(s) for s in f.inputs]
        if f.batch:
            for t in tensors:
                t.shape = (f.batch, *t.shape[1:])
        return InputSpec(tensors)
    if f.vision:
        return parse_vision(f.vision, batch=b)
    if f.text:
        return parse_text(f.text, batch=b)
    if f.config.get("input_shape"):
        return _config_shape_spec(f.config["input_shape"])
    if f.sample_arrays is not None:
        return spec_from_samples(f.sample_arrays, batch=b)
    if source_spec is not None:
        if f.batch:
            for t in source_spec.tensors:
                t.shape = (f.batch, *t.shape[1:])
        return source_spec
    if f.model_ref and f.model_ref.endswith(".pt2") and Path(f.model_ref).is_file():
        return _pt2_spec(f.model_ref, f.trust_code)
    raise ConfigError("no input spec: give --input NAME:1x3x224x224[:float32], --vision 3x224x224 or --text SEQ_LEN[:VOCAB]")


def _config_shape_spec(shape: Any) -> Any:
    """One float32 ``input`` of the --export-config ``input_shape`` (the convention's single-input models)."""
    from modelport.engine.inputs import InputSpec

    if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
        raise ConfigError("--export-config input_shape must be a list of integers")
    from modelport.engine.inputs import TensorSpec
    from modelport.engine.limits import check_shape

    check_shape(shape, "--export-config input_shape")

    return InputSpec([TensorSpec("input", tuple(shape), "float32")])


def _pt2_spec(model_ref: str, trust_code: bool) -> Any:
    """The input shapes a .pt2 archive records; a config error when they cannot be read."""
    from modelport.models.loading import input_spec_from_pt2

    try:
        found = input_spec_from_pt2(model_ref, trust_code=trust_code)
    except ModelportError:
        raise
    except Exception:
        found = None
    if found is None:
        raise ConfigError("could not read the input shapes from the .pt2; give --input NAME:SHAPE[:DTYPE]")
    return found


def _apply_dynamic(spec: Any, config: dict[str, Any], dynamic_batch: bool, dynamic: Sequence[str]) -> None:
    """Mark the axes --dynamic-batch, the config's ``dynamic_axes`` / ``dynamic`` and --dynamic make dynamic."""
    from modelport.engine.limits import check_dynamic_axes

    check_dynamic_axes(config.get("dynamic_axes"))
    if dynamic_batch or config.get("dynamic_axes") is True or config.get("dynamic") is True:
        spec.with_dynamic_batch()
    elif isinstance(config.get("dynamic_axes"), dict):
        for name, axes in config["dynamic_axes"].items():
            items = axes.items() if isinstance(axes, dict) else [(a, None) for a in axes]
            for axis, label in items:
                spec.with_dynamic([f"{name}:{axis}" + (f"={label}" if label else "")])
    spec.with_dynamic(list(dynamic))


def _check_samples(spec: Any, sample_arrays: Any) -> None:
    """Every input has a --sample-inputs array of its shape (past the batch axis)."""
    for t in spec.tensors:
        arr = sample_arrays.get(t.name)
        if arr is None:
            raise ConfigError(f"--sample-inputs has no array named {t.name!r}")
        if tuple(arr.shape[1:]) != t.shape[1:]:
            raise ConfigError(f"--sample-inputs {t.name}: sample shape {list(arr.shape[1:])} != input shape {list(t.shape[1:])}")

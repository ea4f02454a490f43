"""The input spec from the export flags (--input, --vision, --text, --sample-inputs, --config keys) or from
what the model source knows; shared by ``modelport export`` and ``modelport optimize``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError, ModelportError


def build_input_spec(
    *, inputs: Sequence[str], vision: str | None, text: str | None, batch: int | None, dynamic: Sequence[str],
    dynamic_batch: bool, sample_arrays: Any, model_ref: str | None, config: dict[str, Any], trust_code: bool = False,
    source_spec: Any = None,
) -> Any:
    """The input spec from --input / --vision / --text / --sample-inputs / what the model source knows."""
    from modelport.inputs import InputSpec, parse_input, parse_text, parse_vision, spec_from_samples

    given = sum(bool(x) for x in (inputs, vision, text))
    if given > 1:
        raise ConfigError("use one of --input, --vision or --text")
    b = batch or int(config.get("batch_size") or 1)
    if b <= 0:
        raise ConfigError("--batch must be a positive integer")
    if inputs:
        tensors = [parse_input(s) for s in inputs]
        if batch:
            for t in tensors:
                t.shape = (batch, *t.shape[1:])
        spec = InputSpec(tensors)
    elif vision:
        spec = parse_vision(vision, batch=b)
    elif text:
        spec = parse_text(text, batch=b)
    elif config.get("input_shape"):
        shape = config["input_shape"]
        if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
            raise ConfigError("--export-config input_shape must be a list of integers")
        from modelport.inputs import TensorSpec
        from modelport.limits import check_shape

        check_shape(shape, "--export-config input_shape")

        spec = InputSpec([TensorSpec("input", tuple(shape), "float32")])
    elif sample_arrays is not None:
        spec = spec_from_samples(sample_arrays, batch=b)
    elif source_spec is not None:
        spec = source_spec
        if batch:
            for t in spec.tensors:
                t.shape = (batch, *t.shape[1:])
    elif model_ref and model_ref.endswith(".pt2") and Path(model_ref).is_file():
        from modelport.loading import input_spec_from_pt2

        try:
            found = input_spec_from_pt2(model_ref, trust_code=trust_code)
        except ModelportError:
            raise
        except Exception:
            found = None
        if found is None:
            raise ConfigError("could not read the input shapes from the .pt2; give --input NAME:SHAPE[:DTYPE]")
        spec = found
    else:
        raise ConfigError("no input spec: give --input NAME:1x3x224x224[:float32], --vision 3x224x224 or --text SEQ_LEN[:VOCAB]")
    from modelport.limits import check_dynamic_axes

    check_dynamic_axes(config.get("dynamic_axes"))
    if dynamic_batch or config.get("dynamic_axes") is True or config.get("dynamic") is True:
        spec.with_dynamic_batch()
    elif isinstance(config.get("dynamic_axes"), dict):
        for name, axes in config["dynamic_axes"].items():
            items = axes.items() if isinstance(axes, dict) else [(a, None) for a in axes]
            for axis, label in items:
                spec.with_dynamic([f"{name}:{axis}" + (f"={label}" if label else "")])
    spec.with_dynamic(list(dynamic))
    if sample_arrays is not None:
        for t in spec.tensors:
            arr = sample_arrays.get(t.name)
            if arr is None:
                raise ConfigError(f"--sample-inputs has no array named {t.name!r}")
            if tuple(arr.shape[1:]) != t.shape[1:]:
                raise ConfigError(f"--sample-inputs {t.name}: sample shape {list(arr.shape[1:])} != input shape {list(t.shape[1:])}")
    return spec

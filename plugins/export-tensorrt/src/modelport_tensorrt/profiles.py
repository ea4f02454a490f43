"""Optimization profiles: the min / opt / max shape of every dynamic input, from the input spec and the options.

Pure functions on the core's :class:`~modelport.InputSpec` — no TensorRT, no torch — so they are tested here.

Defaults, per input of the spec:

* a static axis is its example size in all three shapes;
* a dynamic batch axis (axis 0) runs from 1 (min) through the example batch (opt) to ``max_batch``
  (32 unless set, and never below the example batch);
* any other dynamic axis (a sequence length) runs from 1 to its example size, with opt the example size:
  a model may cap it (position embeddings) in ways TensorRT only finds while building, so a larger maximum is
  the user's call (``-o max_shape=input_ids:32x128``).

``min_shape`` / ``opt_shape`` / ``max_shape`` override whole shapes per input (``input:1x3x32x32,other:1x16``);
an input not named takes the values of overridden inputs that share a dynamic-axis label (``batch``, ``seq``),
else the defaults.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelport import ConfigError, ExportFailed, InputSpec

DEFAULT_MAX_BATCH = 32
_NAME = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_ENTRY = re.compile(rf"^\s*({_NAME})\s*:\s*(\d+(?:\s*[xX×]\s*\d+)*)\s*$")

Shape = tuple[int, ...]


@dataclass
class ShapeProfile:
    """min / opt / max shape per input name (only inputs that have a dynamic axis), plus why each was chosen."""

    min: dict[str, Shape] = field(default_factory=dict)
    opt: dict[str, Shape] = field(default_factory=dict)
    max: dict[str, Shape] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def names(self) -> list[str]:
        return list(self.opt)

    def to_dict(self) -> dict[str, dict[str, list[int]]]:
        """``{input: {"min": [...], "opt": [...], "max": [...]}}`` as recorded in export.json and metadata.json."""
        return {n: {"min": list(self.min[n]), "opt": list(self.opt[n]), "max": list(self.max[n])} for n in self.opt}

    def contains(self, name: str, shape: Sequence[int]) -> bool:
        """Whether ``shape`` lies within the profile of input ``name`` (inputs without a profile: exact)."""
        if name not in self.opt:
            return True
        lo, hi = self.min[name], self.max[name]
        return len(shape) == len(lo) and all(a <= s <= b for a, s, b in zip(lo, shape, hi))


def parse_shapes(text: str | None, option: str) -> dict[str, Shape]:
    """Parse ``input:1x3x32x32,other:1x16`` into ``{name: shape}``; a malformed string is a ConfigError (exit 3)."""
    if text is None or not str(text).strip():
        return {}
    out: dict[str, Shape] = {}
    for raw in str(text).split(","):
        m = _ENTRY.match(raw)
        if not m:
            raise ConfigError(
                f"tensorrt: {option}={text!r}: {raw.strip()!r} is not like NAME:DxDxD "
                f"(e.g. {option}=input:1x3x224x224, several inputs separated by commas)"
            )
        name = m.group(1)
        dims = tuple(int(d) for d in re.split(r"\s*[xX×]\s*", m.group(2)))
        if any(d <= 0 for d in dims):
            raise ConfigError(f"tensorrt: {option}={text!r}: every dimension of {name} must be a positive integer")
        if name in out:
            raise ConfigError(f"tensorrt: {option}={text!r}: input {name!r} is given twice")
        out[name] = dims
    return out


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def derive_profile(
    spec: InputSpec,
    *,
    max_batch: int | None = None,
    min_shape: str | None = None,
    opt_shape: str | None = None,
    max_shape: str | None = None,
) -> ShapeProfile | None:
    """The profile for the spec's dynamic inputs, with the user's overrides checked; None when nothing is dynamic.

    Raises ConfigError (exit 3) for a name that is not an input, a wrong rank, a static axis given another size,
    a dynamic-axis label given two sizes, or min > opt > max on any axis.
    """
    given = {"min": parse_shapes(min_shape, "min_shape"), "opt": parse_shapes(opt_shape, "opt_shape"),
             "max": parse_shapes(max_shape, "max_shape")}
    if max_batch is not None and int(max_batch) < 1:
        raise ConfigError(f"tensorrt: max_batch={max_batch} must be at least 1")
    if not spec.has_dynamic:
        named = [f"{k}_shape" for k, v in given.items() if v]
        if named:
            raise ConfigError(
                f"tensorrt: {', '.join(named)} given but no input has a dynamic axis; declare one with "
                "--dynamic-batch or --dynamic NAME:AXIS"
            )
        return None

    by_name = {t.name: t for t in spec.tensors}
    for kind, shapes in given.items():
        for name, shape in shapes.items():
            t = by_name.get(name)
            if t is None:
                raise ConfigError(f"tensorrt: {kind}_shape names {name!r}, which is not an input "
                                  f"(inputs: {', '.join(spec.names)})")
            if len(shape) != len(t.shape):
                raise ConfigError(f"tensorrt: {kind}_shape {name}:{_fmt(shape)} has {len(shape)} dims; "
                                  f"{name} has {len(t.shape)} ({_fmt(t.shape)})")
            for axis, (want, have) in enumerate(zip(shape, t.shape)):
                if axis not in t.dynamic and want != have:
                    raise ConfigError(
                        f"tensorrt: {kind}_shape {name}:{_fmt(shape)}: axis {axis} of {name} is static ({have}); "
                        f"declare it dynamic with --dynamic {name}:{axis} to give it a range"
                    )

    example_batch = spec.batch_size
    if max_batch is None:
        batch_max = max(DEFAULT_MAX_BATCH, example_batch)
    else:
        batch_max = int(max_batch)
        if batch_max < example_batch:
            raise ConfigError(f"tensorrt: max_batch={batch_max} is below the example batch {example_batch}")

    # values the user fixed for a dynamic-axis label, per kind: shared by every input that carries the label
    labels: dict[str, dict[str, tuple[int, str]]] = {"min": {}, "opt": {}, "max": {}}
    for kind, shapes in given.items():
        for name, shape in shapes.items():
            for axis, label in by_name[name].dynamic.items():
                seen = labels[kind].get(label)
                if seen is not None and seen[0] != shape[axis]:
                    raise ConfigError(
                        f"tensorrt: {kind}_shape gives dynamic axis {label!r} two sizes: {seen[0]} ({seen[1]}) and "
                        f"{shape[axis]} ({name}); inputs sharing an axis label must agree"
                    )
                labels[kind][label] = (shape[axis], name)

    profile = ShapeProfile()
    for t in spec.tensors:
        if not t.dynamic:
            continue
        chosen: dict[str, list[int]] = {}
        for kind in ("min", "opt", "max"):
            if t.name in given[kind]:
                chosen[kind] = list(given[kind][t.name])
                continue
            dims = list(t.shape)
            for axis, label in t.dynamic.items():
                if label in labels[kind]:
                    dims[axis] = labels[kind][label][0]
                elif kind == "min":
                    dims[axis] = 1
                elif kind == "opt":
                    dims[axis] = t.shape[axis]
                else:
                    dims[axis] = batch_max if axis == 0 else t.shape[axis]
            chosen[kind] = dims
        # an opt or max left at its default may fall outside a range the user moved: follow the user
        lo, mid, hi = chosen["min"], chosen["opt"], chosen["max"]
        for axis in t.dynamic:
            if t.name not in given["opt"] and t.dynamic[axis] not in labels["opt"]:
                mid[axis] = max(mid[axis], lo[axis])
            if t.name not in given["max"] and t.dynamic[axis] not in labels["max"]:
                hi[axis] = max(hi[axis], mid[axis])
            if not lo[axis] <= mid[axis] <= hi[axis]:
                defaulted = "" if t.name in given["opt"] else " (opt defaults to the example size)"
                raise ConfigError(
                    f"tensorrt: input {t.name} axis {axis} ({t.dynamic[axis]}): min {lo[axis]} <= opt {mid[axis]} "
                    f"<= max {hi[axis]} does not hold{defaulted}; fix min_shape / opt_shape / max_shape"
                )
        profile.min[t.name], profile.opt[t.name], profile.max[t.name] = tuple(lo), tuple(mid), tuple(hi)
        for axis, label in t.dynamic.items():
            if axis != 0 and t.name not in given["max"] and label not in labels["max"]:
                profile.notes.append(
                    f"tensorrt: dynamic axis {axis} ({label}) of {t.name} accepts {lo[axis]}..{hi[axis]} (its example "
                    f"size is the default maximum); widen it with -o max_shape={t.name}:"
                    f"{_fmt([*hi[:axis], hi[axis] * 4, *hi[axis + 1:]])}"
                )
    return profile


def map_inputs(spec_names: Sequence[str], onnx_names: Sequence[str]) -> dict[str, str | None]:
    """Core input name → ONNX/engine input name (None when the exporter dropped an unused input).

    Names that match are kept; when none match and the counts agree the exporter renamed them, in order.
    """
    if all(n in spec_names for n in onnx_names):
        return {n: (n if n in onnx_names else None) for n in spec_names}
    if len(spec_names) == len(onnx_names):
        return dict(zip(spec_names, onnx_names, strict=True))
    unmatched = [n for n in onnx_names if n not in spec_names]
    raise ExportFailed(f"tensorrt: the ONNX graph has input(s) {', '.join(unmatched)} that match none of the model's "
                       f"inputs ({', '.join(spec_names)})")


def fit_to_network(
    profile: ShapeProfile | None,
    spec: InputSpec,
    network_shapes: Mapping[str, Sequence[int]],
    input_map: Mapping[str, str | None],
) -> tuple[ShapeProfile | None, list[str]]:
    """The profile TensorRT gets: keyed by network input names, only for inputs with a -1 (dynamic) dim.

    ``network_shapes`` are the parsed network's input shapes (-1 for a dynamic dim). An axis declared dynamic
    that the exporter made static takes the static size, with a note; a network input that is dynamic on an
    axis the spec calls static is an ExportFailed (the ONNX does not match the spec).
    """
    notes: list[str] = []
    fitted = ShapeProfile(notes=list(profile.notes) if profile else [])
    by_name = {t.name: t for t in spec.tensors}
    reverse = {v: k for k, v in input_map.items() if v is not None}
    for net_name, net_shape in network_shapes.items():
        net_shape = [int(d) for d in net_shape]
        if all(d >= 0 for d in net_shape):
            core = reverse.get(net_name)
            if profile is not None and core in profile.opt:
                fixed = [a for a, d in enumerate(by_name[core].shape) if a in by_name[core].dynamic]
                if fixed:
                    notes.append(f"tensorrt: the ONNX graph fixed every axis of {net_name} ({_fmt(net_shape)}) "
                                 f"although axis {', '.join(map(str, fixed))} is declared dynamic; the engine "
                                 "accepts only that shape")
            continue
        core = reverse.get(net_name)
        if core is None or profile is None or core not in profile.opt:
            t = by_name.get(core) if core else None
            raise ExportFailed(
                f"tensorrt: network input {net_name} has dynamic shape {net_shape} but the input spec declares no "
                f"dynamic axis for it{f' ({_fmt(t.shape)})' if t else ''}; declare it with --dynamic"
            )
        lo, mid, hi = list(profile.min[core]), list(profile.opt[core]), list(profile.max[core])
        if len(net_shape) != len(mid):
            raise ExportFailed(f"tensorrt: network input {net_name} has {len(net_shape)} dims, the spec {len(mid)}")
        for axis, d in enumerate(net_shape):
            if d >= 0 and not lo[axis] == mid[axis] == hi[axis] == d:
                if axis in by_name[core].dynamic:
                    notes.append(f"tensorrt: the ONNX graph fixed axis {axis} of {net_name} at {d} although it is "
                                 f"declared dynamic; the engine accepts only {d} there")
                lo[axis] = mid[axis] = hi[axis] = d
        fitted.min[net_name], fitted.opt[net_name], fitted.max[net_name] = tuple(lo), tuple(mid), tuple(hi)
    fitted.notes.extend(notes)
    if not fitted.opt:
        return None, fitted.notes
    return fitted, fitted.notes


def calibration_shapes(samples: Sequence[Mapping[str, Any]], input_map: Mapping[str, str | None]) -> dict[str, Shape]:
    """Shapes of one calibration sample per engine input: the calibration profile has min = opt = max = these."""
    if not samples:
        return {}
    first = samples[0]
    out: dict[str, Shape] = {}
    for core, net in input_map.items():
        if net is None:
            continue
        if core not in first:
            raise ConfigError(f"tensorrt: --sample-inputs has no array for input {core!r}")
        out[net] = tuple(int(d) for d in first[core].shape)
    return out

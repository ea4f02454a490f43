"""Input specs: names, shapes, dtypes and dynamic axes, and seeded example inputs made from them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError

DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
_DTYPE_ALIASES = {
    "float": "float32", "fp32": "float32", "f32": "float32", "half": "float16", "fp16": "float16",
    "f16": "float16", "bf16": "bfloat16", "double": "float64", "long": "int64", "int": "int64",
    "i64": "int64", "i32": "int32", "u8": "uint8",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def normalize_dtype(dtype: str) -> str:
    d = _DTYPE_ALIASES.get(dtype.strip().lower(), dtype.strip().lower())
    if d not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    return d


@dataclass
class TensorSpec:
    """One model input: name, example shape, dtype, dynamic axes and the value range for integers."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    dynamic: dict[int, str] = field(default_factory=dict)
    low: int | None = None
    high: int | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(f"input name {self.name!r} is not a valid identifier")
        if any((not isinstance(d, int)) or d <= 0 for d in self.shape):
            raise ConfigError(f"input {self.name!r}: every dimension must be a positive integer, got {self.shape}")
        self.dtype = normalize_dtype(self.dtype)
        for axis in self.dynamic:
            if not 0 <= axis < len(self.shape):
                raise ConfigError(f"input {self.name!r}: dynamic axis {axis} is outside its {len(self.shape)} dims")

    @property
    def is_float(self) -> bool:
        return self.dtype.startswith(("float", "bfloat"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}
        if self.dynamic:
            out["dynamic"] = {str(k): v for k, v in sorted(self.dynamic.items())}
        if self.low is not None:
            out["low"] = self.low
        if self.high is not None:
            out["high"] = self.high
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TensorSpec:
        return cls(
            name=d["name"], shape=tuple(int(x) for x in d["shape"]), dtype=d.get("dtype", "float32"),
            dynamic={int(k): v for k, v in (d.get("dynamic") or {}).items()}, low=d.get("low"), high=d.get("high"),
        )


@dataclass
class InputSpec:
    """The model's inputs in the order its forward takes them."""

    tensors: list[TensorSpec]

    def __post_init__(self) -> None:
        names = [t.name for t in self.tensors]
        if not names:
            raise ConfigError("the model needs at least one input")
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ConfigError(f"input name(s) given twice: {', '.join(sorted(dupes))}")

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tensors]

    def __getitem__(self, name: str) -> TensorSpec:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)

    @property
    def batch_size(self) -> int:
        return self.tensors[0].shape[0] if self.tensors[0].shape else 1

    @property
    def dynamic_batch(self) -> bool:
        """True when axis 0 of every input is declared dynamic."""
        return all(0 in t.dynamic for t in self.tensors if t.shape)

    @property
    def has_dynamic(self) -> bool:
        return any(t.dynamic for t in self.tensors)

    def shapes(self, batch: int | None = None) -> dict[str, tuple[int, ...]]:
        out = {}
        for t in self.tensors:
            shape = t.shape
            if batch is not None and shape and 0 in t.dynamic:
                shape = (batch, *shape[1:])
            out[t.name] = shape
        return out

    def make_numpy(self, batch: int | None = None, seed: int = 0) -> dict[str, Any]:
        """Seeded random inputs: normal floats, integers in [low, high), attention masks of ones."""
        import numpy as np

        rng = np.random.default_rng(seed)
        out: dict[str, Any] = {}
        for t, shape in zip(self.tensors, self.shapes(batch).values(), strict=True):
            if t.is_float:
                arr = rng.standard_normal(shape, dtype=np.float32)
                if t.low is not None or t.high is not None:
                    lo, hi = t.low or 0, t.high if t.high is not None else 1
                    arr = (rng.random(shape, dtype=np.float32) * (hi - lo) + lo).astype(np.float32)
                out[t.name] = arr.astype(_np_dtype(t.dtype)) if t.dtype != "bfloat16" else arr
            elif t.dtype == "bool":
                out[t.name] = np.ones(shape, dtype=bool) if "mask" in t.name else rng.random(shape) > 0.5
            elif "mask" in t.name and t.low is None and t.high is None:
                out[t.name] = np.ones(shape, dtype=_np_dtype(t.dtype))
            else:
                lo = 0 if t.low is None else t.low
                hi = (lo + 2) if t.high is None else t.high
                out[t.name] = rng.integers(lo, hi, size=shape).astype(_np_dtype(t.dtype))
        return out

    def make_torch(self, batch: int | None = None, seed: int = 0) -> tuple[Any, ...]:
        arrays = self.make_numpy(batch=batch, seed=seed)
        return self.to_torch(arrays)

    def to_torch(self, arrays: Mapping[str, Any]) -> tuple[Any, ...]:
        import torch

        out = []
        for t in self.tensors:
            tensor = torch.from_numpy(_contiguous(arrays[t.name]))
            if t.dtype == "bfloat16":
                tensor = tensor.to(torch.bfloat16)
            out.append(tensor)
        return tuple(out)

    def to_dict(self) -> list[dict[str, Any]]:
        return [t.to_dict() for t in self.tensors]

    @classmethod
    def from_dict(cls, items: Sequence[Mapping[str, Any]]) -> InputSpec:
        return cls([TensorSpec.from_dict(d) for d in items])

    def with_dynamic(self, specs: Sequence[str]) -> InputSpec:
        """Apply ``--dynamic NAME:AXIS[=label]`` specs."""
        for raw in specs:
            name, axis, label = parse_dynamic(raw)
            try:
                t = self[name]
            except KeyError:
                raise ConfigError(f"--dynamic {raw!r}: no input named {name!r} (inputs: {', '.join(self.names)})") from None
            if not 0 <= axis < len(t.shape):
                raise ConfigError(f"--dynamic {raw!r}: input {name!r} has {len(t.shape)} dims, no axis {axis}")
            t.dynamic[axis] = label or ("batch" if axis == 0 else f"{name}_dim{axis}")
        return self

    def with_dynamic_batch(self) -> InputSpec:
        for t in self.tensors:
            if t.shape:
                t.dynamic.setdefault(0, "batch")
        return self


def _np_dtype(dtype: str) -> Any:
    import numpy as np

    return {"bfloat16": np.float32}.get(dtype, np.dtype(dtype))


def _contiguous(arr: Any) -> Any:
    import numpy as np

    return np.ascontiguousarray(arr)


# ----------------------------------------------------------------------------- parsers


def parse_shape(text: str) -> tuple[int, ...]:
    parts = re.split(r"[x,×]", text.strip().lower())
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"shape {text!r} is not like 1x3x224x224") from None
    if not dims or any(d <= 0 for d in dims):
        raise ConfigError(f"shape {text!r}: every dimension must be a positive integer")
    from modelport.engine.limits import check_shape

    check_shape(dims, f"shape {text!r}")
    return dims


def parse_input(text: str) -> TensorSpec:
    """Parse ``NAME:1x3x224x224[:DTYPE[:LOW,HIGH]]``."""
    parts = text.split(":")
    if len(parts) < 2 or len(parts) > 4 or not parts[0]:
        raise ConfigError(f"--input {text!r} is not like NAME:1x3x224x224[:float32[:LOW,HIGH]]")
    name, shape = parts[0], parse_shape(parts[1])
    dtype = parts[2] if len(parts) > 2 and parts[2] else "float32"
    low = high = None
    if len(parts) == 4:
        try:
            lo_s, hi_s = parts[3].split(",")
            low, high = int(lo_s), int(hi_s)
        except ValueError:
            raise ConfigError(f"--input {text!r}: value range must be LOW,HIGH integers") from None
        if high <= low:
            raise ConfigError(f"--input {text!r}: value range HIGH must be greater than LOW")
        from modelport.engine.limits import check_int64

        check_int64(low, f"--input {text!r}")
        check_int64(high, f"--input {text!r}")
    return TensorSpec(name=name, shape=shape, dtype=dtype, low=low, high=high)


def parse_dynamic(text: str) -> tuple[str, int, str | None]:
    """Parse ``NAME:AXIS[=label]``."""
    m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_.\-]*):(\d+)(?:=([A-Za-z_][A-Za-z0-9_]*))?", text.strip())
    if not m:
        raise ConfigError(f"--dynamic {text!r} is not like NAME:AXIS[=label] (e.g. input:0=batch)")
    return m.group(1), int(m.group(2)), m.group(3)


def vision(*chw: int, batch: int = 1, name: str = "input", dynamic_batch: bool = False) -> InputSpec:
    """Preset for images: one float32 ``N x C x H x W`` input."""
    if len(chw) == 1 and isinstance(chw[0], str):  # type: ignore[unreachable]
        chw = parse_shape(chw[0])  # type: ignore[unreachable]
    if len(chw) != 3:
        raise ConfigError("--vision takes CxHxW, e.g. 3x224x224")
    spec = InputSpec([TensorSpec(name, (batch, *chw), "float32")])
    return spec.with_dynamic_batch() if dynamic_batch else spec


def text(seq_len: int, vocab_size: int = 1000, batch: int = 1, dynamic_batch: bool = False) -> InputSpec:
    """Preset for text encoders: int64 ``input_ids`` in [0, vocab) and an ``attention_mask`` of ones."""
    if seq_len <= 0 or vocab_size <= 1:
        raise ConfigError("--text needs a positive SEQ_LEN and a VOCAB of at least 2")
    from modelport.engine.limits import check_int64, check_shape

    check_shape((batch, seq_len), "--text")
    check_int64(vocab_size, "--text VOCAB")
    spec = InputSpec([
        TensorSpec("input_ids", (batch, seq_len), "int64", low=0, high=vocab_size),
        TensorSpec("attention_mask", (batch, seq_len), "int64"),
    ])
    return spec.with_dynamic_batch() if dynamic_batch else spec


def parse_vision(text_: str, batch: int = 1) -> InputSpec:
    return vision(*parse_shape(text_), batch=batch)


def parse_text(text_: str, batch: int = 1) -> InputSpec:
    m = re.fullmatch(r"(\d+)(?::(\d+))?", text_.strip())
    if not m:
        raise ConfigError(f"--text {text_!r} is not like SEQ_LEN[:VOCAB] (e.g. 128:30522)")
    return text(int(m.group(1)), int(m.group(2) or 1000), batch=batch)


def load_sample_inputs(path: str | Path, names: Sequence[str] | None = None) -> dict[str, Any]:
    """Real inputs from an ``.npz``: one array per input name, samples along axis 0."""
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--sample-inputs {p}: no such file")
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:
        raise ConfigError(f"--sample-inputs {p}: not a readable .npz file ({type(exc).__name__})") from None
    if not arrays:
        raise ConfigError(f"--sample-inputs {p}: the file holds no arrays")
    if names is not None:
        missing = [n for n in names if n not in arrays]
        if missing:
            raise ConfigError(f"--sample-inputs {p}: no array for input(s) {', '.join(missing)} (has {', '.join(arrays)})")
        arrays = {n: arrays[n] for n in names}
    counts = {a.shape[0] if a.ndim else 0 for a in arrays.values()}
    if len(counts) != 1 or 0 in counts:
        raise ConfigError(f"--sample-inputs {p}: every array needs the same number of samples along axis 0")
    return arrays


def spec_from_samples(arrays: Mapping[str, Any], batch: int = 1) -> InputSpec:
    """An input spec whose shapes follow the sample arrays (batch ``batch``)."""
    tensors = []
    for name, arr in arrays.items():
        tensors.append(TensorSpec(name, (batch, *arr.shape[1:]), str(arr.dtype)))
    return InputSpec(tensors)


def batches_from_samples(arrays: Mapping[str, Any], batch: int, limit: int | None = None) -> list[dict[str, Any]]:
    """Split sample arrays into input sets of ``batch`` samples each."""
    n = next(iter(arrays.values())).shape[0]
    sets = []
    for start in range(0, n - batch + 1, batch):
        sets.append({k: v[start : start + batch] for k, v in arrays.items()})
        if limit is not None and len(sets) >= limit:
            break
    return sets

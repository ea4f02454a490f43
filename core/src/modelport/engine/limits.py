"""Range checks done before any work starts, and size caps on what modelport reads from files it did not write.

A number outside its range is a configuration error (exit 3) found up front — not a success followed by a
crash (``--threads 100000`` made the process segfault), not an "unexpected" exit 1 deep in the run.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

from modelport.errors import ConfigError
from modelport.terminal.strings import human_size

MAX_THREADS = 1024
MAX_BATCH = 1 << 20
#: What ``modelport validate`` / ``compare`` / ``bench`` read from a ``reference.npz``, decompressed.
#: The writer keeps 16 MiB of input sets (more only when one set is bigger); 1 GiB leaves room for
#: large single inputs while a file that declares gigabytes of zeros is refused before it is read.
REFERENCE_READ_CAP = 1 << 30


def check_threads(value: int | None, flag: str = "--threads") -> None:
    """1 … MAX_THREADS, or None (the default)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{flag} must be a positive integer")
    if value > MAX_THREADS:
        raise ConfigError(f"{flag} {value} is more than {MAX_THREADS}; this machine has {os.cpu_count()} cores")


def check_batch(value: int | None, flag: str = "--batch") -> None:
    """1 … MAX_BATCH, or None."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{flag} must be a positive integer")
    if value > MAX_BATCH:
        raise ConfigError(f"{flag} {value} is more than {MAX_BATCH}")


def check_tolerance(value: float | None, flag: str) -> None:
    """A finite, non-negative number, or None."""
    if value is None:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value) or math.isinf(value) or value < 0:
        raise ConfigError(f"{flag} must be a finite number >= 0, got {value}")


def check_seconds(value: float | None, flag: str = "--max-seconds") -> None:
    """A finite, positive number of seconds, or None."""
    if value is None:
        return
    if math.isnan(value) or math.isinf(value) or value <= 0:
        raise ConfigError(f"{flag} must be a finite number of seconds > 0, got {value}")


def check_run_settings(*, threads: int | None = None, atol: float | None = None, rtol: float | None = None,
                       batch: int | None = None, max_seconds: float | None = None) -> None:
    """Every range check a command's numeric flags need, in one call."""
    check_threads(threads)
    check_batch(batch)
    check_tolerance(atol, "--atol")
    check_tolerance(rtol, "--rtol")
    check_seconds(max_seconds)


def npz_declared_bytes(path: Path) -> int:
    """The bytes the arrays of an .npz declare in their .npy headers (what loading them would allocate)."""
    import numpy as np

    total = 0
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _order, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, _order, dtype = np.lib.format.read_array_header_2_0(f)
            if dtype.hasobject:
                raise ValueError(f"{info.filename} holds Python objects")
            total += math.prod(int(d) for d in shape) * dtype.itemsize
    return total


MAX_DIM = (1 << 31) - 1
MAX_ELEMENTS = 1 << 31
INT64_MAX = (1 << 63) - 1


def check_shape(dims: tuple[int, ...] | list[int], what: str) -> None:
    """Each dimension 1 … 2^31-1 and at most 2^31 elements: an example input modelport can allocate."""
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int) or d <= 0:
            raise ConfigError(f"{what}: every dimension must be a positive integer")
        if d > MAX_DIM:
            raise ConfigError(f"{what}: dimension {d} is larger than {MAX_DIM}")
    if math.prod(dims) > MAX_ELEMENTS:
        raise ConfigError(f"{what}: {math.prod(dims)} elements is more than an example input can hold ({MAX_ELEMENTS})")


def check_int64(value: int, what: str) -> None:
    """A value that fits in int64 (tensor values, vocabulary sizes)."""
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise ConfigError(f"{what}: {value} does not fit in a 64-bit integer")


def check_dynamic_axes(value: object) -> None:
    """``dynamic_axes`` in --export-config: true, or {input: [axis, …]} / {input: {axis: label}}."""
    if value is None or isinstance(value, bool):
        return
    shape_hint = 'true, or {"input": [0]} / {"input": {"0": "batch"}}'
    if not isinstance(value, dict):
        raise ConfigError(f"--export-config dynamic_axes must be {shape_hint}")
    for name, axes in value.items():
        keys = list(axes.keys()) if isinstance(axes, dict) else axes if isinstance(axes, list) else None
        if keys is None or not all((isinstance(a, int) and not isinstance(a, bool)) or (isinstance(a, str) and a.isdigit())
                                   for a in keys):
            raise ConfigError(f"--export-config dynamic_axes[{name!r}] must be a list of axis numbers or "
                              f"{{axis: label}}, e.g. {shape_hint}")
        if isinstance(axes, dict) and not all(v is None or isinstance(v, str) for v in axes.values()):
            raise ConfigError(f"--export-config dynamic_axes[{name!r}]: labels must be strings")


def load_json(text: str, flag: str) -> object:
    """json.loads with one-line errors for invalid and absurdly nested documents (exit 3)."""
    import json

    try:
        return json.loads(text)
    except RecursionError:
        raise ConfigError(f"{flag} is nested too deeply to be a configuration") from None
    except ValueError as exc:
        raise ConfigError(f"{flag} is not valid JSON: {exc}") from None


def check_npz_size(path: Path, cap: int = REFERENCE_READ_CAP) -> None:
    """Refuse an .npz whose arrays declare more than ``cap`` bytes, before any array is read."""
    try:
        declared = npz_declared_bytes(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing (the export folder has no reference data)") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ConfigError(f"{path}: unreadable reference data ({type(exc).__name__}: {exc})") from None
    if declared > cap:
        raise ConfigError(f"{path}: declares {human_size(declared)} of arrays, more than the "
                          f"{human_size(cap)} modelport reads from a reference file; refusing to load it")

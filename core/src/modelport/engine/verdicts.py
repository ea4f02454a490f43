"""When a passing comparison proves nothing: empty, all-zero or input-independent reference outputs.

A detector with no detections on random inputs, or a zero-initialised head, "matches" any artifact that also
returns nothing. Such a comparison is reported as ``inconclusive`` (exit 2 unless ``--allow-inconclusive``),
naming the outputs and pointing at ``--sample-inputs`` with real data. Outputs whose magnitude is far below the
absolute tolerance are flagged too: the elementwise rule cannot see a difference there (the cosine rule still
does, so they are a note, not a verdict).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

INCONCLUSIVE = "inconclusive"
HINT = ("the comparison proves nothing for these outputs: export with --sample-inputs FILE.npz holding real inputs "
        "(images with objects, real token ids) so the model produces real outputs, or pass --allow-inconclusive")
# an output whose largest |value| is below atol * TINY_FACTOR is "far below atol"
TINY_FACTOR = 0.01


@dataclass(frozen=True)
class Vacuous:
    """One output the comparison cannot judge, and why."""

    output: str
    why: str

    def line(self) -> str:
        return f"{self.output}: {self.why}"


def _is_float(arr: Any) -> bool:
    return getattr(arr, "dtype", None) is not None and arr.dtype.kind == "f"


def _input_independent(sets: Sequence[Any], batch_sizes: Sequence[int]) -> bool:
    """True when every sample of every input set gives the same output (or every whole set, without a batch axis)."""
    import numpy as np

    first = np.asarray(sets[0])
    batched = all(a.ndim >= 1 and a.shape[0] == b for a, b in zip(sets, batch_sizes, strict=False)) \
        and len(batch_sizes) == len(sets)
    if batched and first.shape[0] >= 1:
        probe = first[0]
        return all(np.array_equal(np.asarray(a)[i], probe, equal_nan=True) for a in sets for i in range(a.shape[0]))
    return all(np.asarray(a).shape == first.shape and np.array_equal(a, first, equal_nan=True) for a in sets)


def vacuous_outputs(outputs: Sequence[Sequence[Any]], names: Sequence[str],
                    batch_sizes: Sequence[int] = ()) -> list[Vacuous]:
    """Reference outputs that cannot tell a right artifact from a wrong one, across every input set.

    ``outputs[i][j]`` is output j for input set i. Empty outputs (any dtype) and floating outputs that are all
    zero or do not change with the input are vacuous. Integer outputs (argmax classes, counts) may well repeat
    over a few random inputs and are not judged here.
    """
    import numpy as np

    found: list[Vacuous] = []
    if not outputs:
        return found
    for j, name in enumerate(names):
        sets = [np.asarray(s[j]) for s in outputs if j < len(s)]
        if not sets:
            continue
        n_sets = len(sets)
        if all(a.size == 0 for a in sets):
            found.append(Vacuous(name, f"empty in every input set ({n_sets})"))
            continue
        if not all(_is_float(a) for a in sets):
            continue
        if all(a.size == 0 or not np.any(a) for a in sets):
            found.append(Vacuous(name, f"all zero in every input set ({n_sets})"))
        elif n_sets > 1 and _input_independent(sets, batch_sizes):
            found.append(Vacuous(name, f"the same values for every input in all {n_sets} input sets "
                                       "(it does not depend on the input)"))
    return found


def tiny_outputs(outputs: Sequence[Sequence[Any]], names: Sequence[str], atol: float) -> list[str]:
    """Floating outputs whose largest magnitude is far below ``atol``: the elementwise rule is blind there."""
    import numpy as np

    if atol <= 0 or not outputs:
        return []
    lines = []
    for j, name in enumerate(names):
        sets = [np.asarray(s[j]) for s in outputs if j < len(s)]
        if not sets or not all(_is_float(a) and a.size for a in sets):
            continue
        peak = max(float(np.nanmax(np.abs(a))) for a in sets)
        if 0 < peak < atol * TINY_FACTOR:
            lines.append(f"{name}: largest |value| {peak:.2g} is far below atol {atol:g}; only the cosine rule "
                         "checks it")
    return lines


def inconclusive_message(found: Sequence[Vacuous]) -> str:
    """One line naming each vacuous output and what to do."""
    return "; ".join(v.line() for v in found) + f" — {HINT}"

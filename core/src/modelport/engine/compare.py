"""Compare an artifact's outputs with PyTorch's: diffs per output and pass/fail by precision profile."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Tolerance:
    """Pass when every element satisfies ``|a - r| <= atol + rtol * |r|`` and cosine >= min_cosine."""

    atol: float
    rtol: float
    min_cosine: float = 0.0
    elementwise: bool = True

    def rule(self) -> str:
        parts = []
        if self.elementwise:
            parts.append(f"|a-r| <= {self.atol:g} + {self.rtol:g}*|r|")
        if self.min_cosine:
            parts.append(f"cosine >= {self.min_cosine:g}")
        return " and ".join(parts)


PROFILES: dict[str, Tolerance] = {
    "fp32": Tolerance(atol=1e-4, rtol=1e-3, min_cosine=0.9999),
    "fp16": Tolerance(atol=1e-2, rtol=1e-2, min_cosine=0.999),
    "bf16": Tolerance(atol=6e-2, rtol=5e-2, min_cosine=0.995),
    "int8": Tolerance(atol=0.0, rtol=0.0, min_cosine=0.98, elementwise=False),
}


def profile_for(precision: str, atol: float | None = None, rtol: float | None = None) -> Tolerance:
    base = PROFILES.get(precision, PROFILES["fp32"])
    if atol is None and rtol is None:
        return base
    return Tolerance(
        atol=base.atol if atol is None else atol, rtol=base.rtol if rtol is None else rtol,
        min_cosine=base.min_cosine, elementwise=True,
    )


@dataclass
class OutputDiff:
    name: str
    shape: list[int]
    max_abs_diff: float
    max_rel_diff: float
    cosine: float | None  # None: both vectors were zero in every input set (cosine undefined, not 1.0)
    passed: bool
    min_atol_to_pass: float
    top1_agreement: float | None = None
    problem: str | None = None


@dataclass
class Comparison:
    """Result of comparing one artifact with the reference over every input set."""

    passed: bool
    precision: str
    rule: str
    atol: float
    rtol: float
    outputs: list[OutputDiff] = field(default_factory=list)
    input_sets: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> float:
        return max((o.max_abs_diff for o in self.outputs), default=0.0)

    @property
    def min_cosine(self) -> float:
        return min((o.cosine for o in self.outputs if o.cosine is not None), default=1.0)

    def summary(self) -> str:
        if self.passed:
            return f"pass (max abs diff {self.max_abs_diff:.2e}, rule {self.rule})"
        return "FAIL: " + "; ".join(self.failures)


def compare_outputs(
    reference: Sequence[Sequence[Any]],
    actual: Sequence[Sequence[Any]],
    names: Sequence[str],
    tolerance: Tolerance,
    precision: str = "fp32",
    classifier: bool = False,
    batch_sizes: Sequence[int] = (),
) -> Comparison:
    """Compare per output across all input sets; ``reference[i][j]`` is output j of input set i."""
    comp = Comparison(passed=True, precision=precision, rule=tolerance.rule(), atol=tolerance.atol,
                      rtol=tolerance.rtol, input_sets=len(reference), batch_sizes=list(batch_sizes))
    if len(actual) != len(reference):
        comp.passed = False
        comp.failures.append(f"got outputs for {len(actual)} input sets, expected {len(reference)}")
        return comp
    for j, name in enumerate(names):
        stats = _output_stats(j, reference, actual, len(names), tolerance, classifier)
        if stats.problem:
            comp.outputs.append(OutputDiff(name, stats.shape, math.inf, math.inf, 0.0, False, math.inf,
                                           problem=stats.problem))
            comp.passed = False
            comp.failures.append(f"{name}: {stats.problem}")
            continue
        _judge_output(comp, name, stats, tolerance)
    return comp


@dataclass
class _OutputStats:
    """One output's worst figures over every input set, gathered before it is judged against the tolerance."""

    max_abs: float = 0.0
    max_rel: float = 0.0
    min_atol: float = 0.0
    cosine: float = 1.0
    defined: int = 0  # input sets where the cosine is defined (not zero against zero)
    agree: int = 0  # top-1 agreements (classifier outputs)
    total: int = 0
    shape: list[int] = field(default_factory=list)
    problem: str | None = None  # why the output cannot be compared at all (count, shape, non-finite values)


def _output_stats(j: int, reference: Sequence[Sequence[Any]], actual: Sequence[Sequence[Any]], expected: int,
                  tolerance: Tolerance, classifier: bool) -> _OutputStats:
    """Output ``j`` across all input sets; stops at the first set that cannot be compared (``problem`` says why)."""
    import numpy as np

    st = _OutputStats()
    for ref_set, act_set in zip(reference, actual, strict=True):
        if j >= len(act_set):
            st.problem = f"artifact returned {len(act_set)} outputs, expected {expected}"
            break
        r = np.asarray(ref_set[j])
        a = np.asarray(act_set[j])
        st.shape = list(r.shape)
        if a.shape != r.shape:
            if a.size == r.size:
                a = a.reshape(r.shape)
            else:
                st.problem = f"shape {list(a.shape)} != expected {list(r.shape)}"
                break
        st.problem = _add_input_set(st, r, a, tolerance, classifier)
        if st.problem:
            break
    return st


def _add_input_set(st: _OutputStats, r: Any, a: Any, tolerance: Tolerance, classifier: bool) -> str | None:
    """Fold one input set's reference ``r`` and artifact output ``a`` (same shape) into ``st``; a problem, or None."""
    import numpy as np

    r64 = r.astype(np.float64)
    a64 = a.astype(np.float64)
    if not np.all(np.isfinite(a64) == np.isfinite(r64)):
        return "non-finite values where the reference has none (or the reverse)"
    finite = np.isfinite(r64)
    diff = np.abs(a64 - r64)[finite]
    if diff.size:
        st.max_abs = max(st.max_abs, float(diff.max()))
        rel = diff / np.maximum(np.abs(r64[finite]), 1e-12)
        st.max_rel = max(st.max_rel, float(rel.max()))
        st.min_atol = max(st.min_atol, float(np.max(diff - tolerance.rtol * np.abs(r64[finite]))))
    c = cosine_similarity(a64[finite], r64[finite])
    if c is not None:
        st.cosine = min(st.cosine, c)
        st.defined += 1
    if classifier and r.ndim == 2 and r.shape[-1] > 1:
        st.agree += int(np.sum(np.argmax(a64, -1) == np.argmax(r64, -1)))
        st.total += r.shape[0]
    return None


def _judge_output(comp: Comparison, name: str, st: _OutputStats, tolerance: Tolerance) -> None:
    """Record output ``name``'s figures in ``comp`` and whether they are within ``tolerance`` (why not, when not)."""
    passed = st.cosine >= tolerance.min_cosine
    if not st.defined and not tolerance.elementwise:
        passed = False  # zero against zero proves nothing, and there is no elementwise rule to fall back on
    if tolerance.elementwise:
        passed = passed and st.min_atol <= tolerance.atol
    top1 = (st.agree / st.total) if st.total else None
    comp.outputs.append(OutputDiff(name, st.shape, st.max_abs, st.max_rel, st.cosine if st.defined else None, passed,
                                   max(st.min_atol, 0.0), top1))
    if not passed:
        comp.passed = False
        reason = f"{name}: max abs diff {st.max_abs:.3g} (would pass with atol {max(st.min_atol, 0):.3g})"
        if st.cosine < tolerance.min_cosine:
            reason += f", cosine {st.cosine:.6f} < {tolerance.min_cosine}"
        comp.failures.append(reason)


def cosine_similarity(a: Any, b: Any) -> float | None:
    """Cosine similarity; None when both are zero (undefined: two zero vectors are not "the same direction")."""
    import numpy as np

    a = a.ravel()
    b = b.ravel()
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 and nb == 0.0:
        return None
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))

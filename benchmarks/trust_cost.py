"""The cost of safety: `validate` and `bench` of a trusted local export, with modelport's trust checks on
(the record's seal, the artifact's code scan, the reference.npz size cap) against the same calls with those
checks replaced by no-ops — what the commands did before they existed. Same process, same exports, one run.

Target: ratio <= 1.05 (no slower than before, within noise).
"""

from __future__ import annotations

import importlib.util
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "models.py"


@contextmanager
def _checks_off() -> Iterator[None]:
    """The trust checks as no-ops, where validate_export and bench_dirs look them up."""
    import modelport.commands.bench as bench
    import modelport.engine.limits as limits
    import modelport.folder.trust as trust

    saved = (trust.check_export, limits.check_npz_size)

    def allow(*args: object, **kwargs: object) -> trust.ExportTrust:
        return trust.ExportTrust(local=True, trust_code=True)

    trust.check_export = allow  # type: ignore[assignment]
    limits.check_npz_size = lambda *a, **k: None  # type: ignore[assignment]
    bench.check_export = allow  # type: ignore[attr-defined]
    try:
        yield
    finally:
        trust.check_export, limits.check_npz_size = saved
        bench.check_export = saved[0]  # type: ignore[attr-defined]


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _paired(fn: Callable[[], object], n: int) -> tuple[float, float, float]:
    """(median s with checks, median s without, median of the per-pair ratios); on/off alternate to share drift."""
    on, off, ratios = [], [], []
    for i in range(n):
        if i % 2:
            a = _timed(fn)
            with _checks_off():
                b = _timed(fn)
        else:
            with _checks_off():
                b = _timed(fn)
            a = _timed(fn)
        on.append(a)
        off.append(b)
        ratios.append(a / b)
    return statistics.median(on), statistics.median(off), statistics.median(ratios)


def check_cost(export_dir: Path, n: int = 50) -> float:
    """Median seconds of the checks alone (seal, code scan, npz cap) on this export."""
    from modelport.engine.limits import check_npz_size
    from modelport.engine.pipeline import artifact_from_dir, read_record
    from modelport.folder.trust import check_export

    record = read_record(export_dir)
    files = artifact_from_dir(export_dir, record).files

    def checks() -> None:
        check_export(export_dir, record, files, trust_code=False)
        check_npz_size(export_dir / "reference.npz")

    return statistics.median(_timed(checks) for _ in range(n))


def measure(export_dir: Path, n_validate: int = 11, n_bench: int = 4) -> dict[str, float]:
    """validate and bench wall seconds with and without the checks, and the checks' own cost."""
    import modelport.commands.bench as bench
    from modelport.engine.pipeline import validate_export

    def run_validate() -> None:
        assert validate_export(export_dir).status == "passed"

    def run_bench() -> None:
        bench.bench_dirs([export_dir], max_seconds=0.3, write=False)

    run_validate()  # warm caches and imports
    out: dict[str, float] = {}
    out["validate_on"], out["validate_off"], out["validate_ratio"] = _paired(run_validate, n_validate)
    out["bench_on"], out["bench_off"], out["bench_ratio"] = _paired(run_bench, n_bench)
    out["checks_ms"] = check_cost(export_dir) * 1e3
    return out


def main() -> dict[str, dict[str, float]]:
    import modelport
    from modelport.testing import load_module

    models = load_module(MODEL, "models")
    formats = ["pt2"] + [f for f, mod in (("torchscript", "modelport_torchscript"), ("onnx", "modelport_onnx"))
                         if importlib.util.find_spec(mod)]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in formats:
            r = modelport.export(models.small_cnn(), fmt, modelport.vision(3, 32, 32), output_dir=Path(tmp) / fmt,
                                 source={"reference": f"{MODEL}:small_cnn"})
            if r.exit_code:
                continue
            results[fmt] = measure(Path(tmp) / fmt)
    print("| format | validate s (checks on / off) | validate ratio | bench s (on / off) | bench ratio | checks alone ms |")
    print("|---|---|---|---|---|---|")
    for fmt, m in results.items():
        print(f"| {fmt} | {m['validate_on']:.3f} / {m['validate_off']:.3f} | **{m['validate_ratio']:.2f}** "
              f"| {m['bench_on']:.2f} / {m['bench_off']:.2f} | **{m['bench_ratio']:.2f}** | {m['checks_ms']:.2f} |")
    print()
    print("Ratios are medians of on/off pairs run back to back (order alternating); bench wall time is dominated by its "
          "timing windows, so its ratio carries the machine's noise — the checks' own cost is the last column.")
    return results


if __name__ == "__main__":
    main()

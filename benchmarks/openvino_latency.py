"""OpenVINO fp32 / bf16 / int8 latency of the bundled CNN against PyTorch eager, same inputs and threads, one run.

    python benchmarks/openvino_latency.py                 # batch 1, all cores
    python benchmarks/openvino_latency.py --threads 2 --batch 1,8 --rounds 7

Exports ``examples/models.py:small_cnn`` (dynamic batch) through modelport three times — ``precision=fp32``
(INFERENCE_PRECISION_HINT f32), ``precision=bf16`` (hint bf16, fp16 weights) and ``int8=true`` (NNCF, calibrated
on random inputs: fine for latency, meaningless for accuracy) — validates each as the CLI does, then times each
runner and PyTorch eager. Timings are interleaved in rounds (every variant once per round) so a noisy shared
machine biases no variant; p50/p90 are over all rounds. Prints a markdown table; needs modelport and
modelport-export-openvino installed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "models.py"
VARIANTS: list[tuple[str, list[str]]] = [
    ("OpenVINO fp32", ["precision=fp32"]),
    ("OpenVINO bf16", ["precision=bf16"]),
    ("OpenVINO int8", ["int8=true", "allow_random_calibration=true", "calibration_size=64"]),
]


def _examples() -> Any:
    from modelport.testing import load_module

    return load_module(EXAMPLES, "modelport_examples_models")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _time_round(fn: Callable[[], Any], seconds: float, min_runs: int = 10) -> list[float]:
    """Run ``fn`` for about ``seconds`` (at least ``min_runs`` times); per-call latencies in ms."""
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < min_runs:
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return samples


def _pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def main(argv: list[str] | None = None) -> int:
    """Export, validate, time and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for PyTorch and OpenVINO")
    parser.add_argument("--batch", default="1", help="comma-separated batch sizes (default 1)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--seconds", type=float, default=0.5, help="seconds per variant per round")
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batch.split(",") if b.strip()]

    import modelport
    import openvino as ov
    import torch
    from modelport.engine.pipeline import artifact_from_dir, call_hook

    torch.set_num_threads(args.threads)
    model = _examples().small_cnn()
    spec = modelport.vision(3, 32, 32, dynamic_batch=True)
    host = modelport.get_plugin_manager()
    host.require_format("openvino")

    runners: list[tuple[str, Any, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="modelport-bench-") as tmp:
        for label, options in VARIANTS:
            print(f"exporting {label} ...", file=sys.stderr)
            result = modelport.export(model, ["openvino"], spec, output_dir=Path(tmp) / label.split()[-1],
                                      options=options, threads=args.threads, host=host)["openvino"]
            if result.path is None:
                print(f"{label}: export failed: {result.error}", file=sys.stderr)
                return 1
            artifact = artifact_from_dir(result.path)
            runner = call_hook(host, "openvino", "load_runner", artifact=artifact, options={"threads": args.threads})
            runners.append((label, runner, {
                "status": result.status, "max_abs_diff": result.record["validation"]["max_abs_diff"],
                "min_cosine": result.record["validation"]["min_cosine"],
                "weights": result.record["details"]["weight_compression"],
                "bytes": result.record["sizes"]["total_bytes"],
            }))

        rows = []
        for batch in batches:
            x = spec.make_numpy(batch=batch, seed=0)
            xt = spec.to_torch(x)

            def eager(xt: tuple[Any, ...] = xt) -> Any:
                with torch.no_grad():
                    return model(*xt)

            fns: list[tuple[str, Callable[[], Any]]] = [("PyTorch eager fp32", eager)]
            fns += [(label, lambda r=runner, x=x: r(x)) for label, runner, _ in runners]
            for _, fn in fns:  # warm-up
                for _ in range(10):
                    fn()
            samples: dict[str, list[float]] = {label: [] for label, _ in fns}
            for _ in range(args.rounds):
                for label, fn in fns:
                    samples[label].extend(_time_round(fn, args.seconds))
            eager_p50 = statistics.median(samples["PyTorch eager fp32"])
            for label, _ in fns:
                info = next((i for lab, _, i in runners if lab == label), None)
                runner = next((r for lab, r, _ in runners if lab == label), None)
                rows.append({
                    "variant": label, "batch": batch,
                    "hint": runner.precision if runner is not None else "fp32",
                    "weights": info["weights"] if info else "fp32",
                    "size_kb": info["bytes"] / 1024 if info else None,
                    "p50": _pct(samples[label], 50), "p90": _pct(samples[label], 90), "runs": len(samples[label]),
                    "speedup": eager_p50 / _pct(samples[label], 50),
                    "validation": (f"{info['status']} (max abs diff {info['max_abs_diff']:.1e}, "
                                   f"cosine {info['min_cosine']:.6f})") if info else "reference",
                })

    print(f"\nsmall_cnn (3x32x32, dynamic batch) · {_cpu_name()} · {os.cpu_count()} cores · threads {args.threads} · "
          f"torch {torch.__version__} · openvino {str(ov.get_version()).split('-')[0]} · "
          f"{args.rounds} interleaved rounds x {args.seconds:g} s\n")
    print("| variant | batch | inference precision | weights | size | p50 ms | p90 ms | runs | vs eager | validation |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        size = f"{r['size_kb']:.0f} KB" if r["size_kb"] else ""
        print(f"| {r['variant']} | {r['batch']} | {r['hint']} | {r['weights']} | {size} | {r['p50']:.3f} | "
              f"{r['p90']:.3f} | {r['runs']} | {r['speedup']:.2f}x | {r['validation']} |")
    print("\nint8 was calibrated on random inputs: its latency is real, its accuracy is not measured here "
          "(see plugins/export-openvino/README.md for int8 accuracy on real data).")
    return 0


if __name__ == "__main__":
    sys.exit(main())

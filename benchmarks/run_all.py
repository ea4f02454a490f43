"""Run every benchmark in one go and write benchmarks/RESULTS.md (date, machine, versions, the four tables).

    nox -s bench            # or: python benchmarks/run_all.py  (with modelport and its plugins installed)
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata as im
import io
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import large_model  # noqa: E402
import overhead  # noqa: E402
import speed  # noqa: E402
import startup  # noqa: E402


def _capture(fn, *args, **kwargs) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        fn(*args, **kwargs)
    return buf.getvalue()


def _versions() -> str:
    names = ["modelport", "torch", "numpy", "onnx", "onnxruntime", "onnxslim", "openvino", "nncf", "coremltools",
             "litert-torch", "ai-edge-litert", "executorch"]
    out = []
    for n in names:
        try:
            out.append(f"{n} {im.version(n)}")
        except im.PackageNotFoundError:
            pass
    out += [f"{d.metadata['Name']} {d.version}" for d in im.distributions() if d.metadata["Name"].startswith("modelport-")]
    return ", ".join(sorted(set(out)))


def main() -> None:
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    sections = [
        ("1. CLI start-up", startup.main),
        ("2. Framework overhead", overhead.main),
        ("3. Artifact speed", speed.main),
        ("4. Large model (> 2 GB) to ONNX: peak memory", large_model.main),
    ]
    parts = [
        "# Benchmark results", "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {cpu}, {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}",
        f"- versions: {_versions()}",
        "- how: `nox -s bench` (benchmarks/run_all.py); each ratio is measured within one run", "",
    ]
    for title, fn in sections:
        print(f"running {title} ...", file=sys.stderr)
        try:
            body = _capture(fn)
        except Exception as exc:  # a benchmark that cannot run here says so in the results
            body = f"not measured: {type(exc).__name__}: {exc}"
        parts += [f"## {title}", "", body.strip(), ""]
    (HERE / "RESULTS.md").write_text("\n".join(parts))
    print("\n".join(parts))


if __name__ == "__main__":
    main()

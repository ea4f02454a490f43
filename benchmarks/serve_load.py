"""Load figures of `modelport serve`: jobs/minute and API latency under 20 concurrent jobs, and the
first-job vs next-job latency of warm and cold workers. Writes the "serve" section of benchmarks/RESULTS.md.

    python benchmarks/serve_load.py [--jobs 20] [--workers 2] [--write]

Needs modelport-serve installed. The server is a real `modelport serve` process on 127.0.0.1; jobs export the
bundled tiny-cnn example to pt2 (validated), so the numbers measure the service, not a converter.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
TOKEN = "bench-token-0123456789abcdef"
TERMINAL = {"succeeded", "failed", "validation-failed", "cancelled"}


def _start(root: Path, workers: int, *extra: str) -> tuple[subprocess.Popen[bytes], str, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MODELPORT_SERVE_TOKEN": TOKEN, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "modelport", "serve", "--port", str(port), "--exports-root",
                             str(root), "--workers", str(workers), "--threads", "1", "--log-level", "warning", *extra],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(url + "/api/health", headers=_h(), timeout=1).status_code == 200:
                return proc, url, time.perf_counter() - t0
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        time.sleep(0.1)


def _h() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(30)


def _run_job(c: httpx.Client, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    job_id = c.post("/api/exports", json=body).json()["id"]
    while True:
        job = c.get(f"/api/exports/{job_id}").json()
        if job["state"] in TERMINAL:
            return time.perf_counter() - t0, job
        time.sleep(0.05)


def first_vs_next(workers_warm: bool) -> dict[str, float]:
    """Job wall time (POST to final state) of the first and the next jobs on one worker."""
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, started = _start(Path(tmp), 1, *(() if workers_warm else ("--no-warm",)))
        try:
            body = {"model": "tiny-cnn", "checkpoint": "best", "formats": ["pt2"]}
            with httpx.Client(base_url=url, headers=_h(), timeout=60) as c:
                _wait_ready(c, 1)
                times = [_run_job(c, body)[0] for _ in range(4)]
        finally:
            _stop(proc)
    return {"server_start_s": started, "first_s": times[0], "next_s": statistics.median(times[1:])}


def _wait_ready(c: httpx.Client, workers: int) -> None:
    """Until the pool reports its workers ready (a warm worker is ready once torch and the plugins are imported)."""
    while c.get("/api/health").json()["executor_status"]["ready"] < workers:
        time.sleep(0.1)


def load(jobs: int, workers: int) -> dict[str, Any]:
    """`jobs` jobs posted at once; jobs/minute until the last finishes; API latency while they run."""
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, _ = _start(Path(tmp), workers)
        latencies: list[float] = []
        stop = threading.Event()
        try:
            with httpx.Client(base_url=url, headers=_h(), timeout=60) as c:
                _wait_ready(c, workers)

                def post(i: int) -> str:
                    t0 = time.perf_counter()
                    r = c.post("/api/exports", json={"model": "tiny-cnn", "checkpoint": "best" if i % 2 else "last",
                                                     "formats": ["pt2"]})
                    latencies.append(time.perf_counter() - t0)
                    return str(r.json()["id"])

                def prober() -> None:  # a client polling the list, as the page and a platform do
                    while not stop.is_set():
                        t0 = time.perf_counter()
                        c.get("/api/exports", params={"limit": 50})
                        latencies.append(time.perf_counter() - t0)
                        time.sleep(0.05)

                t_start = time.perf_counter()
                probe = threading.Thread(target=prober)
                probe.start()
                with ThreadPoolExecutor(jobs) as pool:
                    ids = list(pool.map(post, range(jobs)))
                states: dict[str, str] = {}
                while len(states) < jobs:
                    for job_id in ids:
                        if job_id not in states:
                            t0 = time.perf_counter()
                            job = c.get(f"/api/exports/{job_id}").json()
                            latencies.append(time.perf_counter() - t0)
                            if job["state"] in TERMINAL:
                                states[job_id] = job["state"]
                    time.sleep(0.2)
                elapsed = time.perf_counter() - t_start
                stop.set()
                probe.join()
        finally:
            stop.set()
            _stop(proc)
    lat = sorted(latencies)
    return {"jobs": jobs, "workers": workers, "elapsed_s": elapsed, "jobs_per_min": jobs / elapsed * 60,
            "succeeded": sum(s == "succeeded" for s in states.values()), "requests": len(lat),
            "p50_ms": statistics.median(lat) * 1000, "p90_ms": lat[int(0.9 * (len(lat) - 1))] * 1000,
            "max_ms": lat[-1] * 1000}


def render(ld: dict[str, Any], warm: dict[str, float], cold: dict[str, float]) -> str:
    return "\n".join([
        "<!-- serve:begin (written by benchmarks/serve_load.py) -->",
        "## Serve: load and warm workers",
        "",
        f"`python benchmarks/serve_load.py --write` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: a real "
        "`modelport serve` on 127.0.0.1, each job the bundled tiny-cnn to pt2 with validation, `--threads 1`; "
        f"{os.cpu_count()} cores, 1-minute load average {os.getloadavg()[0]:.1f} at the end (other work shares them).",
        "",
        "| measurement | result |",
        "|---|---|",
        f"| {ld['jobs']} concurrent jobs, {ld['workers']} workers | {ld['succeeded']}/{ld['jobs']} succeeded in "
        f"{ld['elapsed_s']:.1f} s = **{ld['jobs_per_min']:.1f} jobs/minute** |",
        f"| API latency while they ran ({ld['requests']} requests: POST, GET job, GET list) | p50 **{ld['p50_ms']:.1f} ms**, "
        f"p90 {ld['p90_ms']:.1f} ms, max {ld['max_ms']:.1f} ms |",
        f"| warm worker: first job / next job (POST to final state) | **{warm['first_s']:.2f} s** / "
        f"**{warm['next_s']:.2f} s** |",
        f"| cold worker (`--no-warm`): first job / next job | **{cold['first_s']:.2f} s** / **{cold['next_s']:.2f} s** |",
        "",
        "A cold worker's first job pays for importing torch, the pipeline and the plugins; a warm worker paid for it "
        "when the server started, so its first job costs about what the next ones do.",
        "<!-- serve:end -->",
        "",
    ])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="update the serve section of benchmarks/RESULTS.md")
    args = ap.parse_args()
    warm = first_vs_next(True)
    cold = first_vs_next(False)
    ld = load(args.jobs, args.workers)
    text = render(ld, warm, cold)
    print(text)
    if args.write:
        path = HERE / "RESULTS.md"
        old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
        block = re.compile(r"<!-- serve:begin.*?<!-- serve:end -->\n?", re.S)
        new = block.sub(text, old) if block.search(old) else old.rstrip("\n") + "\n\n" + text
        path.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    main()

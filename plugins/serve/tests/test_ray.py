"""`--executor ray`: each format of a job is a Ray task, on a local Ray instance this test starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_models_dir, start_server

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'modelport-serve[ray]')")


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`ray start --head` on this machine, as an operator would start a cluster's head node."""
    ray_bin = shutil.which("ray", path=os.path.dirname(sys.executable))
    assert ray_bin, "the ray command is missing from the environment"
    tmp = tmp_path_factory.mktemp("ray")
    port = 6390 + os.getpid() % 500
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([ray_bin, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                          "--disable-usage-stats", f"--temp-dir={tmp}"], capture_output=True, text=True, env=env,
                         timeout=180)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, timeout=120, env=env)


def test_job_on_ray_runs_each_format_as_a_task(ray_head: str, tmp_path: Path) -> None:
    from modelport import FormatSpec
    from modelport.executors_ray import task_options as core_task_options
    from modelport_serve.ray_executor import task_options

    # a format whose spec says it needs a GPU (TensorRT's does) asks Ray for one; the rule is export --executor ray's
    gpu_spec = FormatSpec(name="gpu-format", display_name="GPU format", files=("x",), needs_gpu=True)
    assert core_task_options(gpu_spec, 2) == {"num_cpus": 2, "max_retries": 0, "num_gpus": 1}
    assert task_options("pt2", None) == {"num_cpus": 1, "max_retries": 0}
    server = start_server(tmp_path, make_models_dir(tmp_path), workers=2,
                          extra=("--executor", "ray", "--ray-address", ray_head), startup_timeout=180)
    try:
        with server.client() as c:
            health = c.get("/api/health").json()
            assert health["executor"] == "ray"
            job_id = c.post("/api/exports", json={"model": "tiny-cnn", "checkpoint": "last",
                                                  "formats": ["pt2"]}).json()["id"]
            job = server.wait_job(c, job_id, timeout=240)
            assert job["state"] == "succeeded", (job, server.log_text()[-3000:])
            pt2 = job["formats"]["pt2"]
            assert pt2["validation"]["status"] == "passed"
            f = c.get(f"/api/exports/{job_id}/files/model.pt2")
            assert f.status_code == 200 and f.headers["x-content-sha256"] == pt2["files"]["model.pt2"]["sha256"]
            events = [line for line in c.get(f"/api/exports/{job_id}/events").text.splitlines()
                      if line.startswith("data: ")]
            assert any('"exporting pt2"' in e for e in events), "phase events stream back from the Ray task"
    finally:
        server.stop()

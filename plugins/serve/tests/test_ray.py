"""`--executor ray`: each format of a job is a Ray task, on a local Ray instance this test starts."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import make_models_dir, start_server

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'modelport-serve[ray]')")


@dataclass(frozen=True)
class RayHead:
    address: str
    env: dict[str, str]  # what a driver of this cluster needs: token auth on, the cluster's token file


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    """`ray start --head` on this machine with token authentication, as an operator would start a cluster's head
    node; its token is a file of this test's, so a ``~/.ray/auth_token`` on the machine changes nothing."""
    ray_bin = shutil.which("ray", path=os.path.dirname(sys.executable))
    assert ray_bin, "the ray command is missing from the environment"
    tmp = tmp_path_factory.mktemp("ray")
    token_file = tmp / "auth_token"
    token_file.write_text(secrets.token_hex(32))
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file)}
    port = 6390 + os.getpid() % 500
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1", **auth}
    env.pop("RAY_AUTH_TOKEN", None)
    out = subprocess.run([ray_bin, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                          "--disable-usage-stats", f"--temp-dir={tmp}"], capture_output=True, text=True, env=env,
                         timeout=180)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    try:
        yield RayHead(f"127.0.0.1:{port}", auth)
    finally:
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, timeout=120, env=env)


def test_serve_refuses_a_cluster_it_cannot_authenticate_to_with_one_line(ray_head: RayHead, tmp_path: Path) -> None:
    # the operator forgot RAY_AUTH_MODE=token: Ray never turns token auth on for an explicit address by itself
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "MODELPORT_SERVE_TOKEN": "t" * 24}
    env.pop("RAY_AUTH_TOKEN", None)
    out = subprocess.run([sys.executable, "-m", "modelport", "serve", "--port", "0", "--exports-root",
                          str(tmp_path / "exports"), "--models-dir", str(make_models_dir(tmp_path)),
                          "--executor", "ray", "--ray-address", ray_head.address],
                         capture_output=True, text=True, env=env, timeout=180)
    assert out.returncode == 3, out.stdout[-2000:] + out.stderr[-2000:]
    errors = out.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ") and "RAY_AUTH_MODE=token" in errors[0] and ray_head.address in errors[0], out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_job_on_ray_runs_each_format_as_a_task(ray_head: RayHead, tmp_path: Path) -> None:
    from modelport import FormatSpec
    from modelport.engine.executors_ray import task_options as core_task_options
    from modelport_serve.ray_executor import task_options

    # a format whose spec says it needs a GPU (TensorRT's does) asks Ray for one; the rule is export --executor ray's
    gpu_spec = FormatSpec(name="gpu-format", display_name="GPU format", files=("x",), needs_gpu=True)
    assert core_task_options(gpu_spec, 2) == {"num_cpus": 2, "max_retries": 0, "num_gpus": 1}
    assert task_options("pt2", None) == {"num_cpus": 1, "max_retries": 0}
    server = start_server(tmp_path, make_models_dir(tmp_path), workers=2,
                          extra=("--executor", "ray", "--ray-address", ray_head.address), startup_timeout=180,
                          env_extra=ray_head.env)
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

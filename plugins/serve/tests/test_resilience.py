"""Jobs under failure: a worker killed mid-export, a cancel, a timeout, and the server restarted mid-queue."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Server, make_models_dir, start_server, store_entries


def _wait_phase(server: Server, client: Any, job_id: str, phase: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/exports/{job_id}").json()
        if job["phase"] == phase:
            return job
        assert job["state"] in ("queued", "running"), job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached phase {phase!r}")


def _no_staging_left(root: Path) -> None:
    leftovers = [p.name for p in root.iterdir() if p.name.startswith(".modelport-tmp-")]
    assert not leftovers, leftovers


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One worker (so jobs queue behind each other), a 12 s job timeout, and a model whose forward sleeps 2 s."""
    root = tmp_path_factory.mktemp("resilience")
    server = start_server(root, make_models_dir(root, slow_delay=2.0), workers=1, extra=("--job-timeout", "12"))
    yield server
    server.stop()


def test_worker_killed_mid_export_fails_the_job_and_leaves_nothing(one_worker: Server) -> None:
    server = one_worker
    with server.client() as c:
        job_id = c.post("/api/exports", json={"model": "slow", "formats": ["pt2"], "validate": False}).json()["id"]
        job = _wait_phase(server, c, job_id, "exporting pt2")
        pid = job["worker_pid"]
        assert pid and pid != server.proc.pid
        assert any(p.name.startswith(".modelport-tmp-") for p in server.root.iterdir()), "export was mid-way"
        os.kill(pid, signal.SIGKILL)
        job = server.wait_job(c, job_id)
        assert job["state"] == "failed" and job["exit_code"] == 1
        assert "died" in job["error"] and "SIGKILL" in job["error"]
        assert store_entries(server.root) in ([], ["index.json"])
        _no_staging_left(server.root)
        assert c.get("/api/health").json()["executor_status"]["workers"] == 1, "the dead worker is replaced"


def test_cancel_running_job_stops_its_worker_and_cleans_up(one_worker: Server) -> None:
    server = one_worker
    with server.client() as c:
        job_id = c.post("/api/exports", json={"model": "slow", "formats": ["pt2"], "validate": False}).json()["id"]
        queued = c.post("/api/exports", json={"model": "tiny-cnn", "formats": ["pt2"]}).json()["id"]
        job = _wait_phase(server, c, job_id, "exporting pt2")
        r = c.delete(f"/api/exports/{job_id}")
        assert r.status_code == 200 and r.json()["state"] == "cancelled"
        assert c.get(f"/api/exports/{job_id}").json()["state"] == "cancelled"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{job['worker_pid']}").exists():
            time.sleep(0.1)
        assert not Path(f"/proc/{job['worker_pid']}").exists(), "the cancelled job's worker still runs"
        _no_staging_left(server.root)
        assert server.wait_job(c, queued)["state"] == "succeeded"
        c.delete(f"/api/exports/{queued}")


def test_job_timeout_kills_the_job(one_worker: Server) -> None:
    server = one_worker
    with server.client() as c:
        # the reference run alone calls the 20 s forward 5 times: only the 12 s timeout can end it
        job_id = c.post("/api/exports", json={"model": "slower", "formats": ["pt2"]}).json()["id"]
        job = server.wait_job(c, job_id, timeout=90)
        assert job["state"] == "failed" and "timed out after 12 s" in job["error"], job
        assert store_entries(server.root) in ([], ["index.json"])
        _no_staging_left(server.root)


def test_server_restarted_mid_queue_then_shut_down_gracefully(tmp_path: Path) -> None:
    models = make_models_dir(tmp_path, slow_delay=2.0)
    server = start_server(tmp_path, models, workers=1)
    with server.client() as c:
        running = c.post("/api/exports", json={"model": "slow", "formats": ["pt2"], "validate": False}).json()["id"]
        queued = [c.post("/api/exports", json={"model": "tiny-cnn", "checkpoint": ck, "formats": ["pt2"]}).json()["id"]
                  for ck in ("best", "last")]
        job = _wait_phase(server, c, running, "exporting pt2")
    worker = job["worker_pid"]
    os.killpg(server.proc.pid, signal.SIGKILL)  # the server dies without any chance to clean up
    server.proc.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{worker}").exists():
        time.sleep(0.1)

    again = start_server(tmp_path, models, workers=1)
    try:
        with again.client() as c:
            failed = c.get(f"/api/exports/{running}").json()
            assert failed["state"] == "failed"
            assert "server stopped while this job was running" in failed["error"]
            for job_id in queued:
                assert again.wait_job(c, job_id)["state"] == "succeeded", "queued jobs resume after a restart"
            states = {j["id"]: j["state"] for j in c.get("/api/exports").json()["exports"]}
            assert states == {running: "failed", queued[0]: "succeeded", queued[1]: "succeeded"}
            index = json.loads((again.root / "index.json").read_text())["exports"]
            assert len(index) == 2 and all(e["model_name"] == "tiny-cnn" for e in index)
            _no_staging_left(again.root)

            # a graceful stop (SIGTERM) fails the running job with the reason and leaves no partial output
            last = c.post("/api/exports", json={"model": "slow", "formats": ["pt2"], "validate": False}).json()["id"]
            _wait_phase(again, c, last, "exporting pt2")
        again.stop(signal.SIGTERM)
        assert "Application shutdown complete" in again.log_text()
    finally:
        again.stop(signal.SIGKILL)
    db = sqlite3.connect(again.root / ".serve" / "jobs.sqlite")
    state, error = db.execute("SELECT state, error FROM jobs WHERE id = ?", (last,)).fetchone()
    db.close()
    assert state == "failed" and "shut down" in error
    _no_staging_left(again.root)
    assert len(json.loads((again.root / "index.json").read_text())["exports"]) == 2

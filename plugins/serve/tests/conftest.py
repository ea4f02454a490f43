"""A real ``modelport serve`` process on 127.0.0.1 for each test module that needs one, driven over HTTP."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from modelport_serve.catalog import bundled_models

TOKEN = "test-token-0123456789abcdef"
TERMINAL = {"succeeded", "failed", "validation-failed", "cancelled"}

SLOW_MODEL = '''
import time

import torch
from torch import nn


class SlowNet(nn.Module):
    """A small classifier whose forward sleeps, so a test can act while a job is mid-way."""

    def __init__(self, delay: float = 1.0) -> None:
        super().__init__()
        self.delay = delay
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.delay)
        return self.fc(x)


def build(delay: float = 1.0) -> SlowNet:
    return SlowNet(delay)
'''


def make_models_dir(root: Path, slow_delay: float = 1.5) -> Path:
    """The bundled example (tiny-cnn with best/last checkpoints) plus ``slow``, a model whose forward sleeps
    ``slow_delay`` seconds, and ``slower`` (20 s: a job that can only end by timeout or cancel)."""
    models = root / "models"
    shutil.copytree(bundled_models(), models, ignore=shutil.ignore_patterns("__pycache__"))
    for name, delay in (("slow", slow_delay), ("slower", 20.0)):
        folder = models / name
        folder.mkdir()
        (folder / "model.py").write_text(SLOW_MODEL)
        (folder / "modelport.toml").write_text(
            f'factory = "model.py:build"\nmodel_kwargs = {{ delay = {delay} }}\ninputs = ["x:1x8:float32"]\n')
    return models


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One server process: its URL, token, exports root and log."""

    proc: subprocess.Popen[bytes]
    url: str
    token: str | None
    root: Path
    models: Path
    log: Path

    def client(self, token: str | bool | None = True, timeout: float = 30) -> httpx.Client:
        tok = self.token if token is True else (None if token is False else token)
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def wait_job(self, client: httpx.Client, job_id: str, timeout: float = 120, until: set[str] | None = None) -> Any:
        until = until or TERMINAL
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = client.get(f"/api/exports/{job_id}").json()
            if job["state"] in until:
                return job
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} did not reach {until} in {timeout}s: {job}\n{self.log_text()[-3000:]}")


def start_server(root: Path, models: Path, *, token: str | None = TOKEN, workers: int = 2,
                 extra: tuple[str, ...] = (), startup_timeout: float = 90, env_extra: dict[str, str] | None = None,
                 ) -> Server:
    port = free_port()
    log = root / f"server-{port}.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    env.pop("MODELPORT_SERVE_TOKEN", None)
    if token:
        env["MODELPORT_SERVE_TOKEN"] = token
    cmd = [sys.executable, "-m", "modelport", "serve", "--port", str(port), "--exports-root", str(root / "exports"),
           "--models-dir", str(models), "--workers", str(workers), "--threads", "1", *extra]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = Server(proc, f"http://127.0.0.1:{port}", token, root / "exports", models, log)
    deadline = time.monotonic() + startup_timeout
    with server.client(timeout=2) as c:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}:\n{server.log_text()[-3000:]}")
            try:
                if c.get("/api/health").status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    server.stop(signal.SIGKILL)
    raise AssertionError(f"server did not start in {startup_timeout}s:\n{server.log_text()[-3000:]}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a token, 2 warm workers and a 1 MB upload cap, shared by the API and browser tests."""
    root = tmp_path_factory.mktemp("serve")
    srv = start_server(root, make_models_dir(root), extra=("--max-upload-mb", "1"))
    yield srv
    srv.stop()


def sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def store_entries(root: Path) -> list[str]:
    """What is in the exports store, besides the server's own .serve folder."""
    return sorted(p.name for p in root.iterdir() if p.name not in (".serve", ".index.lock")) if root.exists() else []

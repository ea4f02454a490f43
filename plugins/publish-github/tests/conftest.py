"""Shared fixtures: two real exports of the bundled CNN, a fake GitHub on 127.0.0.1, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_github import FakeGitHub

MODELS = Path(__file__).resolve().parents[3] / "examples" / "models.py"
SENTINEL = "ghp_SENTINEL_d0_not_l3ak_4b2f8e"


@dataclass
class Exports:
    """Two pt2 exports of one model (small_cnn): dynamic batch (default options) and static batch with strict=true."""

    dynamic: Path
    strict: Path


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Exports:
    # With only the core and this plugin installed, pt2 is the one format: two option sets of the same CNN
    # stand in for "two formats of one model" (the integration session adds an onnx + pt2 round trip).
    root = tmp_path_factory.mktemp("exports")
    jobs = {
        "pt2-dynamic": ["--dynamic-batch"],
        "pt2-strict": ["-o", "strict=true"],
    }
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "modelport", "export", f"{MODELS}:small_cnn", "--vision", "3x32x32", "-f", "pt2",
             *extra, "--output-dir", str(root / name)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, extra in jobs.items()
    }
    for name, p in procs.items():
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, f"export {name} failed:\n{out}"
    return Exports(root / "pt2-dynamic", root / "pt2-strict")


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub(SENTINEL) as server:
        server.add_repo("alice/models")
        yield server


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user with GITHUB_TOKEN set and no other GitHub or Hugging Face settings."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "GITHUB_", "GH_"))}
    e.update(GITHUB_TOKEN=SENTINEL, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    return e


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        # progress bars (tqdm) rewrite their line with \r; an error line starts after the last one
        return [part for line in self.stderr.splitlines() for part in line.split("\r") if part.startswith("error:")]


def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> Run:
    p = subprocess.run([sys.executable, "-m", "modelport", *args], env=env, capture_output=True, text=True, timeout=timeout)
    return Run(p.returncode, p.stdout, p.stderr)


def scan_for(secret: str, *roots: Path) -> list[str]:
    """Every file under ``roots`` whose bytes contain ``secret``."""
    hits = []
    for root in roots:
        for p in Path(root).rglob("*"):
            if p.is_file() and not p.is_symlink() and secret.encode() in p.read_bytes():
                hits.append(str(p))
    return hits

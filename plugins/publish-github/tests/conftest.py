"""Fixtures: two real exports of the bundled CNN, a fake GitHub on 127.0.0.1 with one repo, and a GitHub user's environment.

Each test gets a fresh fake (a modelport.testing.http.RecordingServer) that knows the repository alice/models.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from modelport.testing.http import ExportPair, export_pair, local_env

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_github import FakeGitHub

CNN = f"{Path(__file__).resolve().parents[3] / 'examples' / 'models.py'}:small_cnn"
SENTINEL = "ghp_SENTINEL_d0_not_l3ak_4b2f8e"


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> ExportPair:
    return export_pair(tmp_path_factory.mktemp("exports"), CNN, "--vision", "3x32x32")


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub(SENTINEL) as server:
        server.add_repo("alice/models")
        yield server


@pytest.fixture
def env() -> dict[str, str]:
    """The environment of a user with GITHUB_TOKEN set and no other GitHub or Hugging Face settings."""
    return local_env(("HF_", "HUGGING", "GITHUB_", "GH_"), GITHUB_TOKEN=SENTINEL)

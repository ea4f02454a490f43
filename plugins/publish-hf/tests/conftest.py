"""Fixtures: two real exports of the bundled CNN, a fake Hub on 127.0.0.1, and a Hugging Face user's environment.

The fake Hub, like every publisher's fake, is a modelport.testing.http.RecordingServer; a fresh one per test.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from modelport.testing.http import ExportPair, export_pair, local_env

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_hub import FakeHub

CNN = f"{Path(__file__).resolve().parents[3] / 'examples' / 'models.py'}:small_cnn"
SENTINEL = "hf_SENTINEL_d0_not_l3ak_7c1e9a"


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> ExportPair:
    return export_pair(tmp_path_factory.mktemp("exports"), CNN, "--vision", "3x32x32")


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub(SENTINEL) as server:
        yield server


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user with HF_TOKEN set and nothing else from this machine's Hugging Face setup."""
    home = tmp_path / "hf-home"
    home.mkdir()
    return local_env(("HF_", "HUGGING", "GITHUB_", "GH_"), HF_TOKEN=SENTINEL, HF_HOME=str(home),
                     HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1")

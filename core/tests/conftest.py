"""Shared helpers: run the real CLI (in-process unless asked), find the bundled example models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from modelport.testing import run_cli  # the one CLI runner (in-process unless asked); tests import it from here

# shared 2-core machines: timing is not what these properties test
settings.register_profile("modelport", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("modelport")

# CLI children inherit these: one OpenMP/BLAS thread each unless a test asks for more (--threads). Dozens of
# processes with a pool per core made OpenBLAS fail pthread_create (EAGAIN) on the 2-core CI machine.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
# multi-format exports run one format after another in the test process unless a test asks for --jobs: worker
# processes would not see a test's monkeypatches, and each costs a torch import (test_executors.py tests them)
os.environ.setdefault("MODELPORT_JOBS", "1")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "models.py"
CNN = f"{EXAMPLES}:small_cnn"
TRANSFORMER = f"{EXAMPLES}:small_transformer"
DATA_DEPENDENT = f"{EXAMPLES}:data_dependent"


@pytest.fixture
def cli():
    return run_cli


def make_plugin_dist(root: Path, dist: str, module: str, source: str, entry_name: str, version: str = "0.0.1") -> Path:
    """Install a plugin by hand into ``root`` (module + .dist-info with an entry point) for PYTHONPATH use."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(source)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[modelport]\n{entry_name} = {module}\n")
    return root

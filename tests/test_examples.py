"""Every example in examples/ runs: the Python API and CLI end to end, the Lightning checkpoint, and the two
third-party plugins, each installed with pip (into a folder of its own) and tested with its own tests."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _can_export(fmt: str) -> bool:
    import modelport

    return any(row.name == fmt and row.can_export for row in modelport.formats())


HAS_ONNX = _can_export("onnx")


def run(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, **(env or {})})


def test_python_api_example(tmp_path):
    r = run([sys.executable, str(EXAMPLES / "python_api.py"), str(tmp_path)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pt2: passed" in r.stdout
    if HAS_ONNX:
        assert "onnx: passed" in r.stdout
    assert "re-validated pt2: passed" in r.stdout
    index = json.loads((tmp_path / "registry" / "index.json").read_text())
    assert {e["version"] for e in index["exports"]} == {"v1-pt2"} | ({"v1-onnx"} if HAS_ONNX else set())
    assert (tmp_path / "deployed" / "model.pt2").is_file()
    assert "(same as the PyTorch model)" in r.stdout


def _readme_block(lang: str, after: str) -> str:
    """The first ```LANG block of README.md after the line containing ``after``."""
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(after)
    m = re.compile(rf"^```{lang}\n(.*?)^```", re.M | re.S).search(text, start)
    assert m, f"README.md: no {lang} block after {after!r}"
    return m.group(1)


@pytest.mark.skipif(not HAS_ONNX, reason="the README's snippet exports onnx")
def test_readme_python_snippet_is_the_quickstart_example_and_prints_what_the_readme_shows(tmp_path):
    """The README's Python snippet is examples/quickstart.py (below its marker), runs from any folder, and its
    output has the lines the README shows (numbers may differ)."""
    import re

    script = (EXAMPLES / "quickstart.py").read_text(encoding="utf-8")
    snippet = _readme_block("python", "Python API (")
    assert script.split("# ---- README snippet ----\n", 1)[1] == snippet
    r = run([sys.executable, str(EXAMPLES / "quickstart.py")], cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    shown = _readme_block("text", "Python API (").splitlines()
    got = r.stdout.splitlines()

    def shape(line: str) -> str:  # numbers and the folder it ran in may differ
        return re.sub(r"file://\S*/registry/", "file://DIR/registry/", re.sub(r"\d\.\de[-+]\d\d", "N", line))

    assert [shape(x) for x in got] == [shape(x) for x in shown], r.stdout
    assert (tmp_path / "exports" / "cnn" / "onnx" / "model.onnx").is_file()
    assert (tmp_path / "registry" / "index.json").is_file()


def test_cli_example(tmp_path):
    env = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    r = run(["bash", str(EXAMPLES / "cli.sh"), str(tmp_path)], env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (tmp_path / "cnn" / "pt2" / "bench.json").is_file()
    assert (tmp_path / "cnn" / "onnx").is_dir() == HAS_ONNX
    assert json.loads((tmp_path / "registry" / "index.json").read_text())["exports"][0]["id"] == "small_cnn/v1"
    assert (tmp_path / "deployed" / "model.pt2").is_file()
    assert "sha256 verified" in r.stdout


def test_cli_example_stops_at_the_first_failure(tmp_path):
    """``set -e``: a failing step (here: no modelport on PATH at all) fails the script, it does not carry on."""
    env = {"PATH": "/usr/bin:/bin"}
    r = run(["bash", str(EXAMPLES / "cli.sh"), str(tmp_path)], env=env)
    assert r.returncode != 0 and "modelport" in r.stderr
    assert not (tmp_path / "registry").exists()


def test_lightning_checkpoint_example(tmp_path):
    r = run([sys.executable, str(EXAMPLES / "lightning_checkpoint.py"), str(tmp_path)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "prefix stripped: model." in r.stdout
    assert "artifact == trained network: True; == untrained factory: False" in r.stdout
    ckpt_keys = json.loads((tmp_path / "export" / "export.json").read_text())["source"]["checkpoint"]["keys"]
    assert ckpt_keys == 20


def _pip_install_target(src: Path, site: Path) -> None:
    """pip install SRC into the folder SITE without its dependencies (the environment already has them)."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(src)]
    if importlib.util.find_spec("hatchling") is not None:
        cmd.insert(5, "--no-build-isolation")
    r = run(cmd, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def _run_plugin_tests(plugin_dir: Path, site: Path) -> str:
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    r = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=plugin_dir, env=env)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    summary = r.stdout.strip().splitlines()[-1]
    assert "skipped" not in summary and "failed" not in summary, summary
    return summary


def test_safetensors_plugin_installs_with_pip_and_passes_its_tests(tmp_path):
    pytest.importorskip("safetensors", reason="needs safetensors (tests/requirements.txt)")
    site = tmp_path / "site"
    _pip_install_target(EXAMPLES / "modelport-export-safetensors", site)
    assert (site / "modelport_safetensors" / "__init__.py").is_file()
    summary = _run_plugin_tests(EXAMPLES / "modelport-export-safetensors", site)
    assert "15 passed" in summary, summary


@pytest.mark.skipif(not HAS_ONNX, reason="the ONNX stamp wraps modelport-export-onnx, which is not installed or not "
                                         "available here (see `modelport formats`)")
def test_onnx_stamp_wrapper_plugin_installs_with_pip_and_passes_its_tests(tmp_path):
    site = tmp_path / "site"
    _pip_install_target(EXAMPLES / "modelport-onnx-stamp", site)
    summary = _run_plugin_tests(EXAMPLES / "modelport-onnx-stamp", site)
    assert "3 passed" in summary, summary

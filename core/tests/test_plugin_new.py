"""``modelport plugins new``: the generated distribution installs with pip and passes its own tests as generated."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest
import tomllib
from conftest import run_cli


def test_generates_a_distribution_with_entry_point(tmp_path):
    r = run_cli("plugins", "new", "acme-fmt", "--display-name", "Acme Format", "--output-dir", str(tmp_path / "p"))
    assert r.returncode == 0, r.stderr
    root = tmp_path / "p"
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == [".gitignore", "README.md", "pyproject.toml", "src/modelport_acme_fmt/__init__.py",
                     "src/modelport_acme_fmt/format.py",
                     "tests/test_modelport_acme_fmt.py", "tests/test_modelport_acme_fmt_conformance.py"]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["name"] == "modelport-export-acme-fmt"
    assert project["entry-points"]["modelport"] == {"acme-fmt": "modelport_acme_fmt"}
    assert any(d.startswith("modelport>=") for d in project["dependencies"])
    module = (root / "src/modelport_acme_fmt/__init__.py").read_text()
    assert 'FORMAT = "acme-fmt"' in module and 'display_name="Acme Format"' in module
    # a format-object plugin: the spec names its object lazily, and no method guards on the format
    assert 'implementation="modelport_acme_fmt.format:Format"' in module
    assert "import modelport_acme_fmt.format" not in module and "from modelport_acme_fmt.format" not in module
    assert "!= FORMAT" not in "".join((root / f).read_text() for f in files)
    assert "{{" not in "".join((root / f).read_text() for f in files)
    assert "pip install -e" in r.stdout and "src/modelport_acme_fmt/format.py" in r.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["onnx"], "already belongs to modelport-export-onnx"),
    (["pt2"], "already belongs to modelport (built in)"),
    (["My Format"], "use lower-case letters"),
    (["1fmt"], "use lower-case letters"),
])
def test_refuses_bad_or_taken_names(tmp_path, args, message):
    r = run_cli("plugins", "new", *args, "--output-dir", str(tmp_path / "p"))
    assert r.returncode == 3
    assert message in r.stderr
    assert not (tmp_path / "p").exists()


def test_refuses_a_non_empty_folder_without_force(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "keep.txt").write_text("mine")
    r = run_cli("plugin", "new", "zed", "--output-dir", str(tmp_path / "p"))  # the old spelling still works
    assert r.returncode == 3 and "--force" in r.stderr
    r = run_cli("plugin", "new", "zed", "--output-dir", str(tmp_path / "p"), "--force")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "p" / "keep.txt").read_text() == "mine"
    assert (tmp_path / "p" / "src" / "modelport_zed" / "__init__.py").is_file()


def _pip_install_target(src, site) -> None:
    """pip install SRC into the folder SITE (no dependencies: the core is already installed here)."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(src)]
    if importlib.util.find_spec("hatchling") is not None:
        cmd.insert(5, "--no-build-isolation")  # no index needed when the build backend is here already
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def test_generated_plugin_installs_and_passes_its_own_tests(tmp_path):
    root = tmp_path / "modelport-export-gen"
    r = run_cli("plugins", "new", "gen", "--output-dir", str(root))
    assert r.returncode == 0, r.stderr
    site = tmp_path / "site"
    _pip_install_target(root, site)
    assert (site / "modelport_gen" / "__init__.py").is_file()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    env.pop("MODELPORT_LOAD_PLUGINS", None)

    listed = subprocess.run([sys.executable, "-m", "modelport", "formats", "--json"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert '"name": "gen"' in listed.stdout, listed.stderr

    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=root, env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    summary = r.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 10, summary
    assert "skipped" not in summary and "failed" not in summary, summary


def test_generated_code_is_ruff_clean(tmp_path):
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed in this environment")
    r = run_cli("plugins", "new", "tidy", "--output-dir", str(tmp_path / "p"))
    assert r.returncode == 0, r.stderr
    from conftest import ROOT

    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"), str(tmp_path / "p")],
                          capture_output=True, text=True, timeout=120)
    assert lint.returncode == 0, lint.stdout + lint.stderr

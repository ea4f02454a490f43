"""modelport.testing's small helpers for a plugin's own tests: run_cli, load_module, read_record, read_metadata."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_plugin_dist
from modelport.testing import load_module, read_metadata, read_record, run_cli

PLUGIN = '''
from modelport import Availability, FormatSpec, hookimpl


@hookimpl
def register_formats(register):
    register(FormatSpec(name="helperfake", display_name="Helper fake", files=("model.fake",),
                        availability=lambda: Availability.ok()))
'''


def _formats(proc: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    assert proc.returncode == 0, proc.stderr
    return {f["name"]: f for f in json.loads(proc.stdout)["formats"]}


def test_run_cli_runs_the_real_cli_with_this_interpreter() -> None:
    proc = run_cli("formats", "--json")
    assert proc.args[:3] == [sys.executable, "-m", "modelport"]
    assert "pt2" in _formats(proc)
    bad = run_cli("no-such-command")
    assert bad.returncode == 3 and "No such command" in bad.stderr  # output captured as text, exit code kept


def test_run_cli_env_is_the_whole_environment_and_cwd_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_plugin_dist(tmp_path / "site", "modelport-export-helperfake", "helperfake_plugin", PLUGIN, "helperfake")
    monkeypatch.delenv("MODELPORT_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("MODELPORT_DISABLE_PLUGINS", raising=False)
    assert "helperfake" not in _formats(run_cli("formats", "--json"))
    # env: the plugin on PYTHONPATH is found
    env = {**os.environ, "PYTHONPATH": str(site)}
    assert _formats(run_cli("formats", "--json", env=env))["helperfake"]["status"] == "available"
    # without env the child inherits this process's environment...
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("MODELPORT_DISABLE_PLUGINS", "helperfake")
    assert "helperfake" not in _formats(run_cli("formats", "--json"))
    # ...with env it gets exactly that one (MODELPORT_DISABLE_PLUGINS, set only here, does not reach it)
    assert "helperfake" in _formats(run_cli("formats", "--json", env=env))
    # cwd: a relative path resolves against it (here: a folder that exists there, but is no export)
    (tmp_path / "not-an-export").mkdir()
    elsewhere = run_cli("validate", "not-an-export")
    assert elsewhere.returncode == 3 and "no such export directory" in elsewhere.stderr
    there = run_cli("validate", "not-an-export", cwd=tmp_path)
    assert there.returncode == 3 and "no export.json" in there.stderr


def test_run_cli_timeout_is_enforced() -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        run_cli("formats", timeout=0.001)


def test_load_module_imports_a_file_by_path_without_registering_it(tmp_path: Path) -> None:
    path = tmp_path / "my_models.py"
    path.write_text("VALUE = 41 + 1\n\ndef build():\n    return __name__\n")
    module = load_module(path, "helper_loaded_models")
    assert module.VALUE == 42 and module.build() == "helper_loaded_models"
    assert module.__file__ == str(path)
    assert "helper_loaded_models" not in sys.modules
    assert load_module(str(path)).__name__ == "my_models"  # the default name is the file's stem
    assert load_module(path) is not module  # a fresh module every call
    (tmp_path / "data.txt").write_text("not python")
    with pytest.raises(ImportError, match="cannot be imported"):
        load_module(tmp_path / "data.txt")
    with pytest.raises(FileNotFoundError):
        load_module(tmp_path / "absent.py")


def test_read_record_and_read_metadata_read_their_own_file(tmp_path: Path) -> None:
    (tmp_path / "export.json").write_text(json.dumps({"format": "pt2", "note": "résumé"}), encoding="utf-8")
    (tmp_path / "metadata.json").write_text(json.dumps({"export_format": "pt2"}), encoding="utf-8")
    assert read_record(tmp_path) == {"format": "pt2", "note": "résumé"}
    assert read_record(str(tmp_path)) == read_record(tmp_path)
    assert read_metadata(tmp_path) == {"export_format": "pt2"}
    (tmp_path / "metadata.json").unlink()
    with pytest.raises(FileNotFoundError):
        read_metadata(tmp_path)

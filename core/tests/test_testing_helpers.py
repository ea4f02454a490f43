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


def test_run_cli_runs_the_cli_in_process_by_default_and_in_a_subprocess_when_asked() -> None:
    proc = run_cli("formats", "--json")
    assert proc.args[0] == "modelport" and "pt2" in _formats(proc)
    bad = run_cli("no-such-command")
    assert bad.returncode == 3 and "No such command" in bad.stderr  # output captured as text, exit code kept
    real = run_cli("no-such-command", in_process=False)
    assert real.args[:3] == [sys.executable, "-m", "modelport"]
    same = real.stderr.replace("python -m modelport", "modelport")  # click names the program as it was started
    assert (real.returncode, real.stdout, same) == (bad.returncode, bad.stdout, bad.stderr)


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "subprocess"])
def test_run_cli_env_is_the_whole_environment_and_cwd_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            in_process: bool) -> None:
    site = make_plugin_dist(tmp_path / "site", "modelport-export-helperfake", "helperfake_plugin", PLUGIN, "helperfake")
    monkeypatch.delenv("MODELPORT_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("MODELPORT_DISABLE_PLUGINS", raising=False)
    assert "helperfake" not in _formats(run_cli("formats", "--json", in_process=in_process))
    # env: the plugin on PYTHONPATH is found
    env = {**os.environ, "PYTHONPATH": str(site)}
    assert _formats(run_cli("formats", "--json", env=env, in_process=in_process))["helperfake"]["status"] == "available"
    # without env the child inherits this process's environment...
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("MODELPORT_DISABLE_PLUGINS", "helperfake")
    assert "helperfake" not in _formats(run_cli("formats", "--json", in_process=in_process))
    # ...with env it gets exactly that one (MODELPORT_DISABLE_PLUGINS, set only here, does not reach it)
    assert "helperfake" in _formats(run_cli("formats", "--json", env=env, in_process=in_process))
    # cwd: a relative path resolves against it (here: a folder that exists there, but is no export)
    (tmp_path / "not-an-export").mkdir()
    elsewhere = run_cli("validate", "not-an-export", in_process=in_process)
    assert elsewhere.returncode == 3 and "no such export directory" in elsewhere.stderr
    there = run_cli("validate", "not-an-export", cwd=tmp_path, in_process=in_process)
    assert there.returncode == 3 and "no export.json" in there.stderr


def test_an_in_process_run_leaves_this_process_as_it_was(tmp_path: Path) -> None:
    import signal

    from modelport import plugins

    site = make_plugin_dist(tmp_path / "site", "modelport-export-helperfake", "helperfake_plugin", PLUGIN, "helperfake")
    host = plugins.get_plugin_manager()
    before = (dict(os.environ), list(sys.path), os.getcwd(), signal.getsignal(signal.SIGINT))
    r = run_cli("formats", "--json", env={**os.environ, "PYTHONPATH": str(site), "EXTRA": "1"}, cwd=tmp_path)
    assert "helperfake" in _formats(r)
    assert (dict(os.environ), list(sys.path), os.getcwd(), signal.getsignal(signal.SIGINT)) == before
    assert plugins.get_plugin_manager() is host and "helperfake" not in host.formats
    assert "helperfake_plugin" not in sys.modules  # imported from a temp folder: forgotten, as a process would


def test_a_second_plugin_of_the_same_module_name_is_not_a_stale_import(tmp_path: Path) -> None:
    for i, name in enumerate(("firstfake", "secondfake")):
        src = PLUGIN.replace("helperfake", name)
        site = make_plugin_dist(tmp_path / f"site{i}", f"modelport-export-{name}", "same_module_name", src, name)
        formats = _formats(run_cli("formats", "--json", env={**os.environ, "PYTHONPATH": str(site)}))
        assert name in formats and ({"firstfake", "secondfake"} - {name}).isdisjoint(formats)


def test_in_process_debug_comes_from_the_arguments_not_sys_argv(tmp_path: Path) -> None:
    quiet = run_cli("export", "no_such_pkg.models:net", "-f", "pt2", "--vision", "3x8x8", "--output-dir", str(tmp_path / "o"))
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr
    loud = run_cli("--debug", "export", "no_such_pkg.models:net", "-f", "pt2", "--vision", "3x8x8", "--output-dir",
                   str(tmp_path / "o"))
    assert loud.returncode == 1 and "Traceback" in loud.stderr and loud.stderr.strip().splitlines()[-1] == \
        quiet.stderr.strip()


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "subprocess"])
def test_run_cli_timeout_is_enforced(in_process: bool) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        run_cli("formats", timeout=0.001, in_process=in_process)
    assert run_cli("formats", "--json", in_process=True).returncode == 0  # the alarm is gone afterwards


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


NOISY = '''
import sys
import modelport

@modelport.hookimpl
def register_formats(register):
    register(modelport.FormatSpec(name="noisy", display_name="Noisy", files=("m.bin",)))

@modelport.hookimpl
def export(request):
    if request.format != "noisy":
        return None
    print("CONVERTER-STDOUT-NOISE")
    print("CONVERTER-STDERR-NOISE", file=sys.stderr)
    (request.workdir / "m.bin").write_bytes(b"x")
    return modelport.Artifact(format="noisy", path=request.workdir / "m.bin", files=["m.bin"])
'''


def test_what_a_converter_prints_is_captured_in_process_as_in_a_terminal(tmp_path: Path) -> None:
    from conftest import CNN

    site = make_plugin_dist(tmp_path / "site", "modelport-noisy", "mp_noisy", NOISY, "noisy")
    out = tmp_path / "o"
    r = run_cli("export", CNN, "--vision", "3x16x16", "-f", "noisy", "--no-validate", "--output-dir", str(out), "--json",
                env={**os.environ, "PYTHONPATH": str(site)})
    assert r.returncode == 0, r.stderr
    assert "NOISE" not in r.stdout and "NOISE" not in r.stderr
    log = read_record(out)["log"]
    assert "CONVERTER-STDOUT-NOISE" in log and "CONVERTER-STDERR-NOISE" in log

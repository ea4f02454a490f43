"""Crashes, interruptions, full disks, read-only folders, parallel writers, plugin faults and secrets —
all through the real CLI in subprocesses."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CNN, make_plugin_dist, run_cli

EXPORT = [sys.executable, "-m", "modelport", "export", CNN, "--vision", "3x32x32", "-f", "pt2", "-q"]


def _wait_for_staging(parent: Path, proc: subprocess.Popen, timeout: float = 60) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = [p for p in parent.glob(".modelport-tmp-*") if p.is_dir()]
        if found:
            return found[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError("the export never started staging")


def test_sigint_removes_the_temporary_folder_and_exits_130(tmp_path):
    target = tmp_path / "out"
    proc = subprocess.Popen([*EXPORT, "--output-dir", str(target)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_staging(tmp_path, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not target.exists()
    assert list(tmp_path.glob(".modelport-tmp-*")) == []


def test_sigkill_leaves_nothing_at_the_final_path_and_the_next_run_succeeds(tmp_path):
    root = tmp_path / "exports"
    ok = subprocess.run([*EXPORT, "--exports-root", str(root)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    before = json.loads((root / "index.json").read_text())
    proc = subprocess.Popen([*EXPORT, "--exports-root", str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_staging(root, proc)
    proc.kill()
    proc.wait(timeout=30)
    after = json.loads((root / "index.json").read_text())  # still parses
    assert after["exports"] == before["exports"]
    finished = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(finished) == 1
    for d in finished:
        assert (d / "metadata.json").is_file() and (d / "export.json").is_file()
    again = subprocess.run([*EXPORT, "--exports-root", str(root)], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert len(json.loads((root / "index.json").read_text())["exports"]) == 2
    assert list(root.glob(".modelport-tmp-*")) == []  # the killed run's litter was cleaned up


def test_eight_parallel_exports_into_one_root_all_land(tmp_path):
    root = tmp_path / "exports"
    procs = [subprocess.Popen([*EXPORT, "--exports-root", str(root), "--model-name", f"m{i}", "--threads", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    index = json.loads((root / "index.json").read_text())
    assert sorted(e["model_name"] for e in index["exports"]) == [f"m{i}" for i in range(8)]
    assert len({e["id"] for e in index["exports"]}) == 8
    for e in index["exports"]:
        assert (root / e["path"] / "model.pt2").is_file()


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


def test_full_disk_gives_one_line_and_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    r = subprocess.run([*EXPORT, "--output-dir", str(target)], capture_output=True, text=True, timeout=120,
                       preexec_fn=_limit_file_size)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "File too large" in lines[0] and "cannot write" in lines[0], r.stderr
    assert not target.exists()
    assert list(tmp_path.glob(".modelport-tmp-*")) == []


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 256 KiB tmpfs (needs root and mount; skipped cleanly elsewhere)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()[:200]}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_really_full_disk(small_tmpfs):
    (small_tmpfs / "filler").write_bytes(b"\0" * 200 * 1024)
    target = small_tmpfs / "out"
    r = subprocess.run([*EXPORT, "--output-dir", str(target)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], r.stderr
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["filler"]


def test_read_only_output_directory(small_tmpfs):
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    target = small_tmpfs / "out"
    r = subprocess.run([*EXPORT, "--output-dir", str(target)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Read-only file system" in lines[0] and "cannot write" in lines[0], r.stderr
    assert list(small_tmpfs.iterdir()) == []


FAULTY = '''
import modelport

@modelport.hookimpl
def register_formats(register):
    register(modelport.FormatSpec(name="faulty", display_name="Faulty", files=("m.bin",),
             options=(modelport.OptionSpec("mode", "choice", "raise", "where to fail", choices=("raise", "wrongtype", "validate", "describe", "ok")),)))

@modelport.hookimpl
def export(request):
    if request.format != "faulty":
        return None
    mode = request.options["mode"]
    if mode == "raise":
        raise ZeroDivisionError("plugin bug in export")
    if mode == "wrongtype":
        return {"path": "m.bin"}
    (request.workdir / "m.bin").write_bytes(b"x")
    return modelport.Artifact(format="faulty", path=request.workdir / "m.bin", files=["m.bin"])

@modelport.hookimpl
def validate(artifact, inputs):
    if artifact.format != "faulty":
        return None
    if artifact.options.get("mode") == "validate":
        raise RuntimeError("plugin bug in validate")
    return modelport.ValidationRun(outputs=None, checks={"file": "present"}, skipped="cannot run here")

@modelport.hookimpl
def describe_metadata(artifact, request):
    if artifact.format == "faulty" and artifact.options.get("mode") == "describe":
        raise KeyError("plugin bug in describe")
    return None
'''


@pytest.mark.parametrize(("mode", "code", "needle"), [
    ("raise", 1, "export failed in modelport-faulty 3.1: ZeroDivisionError: plugin bug in export"),
    ("wrongtype", 1, "plugin modelport-faulty 3.1 broke the contract: export returned dict"),
    ("validate", 1, "validate failed in modelport-faulty 3.1: RuntimeError"),
    ("describe", 1, "describe_metadata failed"),
])
def test_plugin_faults_name_the_plugin_and_other_formats_still_export(tmp_path, mode, code, needle):
    site = make_plugin_dist(tmp_path / "site", "modelport-faulty", "mp_faulty", FAULTY, "faulty", "3.1")
    out = tmp_path / "out"
    r = run_cli("export", CNN, "--vision", "3x32x32", "-f", "faulty,pt2", "-o", f"faulty.mode={mode}",
                "--output-dir", str(out), "--json", add_env={"PYTHONPATH": str(site)})
    assert r.returncode == code, r.stderr
    assert needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    results = json.loads(r.stdout)["results"]
    assert results["pt2"]["status"] == "passed"
    assert not (out / "faulty").exists()
    assert (out / "pt2" / "model.pt2").is_file()


def test_structure_only_validation_is_reported_as_such(tmp_path):
    site = make_plugin_dist(tmp_path / "site", "modelport-faulty", "mp_faulty", FAULTY, "faulty", "3.1")
    r = run_cli("export", CNN, "--vision", "3x32x32", "-f", "faulty", "-o", "mode=ok", "--output-dir", str(tmp_path / "o"),
                "--json", add_env={"PYTHONPATH": str(site)})
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)["results"]["faulty"]
    assert res["status"] == "structure-only"
    md = json.loads((tmp_path / "o" / "metadata.json").read_text())
    assert md["validation"]["status"] == "structure-only" and md["validation"]["reason"] == "cannot run here"


def test_tokens_never_appear_in_output_or_files(tmp_path):
    sentinel = "hf_SENTINEL_0123456789abcdef"
    env = {"HF_TOKEN": sentinel, "GITHUB_TOKEN": sentinel.replace("hf", "ghp")}
    out = tmp_path / "out"
    runs = [
        run_cli("--debug", "export", CNN, "--vision", "3x32x32", "-f", "pt2", "--output-dir", str(out), add_env=env),
        run_cli("--debug", "export", "nope.mod:f", "--vision", "3x32x32", "-f", "pt2", add_env=env),
        run_cli("--debug", "publish", str(out), f"file://{tmp_path / 'reg'}", add_env=env),
        run_cli("--debug", "publish", str(out), "hf://me/repo", add_env=env),
        run_cli("--debug", "validate", str(out), add_env=env),
        run_cli("formats", "--json", add_env=env),
    ]
    for r in runs:
        for token in env.values():
            assert token not in r.stdout and token not in r.stderr
    for p in tmp_path.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            for token in env.values():
                assert token.encode() not in data, p

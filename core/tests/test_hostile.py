"""Hostile inputs, built here as an attacker would build them: files from elsewhere never run code, and no
command deletes what modelport did not write (docs/security.md).

Each code-execution case proves its payload is real — with the opt-in (``--trust-code``) the marker file
appears — so the refusal without it is not an accident of a broken attack.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CNN, run_cli
from modelport import api
from modelport.engine.inputs import InputSpec, TensorSpec
from modelport.folder.store import sha256_file

V = ["--vision", "3x8x8"]


class _Touch:
    """Unpickling this creates ``path`` (the classic payload: any callable with any arguments)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 5))


def _spec() -> InputSpec:
    return InputSpec([TensorSpec("input", (1, 3, 8, 8), "float32")])


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """This machine's modelport data folder (the sealing key), shared by the module's exports and CLI runs."""
    h = tmp_path_factory.mktemp("mphome")
    old = os.environ.get("MODELPORT_HOME")
    os.environ["MODELPORT_HOME"] = str(h)
    yield h
    if old is None:
        os.environ.pop("MODELPORT_HOME", None)
    else:
        os.environ["MODELPORT_HOME"] = old


_TINY_PY = """import torch


def tiny():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 5))
"""


@pytest.fixture(scope="module")
def pt2_export(home, tmp_path_factory):
    base = tmp_path_factory.mktemp("good")
    (base / "tinymodels.py").write_text(_TINY_PY)
    out = base / "pt2"
    r = api.export(_tiny(), "pt2", _spec(), output_dir=out, model_name="tiny",
                   source={"reference": f"{base / 'tinymodels.py'}:tiny"})
    assert r.exit_code == 0, r["pt2"].error
    return out


def _rehash(export_dir: Path, rel: str) -> None:
    """What a publisher-attacker does: update both hash tables so sha256 checks pass on the tampered file."""
    p = export_dir / rel
    entry = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
    for name in ("export.json", "metadata.json"):
        data = json.loads((export_dir / name).read_text())
        if rel in (data.get("files") or {}):
            data["files"][rel] = entry
        (export_dir / name).write_text(json.dumps(data))


def _pickled_pt2(src: Path, dst: Path, marker: Path) -> None:
    """Rewrite a .pt2 so its first weight is marked ``use_pickle`` and holds the payload."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("model_weights_config.json"):
                cfg = json.loads(data)
                first = next(iter(cfg["config"].values()))
                first["use_pickle"] = True
                victim = first["path_name"]
                data = json.dumps(cfg).encode()
            zout.writestr(info, data)
        buf = io.BytesIO()
        torch.save(_Touch(str(marker)), buf)
        root = zin.namelist()[0].split("/")[0]
        zout.writestr(f"{root}/data/weights/{victim}_evil", b"")  # keep a name the loader never reads
    # replace the victim weight's bytes with the pickle
    tmp = dst.with_suffix(".tmp")
    with zipfile.ZipFile(dst) as zin, zipfile.ZipFile(tmp, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith(f"data/weights/{victim}"):
                data = buf.getvalue()
            if not info.filename.endswith("_evil"):
                zout.writestr(info, data)
    tmp.replace(dst)


def _evil_torchscript(path: Path, marker: Path) -> None:
    """A TorchScript program whose ``__setstate__`` writes ``marker`` when the archive is loaded."""

    class Evil(torch.nn.Module):
        def __init__(self, where: str) -> None:
            super().__init__()
            self.where = where

        @torch.jit.export
        def __getstate__(self) -> tuple[str, bool]:
            return (self.where, self.training)

        @torch.jit.export
        def __setstate__(self, state: tuple[str, bool]) -> None:
            self.where = state[0]
            self.training = state[1]
            torch.save(torch.zeros(1), self.where)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2

    torch.jit.save(torch.jit.script(Evil(str(marker))), str(path))


# ----------------------------------------------------------------------------- code execution


def test_pt2_with_pickled_weights_never_runs(pt2_export, tmp_path):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt2"
    _pickled_pt2(pt2_export / "model.pt2", evil, marker)
    for args in (["inspect", str(evil)], ["export", str(evil), "-f", "pt2", "--output-dir", str(tmp_path / "o")],
                 ["export", str(evil), "-f", "pt2", *V, "--output-dir", str(tmp_path / "o")]):
        r = run_cli(*args)
        assert r.returncode == 3, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and "--trust-code" in r.stderr, r.stderr
        assert "pickled" in r.stderr
        assert not marker.exists(), args
    # the same archive inside a pulled export folder whose hashes were updated to match
    pulled = tmp_path / "pulled"
    shutil.copytree(pt2_export, pulled)
    shutil.copyfile(evil, pulled / "model.pt2")
    _rehash(pulled, "model.pt2")
    model = f"{pt2_export.parent / 'tinymodels.py'}:tiny"  # the user's own model, named explicitly
    for cmd in (["validate", str(pulled)], ["bench", str(pulled), "--max-seconds", "0.1"], ["inspect", str(pulled)],
                ["debug", str(pulled), "--model", model]):
        r = run_cli(*cmd)
        assert r.returncode == 3 and "--trust-code" in r.stderr and r.stderr.count("\n") == 1, (cmd, r.stderr)
        assert not marker.exists(), cmd
    # the payload is real: with the opt-in torch unpickles it
    run_cli("inspect", str(evil), "--trust-code")
    assert marker.exists()


def test_torchscript_is_code_unless_modelport_wrote_it_here(home, tmp_path):
    marker = tmp_path / "PWNED"
    ts = tmp_path / "model.torchscript"
    _evil_torchscript(ts, marker)
    assert not marker.exists()
    for args, code, needle in (
            (["export", str(ts), "-f", "pt2", *V, "--output-dir", str(tmp_path / "o")], 3, "--trust-code"),
            (["inspect", str(ts)], 3, "--trust-code"),
            (["export", CNN, "--checkpoint", str(ts), "-f", "pt2", *V, "--output-dir", str(tmp_path / "o")], 1,
             "TorchScript program")):
        r = run_cli(*args)
        assert r.returncode == code and r.stderr.count("\n") == 1 and r.stderr.startswith("error: "), (args, r.stderr)
        assert needle in r.stderr and "TorchScript" in r.stderr, r.stderr
        assert not marker.exists(), args
    assert not (tmp_path / "o").exists()
    # the payload is real: the opt-in loads (and so runs) the program
    run_cli("export", str(ts), "-f", "pt2", *V, "--trust-code", "--output-dir", str(tmp_path / "o2"))
    assert marker.exists()


def test_tampered_record_never_names_code_for_bench(pt2_export, tmp_path):
    marker = tmp_path / "PWNED"
    evil_py = tmp_path / "evil.py"
    evil_py.write_text(f"import torch\nopen({str(marker)!r}, 'w').close()\n\n\ndef boom():\n    return torch.nn.Identity()\n")
    pulled = tmp_path / "pulled"
    shutil.copytree(pt2_export, pulled)
    rec = json.loads((pulled / "export.json").read_text())
    rec["source"] = {"reference": f"{evil_py}:boom"}
    (pulled / "export.json").write_text(json.dumps(rec))
    r = run_cli("bench", str(pulled), "--max-seconds", "0.2", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert not marker.exists()
    assert any(row.get("format") == "pytorch" and "--trust-code" in row.get("error", "") for row in rows)
    assert any(row.get("format") == "pt2" and row.get("p50_ms") for row in rows)  # the artifact alone is benched
    run_cli("bench", str(pulled), "--max-seconds", "0.2", "--trust-code")
    assert marker.exists()  # the payload is real


def test_untampered_local_export_reloads_its_model_for_bench(pt2_export):
    from modelport.commands.bench import bench_dirs

    rows = bench_dirs([pt2_export], max_seconds=0.1, write=False)
    assert any(r["format"] == "pytorch" and "p50_ms" in r for r in rows), rows


def test_record_from_another_machine_is_not_trusted(pt2_export, tmp_path):
    from modelport.folder.trust import seal_verifies

    rec = json.loads((pt2_export / "export.json").read_text())
    assert seal_verifies(rec, pt2_export)
    other = tmp_path / "elsewhere"
    os.environ["MODELPORT_HOME"], saved = str(other), os.environ["MODELPORT_HOME"]
    try:
        assert not seal_verifies(rec, pt2_export)
    finally:
        os.environ["MODELPORT_HOME"] = saved
    rec["source"]["reference"] = "os:system"
    assert not seal_verifies(rec, pt2_export)


# ----------------------------------------------------------------------------- data loss


def test_force_never_replaces_a_folder_of_user_files(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "models.py").write_text((Path(CNN.split(":")[0])).read_text())
    (project / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in project.iterdir()}
    r = run_cli("export", f"{project / 'models.py'}:small_cnn", "-f", "pt2", "--vision", "3x32x32",
                "--output-dir", str(project), "--force")
    assert r.returncode == 3 and r.stderr.count("\n") == 1 and "not an export folder" in r.stderr, r.stderr
    assert {p.name: p.read_bytes() for p in project.iterdir()} == before


def test_force_replaces_an_export_folder(pt2_export, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(pt2_export, out)
    r = api.export(_tiny(), "pt2", _spec(), output_dir=out, model_name="tiny", force=True)
    assert r.exit_code == 0 and (out / "export.json").is_file()
    (out / "mine.txt").write_text("a user file inside")
    with pytest.raises(Exception, match="not an export folder"):
        api.export(_tiny(), "pt2", _spec(), output_dir=out, model_name="tiny", force=True)
    assert (out / "mine.txt").read_text() == "a user file inside"


def test_pull_force_never_replaces_the_registry(pt2_export, tmp_path):
    reg = tmp_path / "reg"
    api.publish(pt2_export, f"file://{reg}")
    before = sorted(p.relative_to(reg).as_posix() for p in reg.rglob("*"))
    r = run_cli("pull", f"file://{reg}/tiny/v1", str(reg), "--force")
    assert r.returncode == 3 and "not an export folder" in r.stderr, r.stderr
    assert sorted(p.relative_to(reg).as_posix() for p in reg.rglob("*")) == before


def test_killed_writer_between_renames_gets_its_old_export_back(pt2_export, tmp_path):
    out = tmp_path / "exp"
    shutil.copytree(pt2_export, out)
    aside = tmp_path / ".modelport-tmp-999999-0badc0de-old-exp"
    out.rename(aside)  # what a SIGKILL between the two renames leaves (no live lock)
    r = api.export(_tiny(), "pt2", _spec(), output_dir=tmp_path / "other", model_name="tiny")
    assert r.exit_code == 0
    assert (out / "export.json").is_file() and not aside.exists()


def test_live_writer_in_another_pid_namespace_keeps_its_staging(tmp_path):
    from modelport.folder.store import _hold_lock, remove_stale_staging

    token = "999999-0badc0de"  # a PID this namespace does not have
    lock = tmp_path / f".modelport-tmp-{token}.lock"
    staging = tmp_path / f".modelport-tmp-{token}-new-exp"
    fd = _hold_lock(lock)
    staging.mkdir()
    try:
        remove_stale_staging(tmp_path)
        assert staging.is_dir(), "a live writer's folder was deleted"
    finally:
        os.close(fd)
    remove_stale_staging(tmp_path)
    assert not staging.exists() and not lock.exists()


def test_file_publish_copies_exactly_the_listed_files_and_refuses_symlinks(pt2_export, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("ssh key")
    exp = tmp_path / "exp"
    shutil.copytree(pt2_export, exp)
    (exp / "stray.txt").write_text("not part of the export")
    api.publish(exp, f"file://{tmp_path / 'reg'}")
    published = {p.name for p in (tmp_path / "reg" / "tiny" / "v1").iterdir()}
    assert "stray.txt" not in published and "model.pt2" in published
    rec = json.loads((tmp_path / "reg" / "tiny" / "v1" / "export.json").read_text())
    assert not Path(rec["source"]["reference"].split(":")[0]).is_absolute()  # no local paths published
    (exp / "reference.npz").unlink()
    (exp / "reference.npz").symlink_to(secret)
    r = run_cli("publish", str(exp), f"file://{tmp_path / 'reg2'}")
    assert r.returncode != 0 and "symbolic link" in r.stderr, r.stderr
    assert not any(p.read_bytes() == b"ssh key" for p in (tmp_path / "reg2").rglob("*") if p.is_file())


def test_registry_index_is_rebuilt_from_its_folders(pt2_export, tmp_path):
    reg = tmp_path / "reg"
    api.publish(pt2_export, f"file://{reg}")
    shutil.copytree(reg / "tiny" / "v1", reg / "tiny" / "v2")  # a version a killed publish left unindexed
    (reg / "index.json").write_text("{corrupt")
    api.publish(pt2_export, f"file://{reg}")
    index = json.loads((reg / "index.json").read_text())
    assert sorted(e["version"] for e in index["exports"]) == ["v1", "v2", "v3"]


# ----------------------------------------------------------------------------- secrets and robustness


@pytest.mark.parametrize("form", ["hf_abcdefghij1234\r", "hf_abcdefghij1234\n", "hf_abcdefghij1234\r\n"])
def test_token_with_line_ending_is_redacted_in_every_form(form, monkeypatch):
    from modelport.cli.app import redact
    from modelport.terminal.redaction import register_token_env

    register_token_env(["HF_TOKEN"])  # what hf:// (PublisherSpec.token_env) and hf: sources declare when they load
    monkeypatch.setenv("HF_TOKEN", form)
    for text in (f"401 for header 'Bearer {form}'", f"bad header {form!r}", f"token={form.strip()}&x=1",
                 "https://me:hf_abcdefghij1234@host/x", "url?token=hf_abcdefghij1234"):
        assert "abcdefghij1234" not in redact(text), text


def test_a_publishers_declared_token_variable_is_redacted(monkeypatch):
    from modelport import PublisherSpec, hookimpl
    from modelport.plugins import PluginHost
    from modelport.terminal.redaction import redact

    class Vault:
        @hookimpl
        def register_publishers(self, register):
            register(PublisherSpec(scheme="vault", display_name="Vault", token_env=("VAULT_TEST_TOKEN",)))

    monkeypatch.setenv("VAULT_TEST_TOKEN", "vt_0123456789secret")
    assert "vt_0123456789secret" in redact("bad header 'vt_0123456789secret'")  # nobody declared it yet
    host = PluginHost(load_entry_points=False)
    host.pm.register(Vault(), name="vault")
    assert "vault" in host.publishers
    assert redact("bad header 'vt_0123456789secret'") == "bad header '***'"


def test_url_credentials_never_echoed(tmp_path):
    r = run_cli("publish", str(tmp_path), "hf://me:supersecret99@org/repo")
    assert "supersecret99" not in r.stderr + r.stdout


def test_reference_npz_declaring_gigabytes_is_refused_before_reading(pt2_export, tmp_path):
    exp = tmp_path / "exp"
    shutil.copytree(pt2_export, exp)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (3 << 30,)})
    with zipfile.ZipFile(exp / "reference.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("0/in/input.npy", header.getvalue() + b"\0" * 1024)
        zf.writestr("0/out/0.npy", header.getvalue() + b"\0" * 1024)
    _rehash(exp, "reference.npz")
    r = run_cli("validate", str(exp))
    assert r.returncode == 3 and r.stderr.count("\n") == 1 and "24.0 GiB of arrays" in r.stderr, r.stderr


def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    slow = tmp_path / "slow.py"
    slow.write_text("import time, torch\nclass M(torch.nn.Module):\n    def forward(self, x):\n"
                    "        time.sleep(60)\n        return x\ndef m():\n    return M()\n")
    proc = subprocess.Popen([sys.executable, "-m", "modelport", "export", f"{slow}:m", "-f", "pt2", "--input",
                             "x:1x2", "--output-dir", str(tmp_path / "o")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(6)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, (proc.returncode, err)
    assert err.strip().splitlines() == ["error: terminated (SIGTERM); temporary files removed"]
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".modelport-tmp-*"))


def test_force_replaces_a_folder_of_format_exports_but_not_a_registry_model_folder(pt2_export, tmp_path):
    """`export -f onnx -f pt2 --output-dir DIR` writes DIR/onnx/, DIR/pt2/: "DIR already exists; pass --force" must
    then be followed by a --force that works, not by "not an export folder". A registry's model folder (v1/, v2/)
    and a folder with a user file beside the exports stay refused."""
    from modelport.folder.store import written_by_modelport

    out = tmp_path / "exports"
    shutil.copytree(pt2_export, out / "pt2")
    r = run_cli("export", "modelport.testing.models:tiny_cnn", "-f", "pt2", "--vision", "3x16x16", "--output-dir",
                str(out), "-q")
    assert r.returncode == 3 and "pass --force" in r.stderr
    r = run_cli("export", "modelport.testing.models:tiny_cnn", "-f", "pt2", "--vision", "3x16x16", "--output-dir",
                str(out), "--force", "-q")
    assert r.returncode == 0, r.stderr
    assert (out / "export.json").is_file() and not (out / "pt2").exists()

    versions = tmp_path / "model"
    shutil.copytree(pt2_export, versions / "v1")  # named v1, not after its format
    assert not written_by_modelport(versions)
    mixed = tmp_path / "mixed"
    shutil.copytree(pt2_export, mixed / "pt2")
    (mixed / "notes.txt").write_text("mine")
    assert not written_by_modelport(mixed)
    (mixed / "notes.txt").unlink()
    (mixed / "pt2" / "notes.txt").write_text("mine")
    assert not written_by_modelport(mixed)

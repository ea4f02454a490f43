"""A hostile Hub on 127.0.0.1: what it serves is verified, never executed; an unreachable one costs one line.

See docs/security.md. The attacks are built here: a ``.pt2`` whose weight is a pickle that creates a marker
file, with every hash table updated so that the download verifies.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import time
import zipfile
from pathlib import Path

from conftest import SENTINEL
from fake_hub import FakeHub
from modelport.testing import run_cli
from modelport.testing.http import ExportPair, unused_port

REPO = "alice/cnn"


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _entry(p: Path) -> dict[str, object]:
    return {"bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}


def _tamper(export_dir: Path, out: Path, marker: Path) -> Path:
    """A copy of ``export_dir`` whose model.pt2 unpickles the payload, with both hash tables updated to match."""
    import torch

    shutil.copytree(export_dir, out)
    src, dst = export_dir / "model.pt2", out / "model.pt2"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        cfg_name = next(n for n in zin.namelist() if n.endswith("model_weights_config.json"))
        cfg = json.loads(zin.read(cfg_name))
        first = next(iter(cfg["config"].values()))
        first["use_pickle"] = True
        buf = io.BytesIO()
        torch.save(_Touch(str(marker)), buf)
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == cfg_name:
                data = json.dumps(cfg).encode()
            elif info.filename.endswith(f"data/weights/{first['path_name']}"):
                data = buf.getvalue()
            zout.writestr(info, data)
    for name in ("metadata.json", "export.json"):
        doc = json.loads((out / name).read_text())
        if "model.pt2" in doc.get("files", {}):
            doc["files"]["model.pt2"] = _entry(dst)
        (out / name).write_text(json.dumps(doc))
    return out


def test_pull_from_a_hostile_hub_verifies_but_never_runs_the_artifact(
        exports: ExportPair, hub: FakeHub, env: dict[str, str], tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    evil = _tamper(exports.dynamic, tmp_path / "evil", marker)
    hub.seed("mallory/evil", {p.name: p.read_bytes() for p in evil.iterdir() if p.is_file()})
    dest = tmp_path / "pulled"
    r = run_cli("pull", "hf://mallory/evil", str(dest), "--endpoint", hub.url, env=env)
    assert r.returncode == 0, r.stderr  # the publisher's hashes match: the download is what was published
    for args in (["validate", str(dest)], ["bench", str(dest), "--max-seconds", "0.1"], ["inspect", str(dest)]):
        r = run_cli(*args, env=env)
        assert r.returncode == 3, (args, r.stderr)
        assert len(r.error_lines) == 1 and "--trust-code" in r.error_lines[0] and "pickled" in r.error_lines[0]
        assert not marker.exists(), args
    r = run_cli("validate", str(dest), "--trust-code", env=env)
    assert marker.exists(), "the payload is real: the opt-in unpickles it"


def test_published_record_holds_no_absolute_local_paths(exports: ExportPair, hub: FakeHub, env: dict[str, str]) -> None:
    local = json.loads((exports.dynamic / "export.json").read_text())
    assert Path(local["source"]["reference"].rsplit(":", 1)[0]).is_absolute()
    r = run_cli("publish", str(exports.dynamic), f"hf://{REPO}", "--endpoint", hub.url, env=env)
    assert r.returncode == 0, r.stderr
    published = json.loads(hub.file(REPO, "export.json"))
    ref = published["source"]["reference"]
    assert ref == Path(local["source"]["reference"].rsplit(":", 1)[0]).name + ":" + local["source"]["reference"].rsplit(":", 1)[1]
    assert "seal" not in published
    assert SENTINEL not in json.dumps(published)


def test_pull_from_an_unreachable_endpoint_is_one_quick_line(env: dict[str, str], tmp_path: Path) -> None:
    port = unused_port()
    t0 = time.monotonic()
    r = run_cli("pull", f"hf://{REPO}", str(tmp_path / "d"), "--endpoint", f"http://127.0.0.1:{port}", env=env)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and len(r.error_lines) == 1, r.stderr
    assert time.monotonic() - t0 < 60
    assert not (tmp_path / "d").exists()


def test_token_with_a_trailing_carriage_return_is_never_printed(
        exports: ExportPair, hub: FakeHub, env: dict[str, str]) -> None:
    hub.add_fault("POST", r"/commit/", status=401, body=f"bad token {SENTINEL}\r".encode())
    r = run_cli("publish", str(exports.dynamic), f"hf://{REPO}",
                "--endpoint", hub.url, env={**env, "HF_TOKEN": SENTINEL + "\r"})
    assert r.returncode == 1
    assert SENTINEL not in r.stdout + r.stderr

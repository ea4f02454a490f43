"""The built-in file:// registry: publish, index, never overwrite, pull with sha256 verification."""

from __future__ import annotations

import json

import pytest
from conftest import CNN, run_cli


@pytest.fixture(scope="module")
def cnn_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("exp") / "cnn"
    r = run_cli("export", CNN, "--vision", "3x32x32", "--dynamic-batch", "-f", "pt2", "--output-dir", str(out),
                "--model-name", "cnn", "-q")
    assert r.returncode == 0, r.stderr
    return out


def test_publish_then_pull_round_trip(cnn_export, tmp_path):
    reg = tmp_path / "registry"
    r = run_cli("publish", str(cnn_export), f"file://{reg}")
    assert r.returncode == 0, r.stderr
    assert (reg / "cnn" / "v1" / "model.pt2").is_file()
    index = json.loads((reg / "index.json").read_text())
    assert [e["id"] for e in index["exports"]] == ["cnn/v1"]
    r = run_cli("publish", str(cnn_export), f"file://{reg}")
    assert r.returncode == 0 and (reg / "cnn" / "v2").is_dir()
    r = run_cli("publish", str(cnn_export), f"file://{reg}", "--version", "v1")
    assert r.returncode == 3 and "--force" in r.stderr
    r = run_cli("publish", str(cnn_export), f"file://{reg}", "--version", "v1", "--force")
    assert r.returncode == 0, r.stderr

    dest = tmp_path / "pulled"
    r = run_cli("pull", f"file://{reg}/cnn/v1", str(dest))
    assert r.returncode == 0, r.stderr
    assert "sha256 verified" in r.stdout
    r = run_cli("validate", str(dest))
    assert r.returncode == 0, r.stderr


def test_pull_refuses_tampered_files_and_leaves_nothing(cnn_export, tmp_path):
    reg = tmp_path / "registry"
    assert run_cli("publish", str(cnn_export), f"file://{reg}").returncode == 0
    model = reg / "cnn" / "v1" / "model.pt2"
    data = bytearray(model.read_bytes())
    data[-100] ^= 0xFF
    model.write_bytes(bytes(data))
    dest = tmp_path / "pulled"
    r = run_cli("pull", f"file://{reg}/cnn/v1", str(dest))
    assert r.returncode == 1
    assert "sha256 does not match" in r.stderr and "model.pt2" in r.stderr
    assert not dest.exists()
    assert not list(tmp_path.glob(".modelport-tmp-*"))


def test_publish_refuses_an_export_changed_after_export(cnn_export, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(cnn_export, copy)
    (copy / "model.pt2").write_bytes(b"tampered")
    r = run_cli("publish", str(copy), f"file://{tmp_path / 'reg'}")
    assert r.returncode == 3 and "changed since export" in r.stderr  # as validate, bench, compare, inspect say
    assert not (tmp_path / "reg" / "cnn").exists()


def test_dry_run_touches_nothing(cnn_export, tmp_path):
    reg = tmp_path / "reg"
    stage = tmp_path / "stage"
    r = run_cli("publish", str(cnn_export), f"file://{reg}", "--dry-run", "--stage-dir", str(stage))
    assert r.returncode == 0, r.stderr
    assert "dry run" in r.stdout
    assert not reg.exists()
    assert (stage / "cnn" / "vN" / "model.pt2").is_file()


def test_unknown_publisher_option(cnn_export, tmp_path):
    r = run_cli("publish", str(cnn_export), f"file://{tmp_path}/r", "--private")
    assert r.returncode == 3 and "unknown option 'private'" in r.stderr


def test_metadata_with_path_traversal_is_refused(cnn_export, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(cnn_export, bad)
    md = json.loads((bad / "metadata.json").read_text())
    md["model_name"] = "../../escape"
    (bad / "metadata.json").write_text(json.dumps(md))
    r = run_cli("publish", str(bad), f"file://{tmp_path / 'reg'}")
    assert r.returncode == 3
    assert not (tmp_path / "escape").exists()
    md["model_name"] = "cnn"
    md["files"] = {"../outside.bin": {"bytes": 1, "sha256": "0" * 64}}
    (bad / "metadata.json").write_text(json.dumps(md))
    r = run_cli("publish", str(bad), f"file://{tmp_path / 'reg'}")
    assert r.returncode == 3 and "schema" in r.stderr


def test_pull_refuses_a_tampered_reference(cnn_export, tmp_path):
    import numpy as np

    reg = tmp_path / "registry"
    assert run_cli("publish", str(cnn_export), f"file://{reg}").returncode == 0
    ref_path = reg / "cnn" / "v1" / "reference.npz"
    ref = dict(np.load(ref_path))
    ref["0/out/0"] = ref["0/out/0"] + 1
    with open(ref_path, "wb") as f:
        np.savez(f, **ref)
    r = run_cli("pull", f"file://{reg}/cnn/v1", str(tmp_path / "pulled"))
    assert r.returncode == 1 and "reference.npz" in r.stderr
    assert not (tmp_path / "pulled").exists()
    r = run_cli("validate", str(reg / "cnn" / "v1"))
    assert r.returncode == 3 and "files changed since export: reference.npz" in r.stderr  # refused, never compared


def test_several_exports_of_one_model_each_get_a_folder_and_none_is_dropped(cnn_export, tmp_path):
    """`publish A B file://DIR` used to copy only A and say nothing: each export now gets its own folder in the
    version (by format, or by export folder name when formats repeat), listed, indexed and pullable one by one."""
    from modelport import zoo

    static = tmp_path / "cnn_static"
    r = run_cli("export", CNN, "--vision", "3x32x32", "-f", "pt2", "--output-dir", str(static), "--model-name", "cnn",
                "-q")
    assert r.returncode == 0, r.stderr
    reg = tmp_path / "registry"
    r = run_cli("publish", str(cnn_export), str(static), f"file://{reg}", "--version", "v1")
    assert r.returncode == 0, r.stderr
    for leaf in ("cnn", "cnn_static"):  # two pt2 exports: the export folders' names tell them apart
        assert (reg / "cnn" / "v1" / leaf / "model.pt2").is_file() and f"{leaf}/model.pt2" in r.stdout
    assert not (reg / "cnn" / "v1" / "model.pt2").exists()
    index = json.loads((reg / "index.json").read_text())
    assert sorted(e["id"] for e in index["exports"]) == ["cnn/v1/cnn", "cnn/v1/cnn_static"]

    (entry,) = zoo.list_models(f"file://{reg}")
    assert [e.folder for e in entry.exports] == ["cnn", "cnn_static"] and entry.formats == ["pt2", "pt2"]
    listed = run_cli("list", f"file://{reg}", "--json")
    assert [x["folder"] for x in json.loads(listed.stdout)[0]["exports"]] == ["cnn", "cnn_static"]

    whole = run_cli("pull", f"file://{reg}/cnn/v1", str(tmp_path / "whole"))
    assert whole.returncode == 1 and whole.stderr.count("\n") == 1
    assert "holds 2 exports (cnn, cnn_static); pull one of them" in whole.stderr
    assert not (tmp_path / "whole").exists()
    one = run_cli("pull", f"file://{reg}/cnn/v1/cnn_static", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    assert run_cli("validate", str(tmp_path / "one")).returncode == 0

    other = tmp_path / "other"
    r = run_cli("export", "modelport.testing.models:tiny_cnn", "--vision", "3x16x16", "-f", "pt2", "--output-dir",
                str(other), "-q")
    assert r.returncode == 0, r.stderr
    r = run_cli("publish", str(cnn_export), str(other), f"file://{reg}", "--version", "v2")
    assert r.returncode == 3 and "of one model" in r.stderr and not (reg / "cnn" / "v2").exists()


def test_info_shows_published_bench_numbers_once_per_format_and_batch(cnn_export, tmp_path):
    import shutil

    exports = []
    for name in ("a", "b"):  # two benchmarked exports: each bench.json carries the same PyTorch eager row
        copy = tmp_path / name
        shutil.copytree(cnn_export, copy)
        r = run_cli("bench", str(copy), "--batch", "1", "--max-seconds", "0.2")
        assert r.returncode == 0, r.stderr
        exports.append(str(copy))
    reg = tmp_path / "registry"
    assert run_cli("publish", *exports, f"file://{reg}").returncode == 0
    r = run_cli("info", f"file://{reg}/cnn", env={"COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    bench = r.stdout.split("Benchmark (as published)", 1)[1].splitlines()[3:]
    rows = [line.split() for line in bench if line.split() and line.split()[0] in ("pt2", "pytorch")]
    # each export's own row, named by its folder; eager once, not once per export
    assert sorted(" ".join(row[:2]) for row in rows) == ["pt2 (a)", "pt2 (b)", "pytorch 1"], r.stdout
    assert all(row[-1].endswith("x") for row in rows) and max(len(x) for x in r.stdout.splitlines()) <= 80

"""modelport bench / compare on the built-in pt2 format."""

from __future__ import annotations

import json

import pytest
from conftest import CNN, run_cli


@pytest.fixture(scope="module")
def cnn_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("b") / "cnn"
    r = run_cli("export", CNN, "--vision", "3x32x32", "--dynamic-batch", "-f", "pt2", "--output-dir", str(out), "-q",
                "--task", "classification")
    assert r.returncode == 0, r.stderr
    return out


def test_bench_table_json_and_plot(cnn_export, tmp_path):
    png = tmp_path / "lat.png"
    r = run_cli("bench", str(cnn_export), "--batch", "1,8", "--threads", "1", "--max-seconds", "1", "--plot", str(png), "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    fmts = {(row["format"], row["batch"]) for row in rows}
    assert fmts == {("pytorch", 1), ("pytorch", 8), ("pt2", 1), ("pt2", 8)}
    for row in rows:
        assert row["p50_ms"] > 0 and row["p90_ms"] >= row["p50_ms"] and row["runs"] >= 5
    assert sum(1 for row in rows if row.get("best")) == 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bench = json.loads((cnn_export / "bench.json").read_text())
    assert bench["machine"]["threads"] == 1 and bench["machine"]["cores"] >= 1 and bench["rows"]
    r = run_cli("bench", str(cnn_export), "--batch", "1", "--max-seconds", "0.5")
    assert r.returncode == 0 and "speed-up" in r.stdout and "pt2" in r.stdout


def test_compare_with_pytorch_and_itself(cnn_export):
    r = run_cli("compare", str(cnn_export), "pytorch", "--json")
    assert r.returncode == 0, r.stderr
    comp = json.loads(r.stdout)["comparison"]
    assert comp["passed"] and comp["outputs"][0]["top1_agreement"] == 1.0
    r = run_cli("compare", str(cnn_export), str(cnn_export))
    assert r.returncode == 0 and "op histogram" in r.stdout


def test_compare_exits_2_beyond_tolerance(cnn_export, tmp_path):
    import shutil

    import numpy as np

    other = tmp_path / "other"
    shutil.copytree(cnn_export, other)
    # a different reference set: outputs recorded in B are irrelevant; perturb A's recorded reference instead
    ref = dict(np.load(other / "reference.npz"))
    ref["0/out/0"] = ref["0/out/0"] + 1.0
    np.savez(other / "reference.npz", **ref)
    from modelport.folder.store import file_table

    record = json.loads((other / "export.json").read_text())  # recorded as such: not a folder changed behind its back
    record["files"]["reference.npz"] = file_table(other)["reference.npz"]
    (other / "export.json").write_text(json.dumps(record))
    r = run_cli("compare", str(other), "pytorch")
    assert r.returncode == 2
    assert "differ beyond tolerance" in r.stderr


def test_bench_rows_are_typed_and_print_as_before():
    from modelport.commands.bench import BenchRow

    timing = {"p50_ms": 2.0, "p90_ms": 2.5, "p99_ms": 3.0, "runs": 40, "windows": 4, "warmup_runs": 3, "stable": True,
              "unstable": None, "throughput": 500.0}
    row = BenchRow("exp/cnn", "pt2", batch=1, precision="fp32", size_bytes=10, max_abs_diff=1e-6, parity="passed",
                   runtime="torch", timing=timing, speedup=1.5, best=True, machine={"cores": 2})
    assert row.p50_ms == 2.0
    assert list(row.to_dict()) == ["export_dir", "format", "precision", "batch", "size_bytes", "max_abs_diff", "parity",
                                   "runtime", *timing, "speedup", "best", "machine"]  # bench.json / --json key order
    assert BenchRow("exp/cnn", "pt2", batch=8, error="batch axis is fixed at 1").to_dict() == {
        "export_dir": "exp/cnn", "format": "pt2", "batch": 8, "error": "batch axis is fixed at 1"}
    assert "best" not in BenchRow(None, "pytorch", batch=1, timing=timing).to_dict()

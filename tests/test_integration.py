"""Everything installed together: every format through the real CLI, bench over all of them, a publish /
pull round trip, and the start-up promise of `modelport formats`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "models.py"
FIRST_PARTY = ["pt2", "onnx", "torchscript", "openvino", "tensorrt", "coreml", "tflite", "executorch", "pytorch"]


def cli(*args: str, env: dict[str, str] | None = None, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelport", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def statuses() -> dict[str, dict]:
    r = cli("formats", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    return {f["name"]: f for f in data["formats"]} | {f"{p['name']}://": p for p in data["publishers"]}


def test_every_installed_plugin_is_listed_and_none_is_broken(statuses):
    import importlib.metadata as im

    installed = {d.metadata["Name"] for d in im.distributions() if d.metadata["Name"].startswith("modelport-")}
    for name, row in statuses.items():
        assert row["status"] != "broken", (name, row)
        if row["status"] == "not installed":  # the hint names a distribution that is really missing
            from modelport.plugins.catalog import catalog_entry

            entry = catalog_entry(name.removesuffix("://"))
            assert entry is not None and entry.distribution not in installed, name
    assert statuses["pt2"]["status"] == "available"


def test_formats_imports_no_heavy_module_with_every_plugin_installed():
    code = ("import sys\nfrom modelport.cli import main\ntry:\n    main(['formats', '--json'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch','numpy','onnx','onnxruntime','openvino','tensorflow','coremltools','executorch',"
            "'litert_torch','ai_edge_litert','tensorrt','huggingface_hub','nncf') if m in sys.modules]\n"
            "sys.stderr.write('HEAVY=' + ','.join(heavy))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.stderr.rsplit("HEAVY=", 1)[1].strip() == "", r.stderr


@pytest.fixture(scope="module")
def cnn_all(tmp_path_factory):
    out = tmp_path_factory.mktemp("all") / "cnn"
    r = cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "--dynamic-batch", "-f", "all", "--task",
            "classification", "--output-dir", str(out), "--json", "--threads", "2")
    return out, r


def test_cnn_exports_to_every_available_format_and_validates(cnn_all, statuses):
    out, r = cnn_all
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout)["results"]
    expected = {n for n in FIRST_PARTY if statuses.get(n, {}).get("can_export")}
    assert set(results) >= expected
    for fmt, res in results.items():
        if statuses[fmt]["can_validate"]:
            assert res["status"] == "passed", (fmt, res)
        else:
            assert res["status"] in ("structure-only", "skipped"), (fmt, res)
        md = json.loads((out / fmt / "metadata.json").read_text())
        assert md["export_format"] == fmt and md["num_classes"] == 10


def test_transformer_exports_to_every_available_format(tmp_path, statuses):
    out = tmp_path / "enc"
    r = cli("export", f"{EXAMPLES}:small_transformer", "--text", "16:1000", "--dynamic-batch", "-f", "all",
            "--output-dir", str(out), "--json", "--threads", "2")
    assert r.returncode == 0, r.stderr
    for fmt, res in json.loads(r.stdout)["results"].items():
        assert res["status"] in ("passed", "structure-only"), (fmt, res)


def test_bench_over_every_format_prints_table_writes_json_and_plot(cnn_all, tmp_path):
    out, r = cnn_all
    assert r.returncode == 0
    dirs = [str(d) for d in sorted(out.iterdir()) if (d / "export.json").is_file()]
    png = tmp_path / "latency.png"
    r = cli("bench", *dirs, "--batch", "1,8", "--threads", "2", "--max-seconds", "1", "--plot", str(png))
    assert r.returncode == 0, r.stderr
    assert "★" in r.stdout and "pytorch" in r.stdout
    assert png.read_bytes()[:4] == b"\x89PNG"
    for d in dirs:
        if json.loads((Path(d) / "export.json").read_text())["validation"]["status"] == "passed":
            assert (Path(d) / "bench.json").is_file(), d


def test_publish_two_formats_to_the_registry_and_pull_them_back(cnn_all, tmp_path, statuses):
    out, r = cnn_all
    assert r.returncode == 0
    reg = tmp_path / "registry"
    for fmt in ("pt2", "onnx"):
        if not statuses.get(fmt, {}).get("can_validate"):
            pytest.skip(f"{fmt} not available here")
        p = cli("publish", str(out / fmt), f"file://{reg}", "--version", fmt)
        assert p.returncode == 0, p.stderr
        dest = tmp_path / f"pulled-{fmt}"
        p = cli("pull", f"file://{reg}/small_cnn/{fmt}", str(dest))
        assert p.returncode == 0, p.stderr
        v = cli("validate", str(dest))
        assert v.returncode == 0 and "passed" in v.stdout, v.stderr


def test_compare_two_formats(cnn_all, statuses):
    out, r = cnn_all
    assert r.returncode == 0
    if not statuses.get("onnx", {}).get("can_validate"):
        pytest.skip("onnx not available")
    c = cli("compare", str(out / "onnx"), str(out / "pt2"), "--json")
    assert c.returncode == 0, c.stderr
    assert json.loads(c.stdout)["comparison"]["passed"]

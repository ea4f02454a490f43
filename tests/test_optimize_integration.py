"""`modelport optimize` across pt2 and ONNX (the onnx plugin's tunable quantize): int8 outside a tight budget is
pruned on the first slice and never benchmarked; the winner is a measured, fitting candidate on the Pareto front."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from modelport.testing import run_cli

pytest.importorskip("onnxruntime")


def test_int8_outside_the_budget_is_pruned_and_the_winner_fits(tmp_path: Path) -> None:
    data = tmp_path / "data.npz"
    np.savez(data, input=np.random.default_rng(0).random((12, 3, 16, 16), dtype=np.float32))
    out = tmp_path / "best"
    r = run_cli("optimize", "modelport.testing.models:tiny_cnn", "--vision", "3x16x16", "--sample-inputs",
                str(data), "--budget", "max_abs<=1e-4", "-f", "pt2,onnx", "--threads", "1",
                "--output-dir", str(out), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    by = {c["label"]: c for c in res["candidates"]}
    graph_opts = ("extended", "all")  # onnx's runtime-only tunable: the same export, the runner reloaded
    label = "onnx[quantize={},graph_opt={}]@1t".format
    # 12 items are too few to hold calibration items out: static calibrates on all 12 (32/128/512 capped, once)
    quantized = {"dynamic": label("dynamic", "{}"), "static": "onnx[quantize=static,calibration_size=12,graph_opt={}]@1t"}
    assert set(by) == {"pt2@1t"} | {q.format(g) for q in [label("none", "{}"), *quantized.values()] for g in graph_opts}
    for q in quantized.values():
        for g in graph_opts:
            c = by[q.format(g)]
            assert c["status"] == "pruned" and not c["benchmarked"] and c["p50_ms"] is None and c["metric"] > 1e-4
    assert res["data"]["held_out"] is False and "too few to hold calibration items out" in res["data"]["note"]
    fits = [c for c in res["candidates"] if c["status"] == "fits"]
    assert {c["label"] for c in fits} == {"pt2@1t"} | {label("none", g) for g in graph_opts}
    winner = by[res["winner"]]
    assert winner["pareto"] and winner["p50_ms"] == min(c["p50_ms"] for c in fits)
    record = json.loads((out / "export.json").read_text())
    assert record["format"] == winner["format"] and record["optimize"]["winner"] == res["winner"]
    assert run_cli("validate", str(out)).returncode == 0

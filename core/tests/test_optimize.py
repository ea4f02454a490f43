"""`modelport optimize` with the core's pt2 only: budget parsing, pruning, Pareto front, the winner folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli
from modelport.commands.optimize import NO_FIT_EXIT, Budget, Candidate, pareto_front, parse_budget
from modelport.errors import ConfigError

MODEL = "modelport.testing.models:tiny_cnn"


@pytest.mark.parametrize(("text", "want"), [("top1=-1.0", Budget("top1", -1.0)), ("cosine>=0.999", Budget("cosine", 0.999)),
                                            (" max_abs <= 1e-3 ", Budget("max_abs", 1e-3))])
def test_budget_parses(text: str, want: Budget) -> None:
    assert parse_budget(text) == want


@pytest.mark.parametrize("text", ["top1>=-1", "cosine=2", "speed<=3", "top1=1", "max_abs<=-1", ""])
def test_bad_budget_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="--budget"):
        parse_budget(text)


def test_pareto_front_keeps_only_undominated_fastest_first() -> None:
    cs = [Candidate("a", {}, 1, metric=0.999, p50_ms=2.0), Candidate("b", {}, 1, metric=0.990, p50_ms=1.0),
          Candidate("c", {}, 1, metric=0.990, p50_ms=3.0), Candidate("d", {}, 1, metric=0.9999, p50_ms=5.0),
          Candidate("e", {}, 1, metric=0.5, status="pruned")]
    front = pareto_front(cs, Budget("cosine", 0.9))
    assert [c.format for c in front] == ["b", "a", "d"]
    assert not cs[2].pareto and not cs[4].pareto
    # max_abs: smaller is better
    front = pareto_front([Candidate("x", {}, 1, metric=1e-3, p50_ms=1.0), Candidate("y", {}, 1, metric=1e-2, p50_ms=2.0)],
                         Budget("max_abs", 1.0))
    assert [c.format for c in front] == ["x"]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("opt") / "data.npz"
    np.savez(path, input=np.random.default_rng(0).random((12, 3, 16, 16), dtype=np.float32))
    return str(path)


def test_bad_budget_on_the_command_line_is_a_config_error_one_line(samples: str, tmp_path) -> None:
    r = run_cli("optimize", MODEL, "--sample-inputs", samples, "--budget", "cosine=0.9", "--output-dir", str(tmp_path / "w"))
    assert r.returncode == 3  # configuration error (DESIGN.md)
    assert r.stderr.strip().count("\n") == 0 and "--budget" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "w").exists()


def test_winner_is_a_valid_export_that_says_how_it_was_chosen(samples: str, tmp_path) -> None:
    out = tmp_path / "winner"
    r = run_cli("optimize", MODEL, "--vision", "3x16x16", "--sample-inputs", samples, "--budget", "cosine>=0.999",
                "-f", "pt2", "--threads", "1", "--output-dir", str(out), "--json")
    assert r.returncode == 0, r.stderr
    payload = json.loads(r.stdout)
    assert payload["winner"] == "pt2@1t" and payload["winner_dir"] == str(out)
    (cand,) = payload["candidates"]
    assert cand["status"] == "fits" and cand["benchmarked"] and cand["p50_ms"] > 0 and cand["metric"] >= 0.999
    record = json.loads((out / "export.json").read_text())
    assert record["optimize"]["budget"] == "cosine>=0.999"
    assert record["optimize"]["candidates"][0]["label"] == "pt2@1t" and record["optimize"]["machine"]["cores"]
    v = run_cli("validate", str(out))
    assert v.returncode == 0, v.stdout + v.stderr


MC_DROPOUT = """
import torch


class MCDropout(torch.nn.Module):
    # Monte-Carlo dropout left on at inference: every call differs, so no artifact can match PyTorch
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.head = torch.nn.Linear(8, 10)

    def forward(self, input):
        x = torch.relu(self.conv(input)).mean((2, 3))
        return self.head(torch.nn.functional.dropout(x, 0.5, training=True))


def build():
    return MCDropout()
"""


def test_candidate_failing_first_slice_is_never_benchmarked_and_no_fit_exits_2(samples: str, tmp_path) -> None:
    (tmp_path / "mc.py").write_text(MC_DROPOUT)
    out = tmp_path / "none"
    r = run_cli("optimize", f"{tmp_path / 'mc.py'}:build", "--sample-inputs", samples, "--budget", "cosine>=0.999",
                "-f", "pt2", "--threads", "1", "--output-dir", str(out), "--json")
    assert r.returncode == NO_FIT_EXIT
    assert r.stderr.strip() == ("error: no candidate fits the budget cosine>=0.999 (see the table; loosen --budget "
                                "or add formats)")
    (cand,) = json.loads(r.stdout)["candidates"]
    assert cand["status"] == "pruned" and not cand["benchmarked"] and cand["p50_ms"] is None
    assert cand["note"].startswith("first 8 items") and cand["metric"] < 0.999
    assert not out.exists()


def test_runtime_only_option_is_tried_without_re_exporting_and_the_winner_records_it(samples: str, tmp_path,
                                                                                     monkeypatch) -> None:
    import dataclasses

    import modelport.api
    from modelport.commands.optimize import _write_winner, candidate_grid, optimize
    from modelport.plugins import PluginHost
    from modelport.plugins.types import OptionSpec

    host = PluginHost()
    spec, owner = host.formats["pt2"]
    rt = OptionSpec("rt", "choice", "a", "how the runner runs", choices=("a", "b"), tune=("a", "b"), runtime=True)
    monkeypatch.setitem(host.formats, "pt2", (dataclasses.replace(spec, options=(*spec.options, rt)), owner))
    assert [c.label for c in candidate_grid(host, ["pt2"], [1, 2])] == [
        "pt2[rt=a]@1t", "pt2[rt=a]@2t", "pt2[rt=b]@1t", "pt2[rt=b]@2t"]
    exports, loads = [], []
    real_export = modelport.api.export
    monkeypatch.setattr(modelport.api, "export", lambda *a, **k: exports.append(k["options"]) or real_export(*a, **k))
    import modelport.engine.pipeline

    real_call = modelport.engine.pipeline.call_hook

    def spy(h, fmt, hook, **kw):
        if hook == "load_runner":
            loads.append(dict(kw["options"]))
        return real_call(h, fmt, hook, **kw)

    monkeypatch.setattr(modelport.engine.pipeline, "call_hook", spy)
    rng = np.random.default_rng(0)
    result = optimize(MODEL, {"input": rng.random((10, 3, 16, 16), dtype=np.float32)}, "cosine>=0.999",
                      output_dir=tmp_path / "w", formats=["pt2"], threads=[1, 2],
                      settings={"host": host, "bench_seconds": 0.2})
    assert exports == [{"pt2": {}}]  # one export: threads and rt only change the runner
    assert loads[0] == {"threads": 1}  # the export's own validation, with the recorded default
    assert loads[1:] == [{"threads": 1, "rt": "a"}, {"threads": 2, "rt": "a"}, {"threads": 1, "rt": "b"},
                     {"threads": 2, "rt": "b"}]
    assert all(c.status == "fits" for c in result.candidates) and result.winner is not None
    # whichever value won, the folder (exported with the default rt=a) must record it: force rt=b to see it
    result.winner = Candidate("pt2", {"rt": "b"}, 1, metric=1.0, p50_ms=1.0, status="fits")
    dest = _write_winner(tmp_path / "w", tmp_path / "w2", result)
    assert json.loads((dest / "export.json").read_text())["options"]["rt"] == "b"
    assert json.loads((dest / "metadata.json").read_text())["export_config"]["rt"] == "b"
    v = run_cli("validate", str(dest))  # still sealed and valid after both files changed
    assert v.returncode == 0, v.stdout + v.stderr

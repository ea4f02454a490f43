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


def test_the_table_says_why_a_candidate_was_pruned_under_it_in_80_columns(samples: str, tmp_path) -> None:
    (tmp_path / "mc.py").write_text(MC_DROPOUT)
    r = run_cli("optimize", f"{tmp_path / 'mc.py'}:build", "--sample-inputs", samples, "--budget", "cosine>=0.999",
                "-f", "pt2", "--threads", "1", "--output-dir", str(tmp_path / "none"), env={"COLUMNS": "80"})
    assert r.returncode == NO_FIT_EXIT
    row = next(line for line in r.stdout.splitlines() if "pt2@1t" in line)
    assert "pruned" in row and row.rstrip(" │|").endswith("[1]")
    note = r.stdout.split("\n  [1] ", 1)[1].split("\neager PyTorch")[0]
    note = " ".join(note.split())  # a long note wraps at 80 columns
    assert note.startswith("first 8 items miss cosine>=0.999") and "not benchmarked" in note
    assert max(len(line) for line in r.stdout.splitlines()) <= 80


def test_calibration_items_flag_is_checked_before_the_model_loads(samples: str, tmp_path) -> None:
    r = run_cli("optimize", f"{tmp_path / 'absent.py'}:build", "--sample-inputs", samples, "--budget", "cosine>=0.99",
                "--calibration-items", "6", "--output-dir", str(tmp_path / "w"))
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("error: 6 calibration items (--calibration-items) leave 6 of 12 sample items to "
                                "score; keep at least 8")


def test_calibration_items_flag_sets_the_split(tmp_path) -> None:
    path = tmp_path / "data.npz"
    np.savez(path, input=np.random.default_rng(0).random((30, 3, 16, 16), dtype=np.float32))
    r = run_cli("optimize", MODEL, "--vision", "3x16x16", "--sample-inputs", str(path), "--budget", "cosine>=0.99",
                "-f", "pt2", "--threads", "1", "--calibration-items", "10", "--every-calibration-size",
                "--output-dir", str(tmp_path / "w"), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)["data"]
    assert data["calibration_items"] == [0, 10] and data["scored_items"] == [10, 30] and data["held_out"]
    assert json.loads((tmp_path / "w" / "export.json").read_text())["optimize"]["data"]["scored_items"] == [10, 30]


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


# --------------------------------------------------------------------------- calibration size (issue 18 §2)


class CalibratingFormat:
    """A third-party format that calibrates when ``int8=true``: it keeps the items it was handed, and its "int8"
    artifact is off from PyTorch by ``error / calib_n`` (more items, better scales), and faster than its fp32 one."""

    def __init__(self, error: float = 0.0) -> None:
        self.error, self.calibrated, self.model = error, [], None

    def export(self, request):
        from modelport import Artifact

        self.model = request.model
        opts = request.options
        n = int(opts.get("calib_n") or 0)
        if opts.get("int8"):
            self.calibrated.append((n, [float(s["input"].flat[0]) for s in request.sample_inputs[:n]]))
        path = request.workdir / "model.calq"
        path.write_text(json.dumps({"off": self.error / n if opts.get("int8") else 0.0,
                                    "sleep": 0.0 if opts.get("int8") else 0.002}))
        return Artifact(format="calq", path=path, files=["model.calq"], precision="int8" if opts.get("int8") else "fp32")

    def load_runner(self, artifact, options):
        import time

        import torch

        cfg = json.loads(artifact.path.read_text())

        def run(inputs):
            time.sleep(cfg["sleep"])
            with torch.no_grad():
                out = self.model(torch.from_numpy(inputs["input"])).numpy()
            return [out + cfg["off"] * np.sign(out)]

        return run


def _calq_host(fmt: CalibratingFormat, tune=(4, 8, 64)):
    from modelport import FormatSpec, OptionSpec, hookimpl
    from modelport.plugins import PluginHost

    class Plugin:
        @hookimpl
        def register_formats(self, register):
            register(FormatSpec(name="calq", display_name="Calibrating", files=("model.calq",), implementation=fmt,
                                options=(OptionSpec("int8", "bool", False, "quantize", tune=(False, True)),
                                         OptionSpec("calib_n", "int", 16, "items to calibrate on", tune=tune,
                                                    tune_when={"int8": (True,)}, calibration=True))))

    host = PluginHost(load_entry_points=False)
    host.pm.register(Plugin(), name="calq-plugin")
    return host


def test_calibration_sizes_multiply_only_calibrating_candidates_capped_and_deduplicated() -> None:
    from modelport.commands.optimize import candidate_grid

    host = _calq_host(CalibratingFormat(), tune=(4, 8, 64, 512))
    labels = [c.label for c in candidate_grid(host, ["calq"], [1, 2], calibration_items=20)]
    assert labels == ["calq[int8=False]@1t", "calq[int8=False]@2t",  # not calibrating: not multiplied by sizes
                      "calq[int8=True,calib_n=4]@1t", "calq[int8=True,calib_n=4]@2t",
                      "calq[int8=True,calib_n=8]@1t", "calq[int8=True,calib_n=8]@2t",
                      "calq[int8=True,calib_n=20]@1t", "calq[int8=True,calib_n=20]@2t"]  # 64, 512 -> 20, once
    with pytest.raises(ValueError, match="calibration size is an int"):
        from modelport.plugins.types import OptionSpec

        OptionSpec("n", "str", calibration=True)


def test_calibration_items_are_held_out_of_scoring_and_the_record_names_the_size(tmp_path, monkeypatch) -> None:
    import modelport.commands.optimize as opt

    fmt = CalibratingFormat()
    scored: list[float] = []
    real_run_all = opt._run_all
    monkeypatch.setattr(opt, "_run_all", lambda fn, sets: scored.extend(float(s["input"].flat[0]) for s in sets)
                        or real_run_all(fn, sets))
    x = np.ones((40, 3, 16, 16), np.float32) * np.arange(40, dtype=np.float32)[:, None, None, None]  # item i is all i
    res = opt.optimize(MODEL, {"input": x}, "cosine>=0.999", output_dir=tmp_path / "w", formats=["calq"], threads=[1],
                       settings={"host": _calq_host(fmt), "bench_seconds": 0.2})
    assert res.data == {"items": 40, "calibration_items": [0, 20], "scored_items": [20, 40], "held_out": True,
                        "note": None}
    calibrated = {v for _n, items in fmt.calibrated for v in items}
    assert calibrated and calibrated <= set(range(20))
    assert set(scored) == set(range(20, 40))  # PyTorch's reference and every candidate: held-out only
    assert [n for n, _ in fmt.calibrated] == [4]  # 4 fits: 8 and 20 would only move the scales, so are skipped
    by = {c.label: c for c in res.candidates}
    assert by["calq[int8=True,calib_n=8]@1t"].status == "skipped" and "calib_n=4 already fits" in (
        by["calq[int8=True,calib_n=8]@1t"].note or "")
    assert res.winner is not None and res.winner.label == "calq[int8=True,calib_n=4]@1t"  # fp32 sleeps 2 ms
    record = json.loads((tmp_path / "w" / "export.json").read_text())
    assert record["optimize"]["calibration"] == {"option": "calib_n", "size": 4, "items": [0, 4]}
    assert record["optimize"]["data"]["scored_items"] == [20, 40] and record["options"]["calib_n"] == 4


def test_a_larger_calibration_size_is_tried_only_when_the_smaller_came_close(tmp_path) -> None:
    from modelport.commands.optimize import optimize

    x = np.random.default_rng(0).random((40, 3, 16, 16), dtype=np.float32)
    near = CalibratingFormat(error=0.12)  # calib_n=4: outputs off by 0.03 (over, within twice), 8: 0.015 (fits)
    res = optimize(MODEL, {"input": x}, "max_abs<=0.02", output_dir=tmp_path / "near", formats=["calq"], threads=[1],
                   settings={"host": _calq_host(near), "bench_seconds": 0.2})
    status = {c.options.get("calib_n"): c.status for c in res.candidates if c.options["int8"]}
    assert [n for n, _ in near.calibrated] == [4, 8] and status == {4: "pruned", 8: "fits", 20: "skipped"}
    far = CalibratingFormat(error=50.0)  # hopeless: more items would not bring it within the budget
    res = optimize(MODEL, {"input": x}, "max_abs<=0.02", output_dir=tmp_path / "far", formats=["calq"], threads=[1],
                   settings={"host": _calq_host(far), "bench_seconds": 0.2})
    assert [n for n, _ in far.calibrated] == [4]
    assert {c.status for c in res.candidates if c.options["int8"] and c.options["calib_n"] > 4} == {"skipped"}
    every = CalibratingFormat(error=50.0)
    optimize(MODEL, {"input": x}, "max_abs<=0.02", output_dir=tmp_path / "all", formats=["calq"], threads=[1],
             settings={"host": _calq_host(every), "bench_seconds": 0.2, "calibration_search": "all"})
    assert [n for n, _ in every.calibrated] == [4, 8, 20]


def test_too_few_items_to_hold_out_is_said_in_one_line_and_recorded(tmp_path) -> None:
    from modelport.commands.optimize import DataSplit, optimize, plan_split

    lines: list[str] = []
    x = np.random.default_rng(0).random((12, 3, 16, 16), dtype=np.float32)
    res = optimize(MODEL, {"input": x}, "cosine>=0.999", output_dir=tmp_path / "w", formats=["calq"], threads=[1],
                   settings={"host": _calq_host(CalibratingFormat()), "bench_seconds": 0.2, "progress": lines.append})
    assert res.data["held_out"] is False and res.data["scored_items"] == [0, 12]
    assert ("data: only 12 sample items, too few to hold calibration items out (needs 16): calibrating candidates "
            "are scored on the items they calibrated on") in lines
    assert plan_split(100, 0) == DataSplit(100, 0)  # nothing calibrates: every item scores
    assert plan_split(100, 512) == DataSplit(100, 50) and plan_split(100, 32) == DataSplit(100, 32)
    with pytest.raises(ConfigError, match="leave 4 of 36 sample items to score"):
        plan_split(36, 512, requested=32)

"""What commands print: only modelport's own lines (a model or converter that prints is captured), tables that
render, one --batch syntax, a default model name shared by the CLI and the API, bench numbers that say when they
cannot be trusted. The 80-column pseudo-terminal checks with every plugin are in tests/test_terminal.py."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import CNN, run_cli

CHATTY = '''
import os
import sys

import torch
from torch import nn

print("building the model (stdout)")
print("a warning on stderr", file=sys.stderr)


class Chatty(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        print("forward called", x.shape)
        os.write(1, b"C-level chatter on fd 1\\n")
        os.write(2, b"C-level chatter on fd 2\\n")
        return self.fc(x)


def chatty():
    torch.manual_seed(0)
    return Chatty().eval()
'''


@pytest.fixture(scope="module")
def chatty(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("chatty")
    (folder / "chatty.py").write_text(textwrap.dedent(CHATTY))
    return f"{folder / 'chatty.py'}:chatty"


@pytest.fixture(scope="module")
def chatty_export(chatty: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("chatty-out") / "pt2"
    r = run_cli("export", chatty, "--input", "x:2x4", "--dynamic-batch", "-f", "pt2", "--output-dir", str(out), "--json")
    return out, r


def test_a_model_that_prints_leaves_export_json_stdout_clean(chatty_export):
    out, r = chatty_export
    assert r.returncode == 0, r.stderr
    payload = json.loads(r.stdout)  # nothing but our JSON on stdout
    assert payload["results"]["pt2"]["status"] == "passed"
    assert r.stderr == ""
    record = json.loads((out / "export.json").read_text())
    assert "forward called" in record["log"] and "C-level chatter on fd 2" in record["log"]  # kept in the record


def test_validate_bench_and_inspect_capture_what_the_model_prints(chatty_export):
    out, r = chatty_export
    assert r.returncode == 0
    for args in (["validate", str(out)], ["inspect", str(out)], ["bench", str(out), "--max-seconds", "0.2", "--threads", "1"]):
        res = run_cli(*args)
        assert res.returncode == 0, (args, res.stderr)
        assert "chatter" not in res.stdout + res.stderr and "forward called" not in res.stdout + res.stderr, args
        assert res.stderr == "", (args, res.stderr)
    debug = run_cli("--debug", "bench", str(out), "--max-seconds", "0.2", "--threads", "1")
    assert "forward called" in debug.stderr  # --debug shows what was captured


def test_export_without_arguments_asks_for_the_model():
    r = run_cli("export")
    assert r.returncode == 3
    assert r.stderr.startswith("error: missing MODEL"), r.stderr


def test_batch_takes_the_same_list_syntax_in_export_and_bench(tmp_path):
    out = tmp_path / "cnn"
    r = run_cli("export", CNN, "--vision", "3x16x16", "--dynamic-batch", "--batch", "2,3", "-f", "pt2",
                "--output-dir", str(out), "--json")
    assert r.returncode == 0, r.stderr
    record = json.loads((out / "export.json").read_text())
    assert record["inputs"][0]["shape"][0] == 2  # the first size is the example batch
    assert 3 in record["validation"]["batch_sizes"]  # the others are validated too
    bad = run_cli("export", CNN, "--vision", "3x16x16", "--batch", "2,3", "-f", "pt2", "--output-dir", str(tmp_path / "x"))
    assert bad.returncode == 3 and "--dynamic-batch" in bad.stderr
    for cmd in (["export", CNN, "--vision", "3x16x16", "-f", "pt2"], ["bench", str(out)]):
        r = run_cli(*cmd, "--batch", "0,x", "--output-dir", str(tmp_path / "y")) if cmd[0] == "export" else run_cli(*cmd, "--batch", "0,x")
        assert r.returncode == 3 and "is not like 1 or 1,8" in r.stderr, r.stderr


def test_cli_and_api_default_to_the_same_model_name(tmp_path):
    import sys

    import modelport

    r = run_cli("export", CNN, "--vision", "3x16x16", "-f", "pt2", "--output-dir", str(tmp_path / "cli"), "-q")
    assert r.returncode == 0, r.stderr
    sys.path.insert(0, str(Path(CNN.split(":")[0]).parent))
    try:
        from models import small_cnn  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    api = modelport.export(small_cnn(), ["pt2"], modelport.vision(3, 16, 16), output_dir=tmp_path / "api", validate=False)
    cli_name = json.loads((tmp_path / "cli" / "metadata.json").read_text())["model_name"]
    assert cli_name == api["pt2"].metadata["model_name"] == "small_cnn"


def test_pull_json_and_publish_help_lists_publisher_options(tmp_path):
    out = tmp_path / "cnn"
    assert run_cli("export", CNN, "--vision", "3x16x16", "-f", "pt2", "--output-dir", str(out), "-q").returncode == 0
    assert run_cli("publish", str(out), f"file://{tmp_path / 'reg'}", "--version", "v7").returncode == 0
    r = run_cli("pull", f"file://{tmp_path / 'reg'}/small_cnn/v7", str(tmp_path / "dest"), "--json")
    assert r.returncode == 0, r.stderr
    pulled = json.loads(r.stdout)
    assert "model.pt2" in pulled["files"] and pulled["verified"] == "sha256"
    h = run_cli("publish", "--help")
    assert h.returncode == 0
    assert "EXPORT_DIR... TARGET" in h.stdout and "--version" in h.stdout and "file://" in h.stdout


def test_pt2_inspect_names_symbolic_dimensions(tmp_path):
    out = tmp_path / "cnn"
    assert run_cli("export", CNN, "--vision", "3x16x16", "--dynamic-batch", "-f", "pt2", "--output-dir", str(out), "-q").returncode == 0
    info = json.loads(run_cli("inspect", str(out / "model.pt2"), "--json").stdout)
    assert info["inputs"][0]["shape"] == ["batch", 3, 16, 16]
    assert info["inputs"][0]["dynamic"]["0"].startswith("batch (1..")


def test_formats_table_escapes_markup_in_plugin_errors(tmp_path):
    from conftest import make_plugin_dist

    site = make_plugin_dist(tmp_path / "site", "acme-broken", "acme_broken",
                            'raise ImportError("needs [runtime] extra and [bold]x[/bold]")\n', "acme")
    import os

    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "COLUMNS": "200"}
    for cmd in ("formats", "plugins"):
        r = run_cli(cmd, add_env=env)
        assert r.returncode == 0, r.stderr
        assert "needs [runtime] extra and [bold]x[/bold]" in r.stdout, r.stdout


def test_measurement_flags_numbers_it_cannot_trust():
    from modelport.commands.bench import Measurement

    steady = Measurement("a", lambda: None, 4, samples=[0.010] * 40, medians=[0.010, 0.010, 0.0101])
    res = steady.result()
    assert res["stable"] and res["unstable"] is None
    assert res["throughput"] == pytest.approx(4 / 0.010)  # items per measured second
    noisy = Measurement("b", lambda: None, 1, samples=[0.001] * 10 + [0.095] * 5, medians=[0.001, 0.095])
    res = noisy.result()
    assert not res["stable"]
    assert "only 15 runs" in res["unstable"] and "window medians differ" in res["unstable"] and "p90 is" in res["unstable"]
    # throughput from what was measured, not batch / p50 (which would claim 1000/s here)
    assert res["throughput"] == pytest.approx(15 / (10 * 0.001 + 5 * 0.095))


def test_formats_are_timed_in_turns():
    from modelport.commands.bench import Measurement, measure_interleaved

    log: list[str] = []
    a = Measurement("a", lambda: log.append("a"), 1)
    b = Measurement("b", lambda: log.append("b"), 1)
    measure_interleaved([a, b], max_seconds=0.5)
    timed = log[a.warmup_runs + b.warmup_runs:]
    first_b = timed.index("b")
    assert first_b == a.window  # a's first window, then b's, then a's again...
    assert "a" in timed[first_b:]


def test_zoo_list_and_info_print_remote_text_literally(tmp_path):
    """What a registry holds is not ours: a class name like "[red]cat[/red]" is text, not rich markup."""
    names = tmp_path / "classes.json"
    names.write_text(json.dumps(["[red]cat[/red]", "[/]", *[f"c{i}" for i in range(8)]]))
    out = tmp_path / "cnn"
    r = run_cli("export", CNN, "--vision", "3x16x16", "-f", "pt2", "--task", "classification", "--class-names", str(names),
                "--model-name", "[b]cnn", "--output-dir", str(out), "-q")
    assert r.returncode == 0, r.stderr
    assert run_cli("publish", str(out), f"file://{tmp_path / 'reg'}", "--version", "v1").returncode == 0
    listed = run_cli("list", f"file://{tmp_path / 'reg'}")
    assert listed.returncode == 0, listed.stderr
    assert "[b]cnn" in listed.stdout
    info = run_cli("info", f"file://{tmp_path / 'reg'}/[b]cnn@v1")
    assert info.returncode == 0, info.stderr
    assert "[red]cat[/red], [/]" in info.stdout

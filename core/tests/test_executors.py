"""Formats of one export run concurrently (``--jobs``) or as Ray tasks (``--executor ray``); an upstream artifact
the run already produced is reused; a worker that dies fails its format only."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import textwrap

import pytest
from conftest import make_plugin_dist

# the core session has pt2 alone; these tests need the ONNX and TorchScript plugins (the integration session)
needs_plugins = pytest.mark.skipif(
    importlib.util.find_spec("modelport_onnx") is None or importlib.util.find_spec("modelport_torchscript") is None,
    reason="needs modelport-export-onnx and modelport-export-torchscript")

# a plugin that logs every export (format, process) through a hook wrapper, and two format objects: one built
# from the run's ONNX export (upstream), one whose export kills its process
PLUGIN = '''
import os

from modelport import FormatSpec, hookimpl


@hookimpl
def register_formats(register):
    register(FormatSpec(name="onnx-copy", display_name="ONNX copy", files=("copy.onnx",), upstream=("onnx",),
                        implementation="jobsimpl:OnnxCopy"))
    register(FormatSpec(name="crash", display_name="Crash", files=("x.bin",), implementation="jobsimpl:Crash"))


@hookimpl(wrapper=True)
def export(request):
    with open(os.environ["JOBS_TEST_LOG"], "a") as f:
        f.write(f"{request.format} {os.getpid()}\\n")
    return (yield)
'''

IMPL = '''
import os
import shutil
import signal

from modelport import Artifact


class OnnxCopy:
    def export(self, request):
        up = request.upstream("onnx")
        shutil.copy(up.path, request.workdir / "copy.onnx")
        return Artifact(format="onnx-copy", path=request.workdir / "copy.onnx", files=["copy.onnx"])

    def load_runner(self, artifact, options):
        import onnxruntime as ort

        sess = ort.InferenceSession(str(artifact.path), providers=["CPUExecutionProvider"])
        return lambda inputs: sess.run(None, dict(inputs))


class Crash:
    def export(self, request):
        os.kill(os.getpid(), signal.SIGKILL)

    def load_runner(self, artifact, options):
        return None
'''


@pytest.fixture
def jobs_plugin(tmp_path, monkeypatch):
    site = make_plugin_dist(tmp_path / "site", "modelport-export-jobstest", "jobsplug", PLUGIN, "jobstest")
    (site / "jobsimpl.py").write_text(textwrap.dedent(IMPL))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("MODELPORT_LOAD_PLUGINS", raising=False)
    log = tmp_path / "exports.log"
    monkeypatch.setenv("JOBS_TEST_LOG", str(log))
    from modelport.plugins import get_plugin_manager

    get_plugin_manager(reload=True)
    yield log
    monkeypatch.undo()
    get_plugin_manager(reload=True)


def _exports(log):
    return [line.split() for line in log.read_text().splitlines()]


@needs_plugins
def test_jobs_export_formats_in_workers_and_reuse_the_runs_onnx_upstream(jobs_plugin, tmp_path):
    import modelport
    from modelport.testing import reference_models

    ref = reference_models()["mlp"]
    result = modelport.export(ref.build(), "onnx-copy,onnx,torchscript", ref.inputs(), output_dir=tmp_path / "out",
                              jobs=2)
    assert {f: r.status for f, r in result.items()} == {"onnx-copy": "passed", "onnx": "passed",
                                                          "torchscript": "passed"}, [r.error for r in result.values()]
    runs = _exports(jobs_plugin)
    # ONNX exported once: onnx-copy (listed first) waited for it and reused it instead of exporting its own
    assert [f for f, _ in runs].count("onnx") == 1, runs
    assert {int(pid) for _, pid in runs} - {os.getpid()} == {int(pid) for _, pid in runs}, "ran in this process"
    assert (tmp_path / "out" / "onnx-copy" / "copy.onnx").read_bytes() == (tmp_path / "out" / "onnx" / "model.onnx").read_bytes()
    assert not list((tmp_path / "out").glob(".modelport-tmp-*"))


@needs_plugins
def test_upstream_options_that_differ_are_exported_again_in_order(jobs_plugin, tmp_path):
    import modelport
    from modelport.testing import reference_models

    ref = reference_models()["mlp"]
    result = modelport.export(ref.build(), "onnx,onnx-copy", ref.inputs(), output_dir=tmp_path / "out", jobs=1,
                              options={"onnx": {"opset": 19}})
    assert all(r.status == "passed" for r in result.values()), [r.error for r in result.values()]
    runs = _exports(jobs_plugin)
    assert [f for f, _ in runs] == ["onnx", "onnx-copy", "onnx"], runs  # opset 19 is not what onnx-copy asks for
    assert {int(pid) for _, pid in runs} == {os.getpid()}  # --jobs 1: today's path, in this process


def test_a_worker_that_dies_fails_its_format_only(jobs_plugin, tmp_path, cli):
    out = tmp_path / "out"
    r = cli("export", "modelport.testing.models:tiny_mlp", "--input", "x:1x8", "-f", "crash,pt2",
            "--jobs", "2", "--output-dir", str(out), "--json", env={"JOBS_TEST_LOG": str(jobs_plugin)})
    assert r.returncode == 1, r.stderr
    res = json.loads(r.stdout)["results"]
    assert res["pt2"]["status"] == "passed"
    assert res["crash"]["status"] == "error"
    assert res["crash"]["error"] == "crash: the export worker died (signal SIGKILL) before it finished"
    assert sorted(p.name for p in out.iterdir()) == ["pt2"]  # nothing half-written left


@needs_plugins
def test_a_model_that_cannot_be_pickled_runs_here_with_a_note(tmp_path):
    import modelport
    from modelport.testing import reference_models

    ref = reference_models()["mlp"]
    model = ref.build()
    model.hook = lambda x: x  # a lambda: pickle cannot carry it to a worker
    result = modelport.export(model, "onnx,torchscript", ref.inputs(), output_dir=tmp_path / "out", jobs=2)
    assert all(r.status == "passed" for r in result.values())
    assert len(result.notes) == 1 and result.notes[0].startswith("note: running formats one at a time here: "
                                                                "the model cannot be sent to a worker"), result.notes


def test_executor_ray_without_ray_is_one_line(monkeypatch, cli, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: find_spec("ray") is None
    r = cli("export", "modelport.testing.models:tiny_mlp", "--input", "x:1x8", "-f", "onnx", "--executor", "ray",
            "--output-dir", str(tmp_path / "out"))
    assert r.returncode == 3
    assert r.stderr.strip() == "error: --executor ray needs Ray, which is not installed: pip install 'modelport[ray]'"
    assert not (tmp_path / "out").exists()


def test_executor_ray_with_nothing_at_ray_address_fails_in_seconds_with_one_line(monkeypatch, cli, tmp_path):
    pytest.importorskip("ray")
    import socket

    with socket.socket() as s:  # a port nothing listens on: Ray alone would retry for minutes, silently
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    r = cli("export", "modelport.testing.models:tiny_mlp", "--input", "x:1x8", "-f", "pt2", "--executor", "ray",
            "--output-dir", str(tmp_path / "out"))
    assert r.returncode == 3, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: cannot join the Ray cluster at 127.0.0.1:{port}: nothing answers there (Connection refused); "
        "start it with `ray start --head` or fix --ray-address / RAY_ADDRESS"]
    assert not (tmp_path / "out").exists()


@needs_plugins
def test_executor_ray_exports_each_format_as_a_ray_task(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    import modelport
    from modelport.testing import reference_models

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    # Ray writes an auth token into ~/.ray for the instance it starts; in the shared home it would make other
    # tests' `ray start --head` clusters refuse their clients
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    ref = reference_models()["mlp"]
    lines: list[str] = []
    result = modelport.export(ref.build(), "onnx,torchscript", ref.inputs(), output_dir=tmp_path / "out",
                              executor="ray", progress=lines.append)
    assert {f: r.status for f, r in result.items()} == {"onnx": "passed", "torchscript": "passed"}
    assert "onnx: submitted to Ray (num_cpus=1, max_retries=0)" in lines, lines
    for fmt in ("onnx", "torchscript"):
        record = json.loads((tmp_path / "out" / fmt / "export.json").read_text())
        assert record["validation"]["status"] == "passed"
    import ray

    assert not ray.is_initialized()  # the local instance it started is stopped again


@needs_plugins
def test_ctrl_c_stops_the_workers_and_removes_their_staging_folders(tmp_path):
    import signal
    import subprocess
    import time

    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "modelport", "export", "modelport.testing.models:tiny_mlp",
                             "--input", "x:1x8", "-f", "onnx,pt2", "--jobs", "2", "--output-dir", str(out), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out.exists() and any(p.name.endswith(("-new-onnx", "-new-pt2")) for p in out.iterdir())):
        assert proc.poll() is None and time.monotonic() < deadline, "no worker started exporting"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # the parent only, as `kill -INT`: it must stop its workers itself
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; temporary files removed" in err
    assert list(out.iterdir()) == []  # no staging folder, no lock file, no half-written export

"""MODELPORT_TRACE_PLUGINS=1: every hook call, its plugins and its result, on the terminal's stderr."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

from conftest import CNN
from modelport.plugins import PluginHost, tracing


def test_tracing_is_off_unless_asked(monkeypatch):
    monkeypatch.delenv(tracing.ENV, raising=False)
    assert not tracing.enabled() and PluginHost(load_entry_points=False).tracer is None
    for off in ("", "0", "false", "no"):
        monkeypatch.setenv(tracing.ENV, off)
        assert not tracing.enabled()
    monkeypatch.setenv(tracing.ENV, "1")
    assert tracing.enabled() and PluginHost(load_entry_points=False).tracer is not None


def test_every_hook_call_is_traced_with_plugins_arguments_and_result(tmp_path):
    host = PluginHost(load_entry_points=False)
    stream = io.StringIO()
    host.tracer = tracing.install(host.pm, stream)
    assert host.pm.hook.inspect_artifact(path=tmp_path / "x.unknown", options={}) is None
    host._formats = None
    host.formats  # noqa: B018 - registration is called directly by the core and traced too
    lines = stream.getvalue().splitlines()
    assert any(line.startswith("modelport trace: inspect_artifact(path=") and "-> plugins: modelport.plugins.format_objects" in line
               for line in lines), lines
    assert any(line.startswith("modelport trace: inspect_artifact returned None (") for line in lines), lines
    assert any("register_formats" in line and "builtin.pt2" in line for line in lines), lines
    assert any(line.startswith("modelport trace: register_formats returned None") for line in lines), lines


def test_a_hook_that_raises_is_traced_with_its_error():
    class Boom:
        def __repr__(self) -> str:
            raise ValueError("no repr")

    from modelport.plugins.hookspecs import hookimpl

    class Plugin:
        @hookimpl
        def inspect_artifact(self, path, options):
            raise RuntimeError("inspect blew up")

    host = PluginHost(load_entry_points=False)
    host.pm.register(Plugin(), name="bad")
    stream = io.StringIO()
    tracing.install(host.pm, stream)
    try:
        host.pm.hook.inspect_artifact(path=Boom(), options={})
    except RuntimeError:
        pass
    text = stream.getvalue()
    assert "path=<Boom: repr raised ValueError>" in text
    assert "inspect_artifact raised RuntimeError: 'inspect blew up'" in text


def test_the_trace_stays_visible_while_converter_output_is_captured(tmp_path):
    # a real terminal process: the export captures fds 1 and 2, the trace still reaches stderr
    env = {**os.environ, tracing.ENV: "1"}
    r = subprocess.run([sys.executable, "-m", "modelport", "export", CNN, "--vision", "3x16x16", "-f", "pt2",
                        "--no-validate", "--output-dir", str(tmp_path / "o"), "--json"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["results"]["pt2"]["status"] == "not-validated"  # stdout stays clean JSON
    # pt2 is a format object: the core's dispatch plugin answers the export hook for it
    assert any(line.startswith("modelport trace: export(request=") and "modelport.plugins.format_objects" in line.split("-> plugins:")[-1]
               for line in r.stderr.splitlines()), r.stderr
    assert "modelport trace:   pt2: format object modelport.builtin.pt2:Pt2Format.export" in r.stderr
    assert "modelport trace: export returned Artifact(" in r.stderr
    # metadata comes from the format object's describe (describe_metadata hooks are traced when a plugin has one)
    assert "modelport trace:   pt2: format object modelport.builtin.pt2:Pt2Format.describe" in r.stderr

"""modelport.testing, the conformance kit: the built-in pt2 format passes it, and each rule catches a plugin that breaks it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import make_plugin_dist
from modelport.plugins import PluginHost
from modelport.testing import (
    ConformanceError,
    PluginConformance,
    check_availability,
    check_cli_lists_format,
    check_export,
    check_ignores_other_formats,
    check_import_is_light,
    check_metadata,
    check_output_convention,
    check_plugin,
    check_registration,
    check_runner,
    export_reference_model,
    find_plugin,
    reference_models,
)


class TestPt2Conformance(PluginConformance):
    """The kit's pytest class, exactly as a plugin author subclasses it, against the built-in pt2 format."""

    plugin = "modelport.builtin.pt2"
    format = "pt2"


def test_check_plugin_reports_every_check_for_pt2(tmp_path):
    report = check_plugin("modelport.builtin.pt2", "pt2", models=("mlp",), output_dir=tmp_path, cli=False)
    assert report.passed, report.summary()
    names = [c.name for c in report.checks]
    for expected in ("registers", "import and availability are light", "format object loads (or hooks return None for other formats)",
                     "availability says why", "mlp: exports and validates", "mlp: output convention",
                     "mlp: metadata.json passes the schema", "mlp: validate round-trips", "mlp: runner contract"):
        assert expected in names, report.summary()
    result = report.exports["mlp"]
    assert result.status == "passed" and result.validation.max_abs_diff < 1e-5
    assert sorted(p.name for p in (tmp_path / "mlp").iterdir()) == ["export.json", "metadata.json", "model.pt2", "reference.npz"]
    assert json.loads((tmp_path / "mlp" / "export.json").read_text())["outputs"] == ["output.0", "output.1"]


def test_reference_models_cover_tuple_and_dict_outputs_and_int_inputs():
    refs = reference_models()
    assert set(refs) == {"cnn", "mlp", "attention", "wrapper", "decoder"}
    import torch

    for ref in refs.values():
        spec = ref.inputs(dynamic_batch=True)
        assert spec.dynamic_batch
        out = ref.build()(*spec.make_torch(batch=2))
        flat = out if isinstance(out, torch.Tensor) else (list(out.values()) if isinstance(out, dict) else list(out))
        flat = [flat] if isinstance(flat, torch.Tensor) else flat
        assert len(flat) == len(ref.output_names) and all(t.shape[0] == 2 for t in flat)
    assert refs["attention"].inputs().tensors[0].dtype == "int64"
    # seeded: two builds give the same weights
    a, b = refs["cnn"].build(), refs["cnn"].build()
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# --------------------------------------------------------------------------- the kit catches broken plugins

FAKE = '''
{heavy}import modelport
from modelport import Artifact, Availability, FormatSpec, hookimpl

FORMAT = {fmt!r}


def availability():
    return {availability}


@hookimpl
def register_formats(register):
    register(FormatSpec(name=FORMAT, display_name="Kit fake", files=("model.fake",), availability=availability))


@hookimpl
def export(request):
    if request.format != FORMAT and not {greedy}:
        return None
    if {refuse_int} and any(t.dtype.startswith("int") for t in request.inputs.tensors):
        raise modelport.ExportFailed(f"{{FORMAT}}: integer inputs are not supported")
    import torch

    from modelport.builtin.pt2 import export_program

    torch.export.save(export_program(request), str(request.workdir / "model.fake"))
    if {extra_file}:
        (request.workdir / "debug.log").write_text("left behind")
    return Artifact(format=FORMAT, path=request.workdir / "model.fake", files=["model.fake"])


class Runner:
    def __init__(self, path):
        import torch

        self.module = torch.export.load(str(path)).module()
        if {runtime}:
            self.runtime = "fake 1.0"

    def __call__(self, inputs):
        import torch

        from modelport.engine.outputs import flatten_outputs, to_numpy

        out = self.module(*[torch.from_numpy(v) for v in inputs.values()])
        return [to_numpy(t) + {offset} for _, t in flatten_outputs(out)]


@hookimpl
def load_runner(artifact, options):
    if artifact.format not in (FORMAT, {also!r}):
        return None
    return Runner(artifact.path)
'''


def _fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, *, heavy_line: str = "", greedy: bool = False,
          extra_file: bool = False, offset: float = 0.0, runtime: bool = True, refuse_int: bool = False,
          availability: str = "Availability.ok()", also: str = "") -> PluginHost:
    """Install a fake plugin ``kitfake_<name>`` (format ``kitfake-<name>``) on sys.path and build a host with it.

    ``also``: another format whose artifacts its load_runner wrongly answers for too.
    """
    src = FAKE.format(heavy=heavy_line, fmt=f"kitfake-{name}", greedy=greedy,
                      extra_file=extra_file, offset=offset, runtime=runtime, availability=availability,
                      refuse_int=refuse_int, also=also)
    site = make_plugin_dist(tmp_path / "site", f"modelport-export-kitfake-{name}", f"kitfake_{name}", src,
                            f"kitfake-{name}")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("MODELPORT_LOAD_PLUGINS", raising=False)
    return PluginHost()


def test_fake_plugin_without_defects_passes(tmp_path, monkeypatch):
    """The control for the tests below: the same fake, with no defect switched on, passes every check."""
    host = _fake(tmp_path, monkeypatch, "good")
    report = check_plugin("kitfake_good", "kitfake-good", models=("mlp",), output_dir=tmp_path / "out", host=host,
                          cli=False)
    assert report.passed, report.summary()
    assert find_plugin("modelport-export-kitfake-good", host=host).module == "kitfake_good"


def test_missing_entry_point_is_reported_with_the_fix():
    with pytest.raises(ConformanceError, match=r"\[project.entry-points.modelport\]"):
        check_registration("modelport_not_installed_anywhere", "nothing")


def test_wrong_format_name_is_reported(tmp_path, monkeypatch):
    host = _fake(tmp_path, monkeypatch, "named")
    with pytest.raises(ConformanceError, match="does not register format 'other'"):
        check_registration("kitfake_named", "other", host=host)


def test_heavy_import_is_caught(tmp_path, monkeypatch):
    _fake(tmp_path, monkeypatch, "heavy", heavy_line="import torch\n")
    with pytest.raises(ConformanceError, match="imported torch"):
        check_import_is_light("kitfake_heavy", host=PluginHost())


def test_runtime_listed_by_the_author_is_caught(tmp_path, monkeypatch):
    """A module the author names as their runtime (here the stdlib's fractions stands in) is watched too."""
    host = _fake(tmp_path, monkeypatch, "light")
    check_import_is_light("kitfake_light", ("fractions",), host=host)  # the core itself never imports it
    host = _fake(tmp_path, monkeypatch, "runtime", heavy_line="import fractions\n")
    with pytest.raises(ConformanceError, match="imported fractions"):
        check_import_is_light("kitfake_runtime", ("fractions",), host=host)


def test_hook_answering_every_format_is_caught(tmp_path, monkeypatch):
    host = _fake(tmp_path, monkeypatch, "greedy", greedy=True)
    with pytest.raises(ConformanceError, match=r"export raised .* for another plugin's format"):
        check_ignores_other_formats("kitfake_greedy", host=host)


def test_hook_answering_one_real_other_format_is_caught_when_named(tmp_path, monkeypatch):
    host = _fake(tmp_path, monkeypatch, "onnxish", also="onnx")
    checked = check_ignores_other_formats("kitfake_onnxish", host=host)  # the made-up format: left alone
    assert {"export", "load_runner"} <= set(checked)
    with pytest.raises(ConformanceError, match=r"load_runner (raised|returned) .* for another plugin.s format"):
        check_ignores_other_formats("kitfake_onnxish", host=host, other_format="onnx")
    assert "load_runner" in check_ignores_other_formats("kitfake_onnxish", host=host, other_format="tflite")
    with pytest.raises(ValueError, match="is a format of kitfake_onnxish itself"):
        check_ignores_other_formats("kitfake_onnxish", host=host, other_format="kitfake-onnxish")


def test_cli_lists_format_can_also_check_the_cli_imports_nothing_heavy(tmp_path, monkeypatch):
    """With heavy_modules, the real `modelport formats --json` (every plugin loaded) must not import them."""
    host = _fake(tmp_path, monkeypatch, "clilight")
    row = check_cli_lists_format("kitfake-clilight", plugin="kitfake_clilight", heavy_modules=("fractions",), host=host)
    assert row["status"] == "available" and row["plugin"] == "modelport-export-kitfake-clilight"
    host = _fake(tmp_path, monkeypatch, "cliheavy", heavy_line="import fractions\n")
    check_cli_lists_format("kitfake-cliheavy", host=host)  # not asked to watch: passes
    with pytest.raises(ConformanceError, match=r"`modelport formats --json` imported fractions"):
        check_cli_lists_format("kitfake-cliheavy", heavy_modules=("fractions",), host=host)


def test_unavailable_without_reason_is_caught(tmp_path, monkeypatch):
    host = _fake(tmp_path, monkeypatch, "silent", availability="Availability(export=False, validate=False)")
    with pytest.raises(ConformanceError, match="unavailable without a reason"):
        check_availability("kitfake-silent", host=host)


def test_unavailable_with_reason_skips_exports(tmp_path, monkeypatch):
    host = _fake(tmp_path, monkeypatch, "absent",
                 availability="Availability.unavailable('needs the fake runtime', fix='pip install fake')")
    report = check_plugin("kitfake_absent", "kitfake-absent", host=host, cli=False, output_dir=tmp_path / "out")
    assert report.passed, report.summary()
    skipped = [c for c in report.checks if c.skipped]
    assert skipped and "needs the fake runtime" in skipped[0].detail
    assert not report.exports


def test_undeclared_file_is_caught(tmp_path, monkeypatch):
    host = _fake(tmp_path, monkeypatch, "messy", extra_file=True)
    result = export_reference_model("kitfake-messy", "mlp", tmp_path / "out", host=host)
    check_export(result)  # the export itself works...
    with pytest.raises(ConformanceError, match=r"wrote debug.log, which FormatSpec.files"):
        check_output_convention(result.path, host=host)  # ...but it wrote a file it does not declare


def test_wrong_numbers_are_caught(tmp_path, monkeypatch):
    host = _fake(tmp_path, monkeypatch, "wrong", offset=0.5)
    report = check_plugin("kitfake_wrong", "kitfake-wrong", models=("mlp",), output_dir=tmp_path / "out", host=host,
                          cli=False, raise_on_failure=False)
    failed = {c.name: c.detail for c in report.failures}
    assert list(failed) == ["mlp: exports and validates"], report.summary()
    assert "does not match PyTorch" in failed["mlp: exports and validates"]
    with pytest.raises(ConformanceError):
        report.raise_for_failures()


def test_declared_unsupported_model_must_fail_with_its_reason(tmp_path, monkeypatch):
    host = _fake(tmp_path, monkeypatch, "picky", refuse_int=True)
    report = check_plugin("kitfake_picky", "kitfake-picky", models=("attention",), output_dir=tmp_path / "a", host=host,
                          cli=False, raise_on_failure=False)
    assert [c.name for c in report.failures] == ["attention: exports and validates"]
    assert "integer inputs are not supported" in report.failures[0].detail
    report = check_plugin("kitfake_picky", "kitfake-picky", models=("mlp", "attention"), host=host, cli=False,
                          unsupported={"attention": "integer inputs"}, output_dir=tmp_path / "b")
    assert "attention: refused with a clear reason" in [c.name for c in report.checks] and report.passed
    with pytest.raises(ConformanceError, match="remove it from `unsupported`"):
        check_plugin("kitfake_picky", "kitfake-picky", models=("mlp",), host=host, cli=False,
                     unsupported={"mlp": "anything"}, output_dir=tmp_path / "c")


def test_runner_without_runtime_is_caught(tmp_path, monkeypatch):
    host = _fake(tmp_path, monkeypatch, "anon", runtime=False)
    result = export_reference_model("kitfake-anon", "mlp", tmp_path / "out", host=host)
    check_export(result)
    with pytest.raises(ConformanceError, match="no `runtime` string"):
        check_runner(result.path, host=host)


def test_expect_validate_false_rejects_a_plugin_that_runs(tmp_path):
    result = export_reference_model("pt2", "mlp", tmp_path / "out")
    with pytest.raises(ConformanceError, match="expected structure-only or skipped"):
        check_export(result, expect_validate=False)


def test_tampered_export_is_caught(tmp_path):
    result = export_reference_model("pt2", "mlp", tmp_path / "out")
    d = tmp_path / "copy"
    shutil.copytree(result.path, d)
    check_output_convention(d)
    check_metadata(d, "pt2", plugin="modelport.builtin.pt2")
    with pytest.raises(ConformanceError, match="expected 'onnx'"):
        check_metadata(d, "onnx")
    with open(d / "model.pt2", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ConformanceError, match=r"model.pt2 \(sha256 mismatch\)"):
        check_output_convention(d)
    md = json.loads((d / "metadata.json").read_text())
    del md["created_at"]
    (d / "metadata.json").write_text(json.dumps(md))
    with pytest.raises(ConformanceError, match="'created_at' is a required property"):
        check_metadata(d)


def test_module_entry_point_prints_the_report(capsys):
    """``python -m modelport.testing PLUGIN FORMAT`` prints the report and exits 0, or 1 when a check fails."""
    import subprocess
    import sys

    from modelport.testing import main

    r = subprocess.run([sys.executable, "-m", "modelport.testing", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--heavy" in r.stdout
    assert main(["modelport.builtin.pt2", "pt2", "--models", "mlp", "--no-cli"]) == 0
    assert "ok   mlp: validate round-trips" in capsys.readouterr().out
    assert main(["modelport.builtin.pt2", "pt2", "--models", "mlp", "--no-cli", "--no-validate"]) == 1
    assert "FAIL mlp: exports and validates" in capsys.readouterr().out

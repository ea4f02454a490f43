"""Export options: one typed per-format mapping in the Python API (or the CLI's list), declared aliases
honoured, unknown keys refused, and `modelport formats --options` generated from the OptionSpecs."""

from __future__ import annotations

import json
import sys

import modelport
import pytest
from conftest import EXAMPLES, run_cli
from modelport.plugins.options import option_rows, resolve_options
from modelport.testing import load_module

ONNXISH = modelport.FormatSpec(
    name="onnxish", display_name="ONNX-ish", files=("m",), config_aliases={"opset_version": "opset", "half": "fp16"},
    options=(modelport.OptionSpec("opset", "int", 18, "opset version"),
             modelport.OptionSpec("fp16", "bool", False, "half precision weights"),
             modelport.OptionSpec("mode", "choice", "auto", "exporter", choices=("auto", "legacy"), aliases=("exporter",))),
)
PLAIN = modelport.FormatSpec(name="plain", display_name="Plain", files=("p",),
                             options=(modelport.OptionSpec("strict", "bool", False, "strict mode"),))
SPECS = {"onnxish": ONNXISH, "plain": PLAIN}


def test_a_per_format_mapping_a_flat_mapping_and_the_cli_list_resolve_alike():
    by_format = resolve_options(SPECS, {"onnxish": {"opset": "17", "fp16": True}, "plain": {"strict": True}})
    flat = resolve_options(SPECS, {"opset": 17, "fp16": "yes", "strict": 1})
    listed = resolve_options(SPECS, ["onnxish.opset=17", "fp16=true", "strict=true"])
    assert by_format == flat == listed == {
        "onnxish": {"opset": 17, "fp16": True, "mode": "auto"}, "plain": {"strict": True}}


def test_declared_and_convention_aliases_are_honoured_in_config_and_options():
    assert resolve_options(SPECS, config={"half": True})["onnxish"]["fp16"] is True  # --config {"half": true}
    assert resolve_options(SPECS, config={"opset_version": 16})["onnxish"]["opset"] == 16
    assert resolve_options(SPECS, {"onnxish": {"exporter": "legacy"}})["onnxish"]["mode"] == "legacy"
    assert resolve_options(SPECS, config={"batch_size": 4, "dynamic": True})["plain"] == {"strict": False}


@pytest.mark.parametrize(("options", "config", "needle"), [
    ({"nope": 1}, None, "options: unknown option 'nope' for the requested format(s) onnxish, plain"),
    ({"plain": {"opset": 17}}, None, "options: unknown option 'opset' for format 'plain'; known: strict"),
    ({"plain": True}, None, "the options of format 'plain' must be a mapping"),
    ({"other": {"x": 1}}, None, "unknown option 'other'"),
    ((), {"imgsz": 640}, "--config: unknown option 'imgsz'"),
    ((), {"half": True, "onnxish": {"fp16": "maybe"}}, "fp16='maybe' is not a valid bool"),
    ("opset=17", None, "options must be a list of 'key=value' strings or a mapping"),
])
def test_unknown_or_ill_typed_keys_are_configuration_errors(options, config, needle):
    with pytest.raises(modelport.ConfigError) as err:
        resolve_options(SPECS, options, config)
    assert needle in str(err.value)


def test_config_half_is_refused_for_a_format_without_that_option(tmp_path):
    r = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x8x8", "-f", "pt2", "--config", '{"half": true}',
                "--output-dir", str(tmp_path / "o"))
    assert r.returncode == 3 and "unknown option 'half' for the requested format(s) pt2" in r.stderr, r.stderr


def test_the_python_api_takes_a_typed_per_format_mapping(tmp_path, monkeypatch):
    models = load_module(EXAMPLES)
    monkeypatch.setitem(sys.modules, "models", models)  # strict torch.export re-imports the model's module
    model = models.small_cnn()
    inputs = modelport.vision(3, 16, 16)
    result = modelport.export(model, "pt2", inputs, output_dir=tmp_path / "a", options={"pt2": {"strict": True}},
                              validate=False)
    assert result["pt2"].status == "not-validated", result["pt2"].error
    assert json.loads((tmp_path / "a" / "metadata.json").read_text())["export_config"]["strict"] is True
    with pytest.raises(modelport.ConfigError, match="unknown option 'strict_mode'"):
        modelport.export(model, "pt2", inputs, output_dir=tmp_path / "b", options={"strict_mode": True})


def test_a_tensor_as_inputs_is_a_clear_configuration_error(tmp_path):
    import torch

    model = load_module(EXAMPLES).small_cnn()
    with pytest.raises(modelport.ConfigError, match=r"inputs must be a modelport\.InputSpec .* got Tensor"):
        modelport.export(model, "pt2", torch.zeros(1, 3, 16, 16), output_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_option_rows_list_type_default_help_and_every_alias():
    rows = {r["name"]: r for r in option_rows(ONNXISH)}
    assert rows["opset"] == {"name": "opset", "type": "int", "default": 18, "help": "opset version",
                             "aliases": ["opset_version"]}
    assert rows["fp16"]["aliases"] == ["half"]  # the config alias it declares
    assert rows["mode"]["choices"] == ["auto", "legacy"] and rows["mode"]["aliases"] == ["exporter"]


def test_formats_options_lists_every_option_of_every_format_and_publisher():
    r = run_cli("formats", "--options", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    strict = {o["name"]: o for o in data["formats"]["pt2"]}["strict"]
    assert strict["type"] == "bool" and strict["default"] is False and "torch.export" in strict["help"]
    assert {o["name"] for o in data["publishers"]["file"]} == {"version"}
    table = run_cli("formats", "--options", "pt2", add_env={"COLUMNS": "200"})
    assert table.returncode == 0 and "strict" in table.stdout and "-o pt2.KEY=VALUE" in table.stdout
    assert "version" not in table.stdout  # only the format asked for
    missing = run_cli("formats", "--options", "nosuchformat")
    assert missing.returncode == 3 and "unknown format 'nosuchformat'" in missing.stderr


def test_an_unknown_key_names_its_close_matches():
    with pytest.raises(modelport.ConfigError, match=r"--config: unknown option 'opset_verison' .*did you mean: opset_version"):
        resolve_options(SPECS, config={"opset_verison": 17})
    with pytest.raises(modelport.ConfigError, match=r"unknown option 'stirct' for format 'plain'; did you mean: strict\?"):
        resolve_options(SPECS, {"plain": {"stirct": True}})


def test_config_honours_only_aliases_a_format_declares():
    plain = modelport.FormatSpec(name="plain", display_name="Plain", files=("p",),
                                 options=(modelport.OptionSpec("fp16", "bool", False, "half"),))
    assert resolve_options({"plain": plain}, config={"fp16": True})["plain"]["fp16"] is True
    with pytest.raises(modelport.ConfigError, match="unknown option 'half'"):  # no table of guesses in the core
        resolve_options({"plain": plain}, config={"half": True})


PUBLISHER = modelport.PublisherSpec(scheme="box", display_name="Box", options=(
    modelport.OptionSpec("private", "bool", False, "private repo"), modelport.OptionSpec("retries", "int", 3, "retries")))


def test_publisher_options_take_the_shapes_export_options_take():
    from modelport.plugins.options import resolve_publisher_options

    want = {"private": True, "retries": 5}
    assert resolve_publisher_options(PUBLISHER, {"private": True, "retries": 5}) == want
    assert resolve_publisher_options(PUBLISHER, {"box": {"private": "yes", "retries": "5"}}) == want
    assert resolve_publisher_options(PUBLISHER, ["private=true", "box.retries=5"]) == want
    assert resolve_publisher_options(PUBLISHER) == {"private": False, "retries": 3}
    with pytest.raises(modelport.ConfigError, match=r"unknown option 'privat' for box://; did you mean: private\?"):
        resolve_publisher_options(PUBLISHER, {"privat": True})
    with pytest.raises(modelport.ConfigError, match="'hf' is not the target's scheme 'box'"):
        resolve_publisher_options(PUBLISHER, ["hf.private=true"])


def test_publish_takes_a_list_of_options_like_export(tmp_path):
    models = load_module(EXAMPLES)
    modelport.export(models.small_cnn(), "pt2", modelport.vision(3, 16, 16), output_dir=tmp_path / "e", validate=False)
    result = modelport.publish(tmp_path / "e", f"file://{tmp_path / 'reg'}", options=["version=v7"])
    assert (tmp_path / "reg").is_dir() and "v7" in result.url
    with pytest.raises(modelport.ConfigError, match="did you mean: version"):
        modelport.publish(tmp_path / "e", f"file://{tmp_path / 'reg'}", options={"file": {"versoin": "v8"}})


def test_publish_and_pull_help_list_the_publishers_options():
    for command in ("publish", "pull"):
        r = run_cli(command, "--help", add_env={"COLUMNS": "200"})
        assert r.returncode == 0 and "Publisher options" in r.stdout, r.stdout
        assert "--version STR" in r.stdout and "file:// version folder name" in r.stdout


def test_formats_options_prints_plugin_text_literally(capsys, monkeypatch):
    from modelport.cli.option_help import print_format_options
    from modelport.plugins import PluginHost

    class Bracketed:
        @modelport.hookimpl
        def register_formats(self, register):
            register(modelport.FormatSpec(name="brk", display_name="[red]Bracketed[/red]", files=("b",), options=(
                modelport.OptionSpec("layout", "choice", "nchw", "memory layout [nchw] or [nhwc]",
                                     choices=("nchw", "nhwc")),)))

    monkeypatch.setenv("COLUMNS", "200")
    host = PluginHost(load_entry_points=False)
    host.pm.register(Bracketed(), name="brk")
    print_format_options(host, "brk", as_json=False)
    out = capsys.readouterr().out
    assert "[red]Bracketed[/red]" in out and "memory layout [nchw] or [nhwc]" in out, out
    assert "choice: nchw | nhwc" in out and '"nchw"' in out

"""The plugin manager: catalog, status, broken and duplicate plugins, env switches, hook contract."""

from __future__ import annotations

import json
import os

import modelport
import pytest
from conftest import CNN, make_plugin_dist
from modelport.plugins import PluginHost
from modelport.plugins.hookspecs import NAME


def test_one_name_everywhere():
    assert NAME == "modelport"
    assert modelport.hookimpl.project_name == "modelport"
    host = PluginHost(load_entry_points=False)
    assert host.pm.project_name == "modelport"


def test_core_alone_lists_builtins_available_and_catalog_not_installed(cli):
    r = cli("formats", "--json", env={"MODELPORT_LOAD_PLUGINS": ""})
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    by_name = {f["name"]: f for f in data["formats"]}
    assert by_name["pt2"]["status"] == "available" and by_name["pt2"]["can_validate"]
    for name, dist in [("onnx", "modelport-export-onnx"), ("torchscript", "modelport-export-torchscript"),
                       ("openvino", "modelport-export-openvino"), ("tensorrt", "modelport-export-tensorrt"),
                       ("coreml", "modelport-export-coreml"), ("tflite", "modelport-export-tflite"),
                       ("executorch", "modelport-export-executorch"), ("pytorch", "modelport-export-pytorch")]:
        assert by_name[name]["status"] in ("not installed", "unavailable"), name
        if by_name[name]["status"] == "not installed":
            assert by_name[name]["fix"] == modelport.install_hint(dist)
    pubs = {p["name"]: p for p in data["publishers"]}
    assert pubs["file"]["status"] == "available"
    assert pubs["hf"]["status"] in ("not installed", "unavailable")
    assert pubs["github"]["status"] in ("not installed", "unavailable")


def test_formats_table_shows_install_command(cli):
    r = cli("formats", env={"MODELPORT_LOAD_PLUGINS": "", "COLUMNS": "250"})
    assert r.returncode == 0
    assert "pt2" in r.stdout and "available" in r.stdout
    rows = json.loads(cli("formats", "--json", env={"MODELPORT_LOAD_PLUGINS": ""}).stdout)["formats"]
    missing = [f for f in rows if f["status"] == "not installed"]
    for f in missing:  # the fix shows whole, brackets and all, as a note under the table
        assert f["fix"] in r.stdout, (f["fix"], r.stdout)
    if not missing:  # everything is installed here: disabled plugins say why
        assert "disabled by MODELPORT_LOAD_PLUGINS" in r.stdout


def test_tables_render_without_json(cli):
    """Every table command prints its table (a rich markup error once crashed `plugins` in every install)."""
    for args in (["formats"], ["plugins"]):
        r = cli(*args)
        assert r.returncode == 0, (args, r.stderr)
        assert r.stderr == "", (args, r.stderr)
    r = cli("plugins")
    assert "pt2" in r.stdout and "builtin" in r.stdout and "file_publisher" in r.stdout


def test_install_hint_names_the_checkout_folder_or_the_distribution(tmp_path, monkeypatch):
    """From a source checkout the hint is the plugin's folder with the repo's constraints (relative when the
    user is inside the checkout); from a package index it is the distribution's name."""
    from modelport.plugins import catalog

    root = tmp_path / "repo"
    for folder in ("core", "plugins/export-onnx", "plugins/export-tensorrt"):
        (root / folder).mkdir(parents=True)
        (root / folder / "pyproject.toml").write_text("[project]\n")
    (root / "constraints.txt").write_text("torch==2.13.0\n")
    assert catalog._checkout_of(root / "core") == root
    monkeypatch.setattr(catalog, "source_checkout", lambda: root)
    monkeypatch.chdir(root)
    assert modelport.install_hint("modelport-export-onnx") == "pip install -c ./constraints.txt ./plugins/export-onnx"
    assert modelport.install_hint("modelport-export-tensorrt", extra="runtime", index_url="https://pypi.nvidia.com") == (
        "pip install -c ./constraints.txt './plugins/export-tensorrt[runtime]' --extra-index-url https://pypi.nvidia.com")
    assert modelport.install_hint("modelport", extra="plot") == "pip install -c ./constraints.txt './core[plot]'"
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert modelport.install_hint("modelport-export-onnx") == (
        f"pip install -c {root / 'constraints.txt'} {root / 'plugins' / 'export-onnx'}")
    # a distribution the checkout does not hold, and no checkout at all: the name on an index
    assert modelport.install_hint("modelport-export-tflite") == "pip install modelport-export-tflite"
    monkeypatch.setattr(catalog, "source_checkout", lambda: None)
    assert modelport.install_hint("modelport-export-onnx") == "pip install modelport-export-onnx"
    assert modelport.install_hint("modelport-export-tensorrt", extra="runtime") == "pip install 'modelport-export-tensorrt[runtime]'"


def test_this_install_is_recognised_as_a_source_checkout():
    """The test environments install core/ from this repository (editable or not): hints point at its folders."""
    from conftest import ROOT
    from modelport.plugins import catalog

    catalog.source_checkout.cache_clear()
    assert catalog.source_checkout() == ROOT


def test_formats_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from modelport.cli import main\n"
        "try:\n    main(['formats', '--json'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch','numpy','onnx','onnxruntime','openvino','tensorflow','coremltools','executorch') if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY=" in r.stderr
    assert r.stderr.split("HEAVY=")[1].strip() == "", r.stderr


BROKEN = "raise RuntimeError('boom at import')\n"
NO_SPEC = "import modelport\n\n@modelport.hookimpl\ndef not_a_real_hook():\n    return 1\n"
DUPLICATE = (
    "import modelport\n\n@modelport.hookimpl\ndef register_formats(register):\n"
    "    register(modelport.FormatSpec(name='pt2', display_name='fake pt2', files=('x',)))\n\n"
    "@modelport.hookimpl\ndef export(request):\n    raise RuntimeError('the conflicting plugin answered')\n"
)


def test_broken_plugin_is_listed_and_everything_still_works(tmp_path, cli):
    site = make_plugin_dist(tmp_path / "site", "modelport-export-broken", "mp_broken", BROKEN, "broken", "9.9")
    env = {"PYTHONPATH": str(site) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = cli("plugins", "--json", env=env)
    assert r.returncode == 0, r.stderr
    info = {p["name"]: p for p in json.loads(r.stdout)}
    assert info["broken"]["status"] == "broken"
    assert "boom at import" in info["broken"]["error"]
    assert info["broken"]["version"] == "9.9"
    r = cli("formats", "--json", env=env)
    assert r.returncode == 0
    data = json.loads(r.stdout)
    assert any(b["name"] == "broken" and b["status"] == "broken" for b in data["broken_plugins"])
    assert {f["name"]: f for f in data["formats"]}["pt2"]["status"] == "available"
    r = cli("export", "x.py:f", "-f", "nope", env=env)
    assert r.returncode == 3 and "unknown format" in r.stderr


def test_plugin_with_hook_that_has_no_spec_is_reported(tmp_path, cli):
    site = make_plugin_dist(tmp_path / "site", "modelport-nospec", "mp_nospec", NO_SPEC, "nospec")
    env = {"PYTHONPATH": str(site)}
    r = cli("plugins", "--json", env=env)
    assert r.returncode == 0, r.stderr
    info = {p["name"]: p for p in json.loads(r.stdout)}
    assert info["nospec"]["status"] == "broken"
    assert "not_a_real_hook" in info["nospec"]["error"]


def test_a_second_plugin_claiming_a_format_is_shown_conflicting_and_the_first_keeps_it(tmp_path, cli):
    site = make_plugin_dist(tmp_path / "site", "modelport-dupe", "mp_dupe", DUPLICATE, "dupe", "1.2")
    env = {"PYTHONPATH": str(site)}
    r = cli("formats", "--json", env=env)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    pt2 = {f["name"]: f for f in data["formats"]}["pt2"]
    assert pt2["status"] == "available" and pt2["plugin"] == "modelport"  # the first (built-in) one wins
    dupe = {b["name"]: b for b in data["broken_plugins"]}["dupe"]
    assert dupe["status"] == "conflict"
    assert "format 'pt2' is already registered by modelport 0.1.0" in dupe["reason"]
    plugins = {p["name"]: p for p in json.loads(cli("plugins", "--json", env=env).stdout)}
    assert plugins["dupe"]["status"] == "conflict" and "MODELPORT_DISABLE_PLUGINS" in plugins["dupe"]["error"]
    # every command keeps working, and the loser answers no hook (its export would raise)
    out = tmp_path / "o"
    r = cli("export", CNN, "--vision", "3x16x16", "-f", "pt2", "--no-validate", "--output-dir", str(out), "-q", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "metadata.json").read_text())["plugin"]["name"] == "modelport"
    r = cli("formats", env={**env, "COLUMNS": "250"})
    assert r.returncode == 0 and "conflict" in r.stdout, r.stderr


def test_a_plugin_whose_register_formats_raises_is_broken_and_answers_no_hook(tmp_path, cli):
    src = (
        "import modelport\n\n@modelport.hookimpl\ndef register_formats(register):\n"
        "    register(modelport.FormatSpec(name='half', display_name='Half', files=('m',)))\n"
        "    raise RuntimeError('registry exploded')\n\n"
        "@modelport.hookimpl\ndef inspect_artifact(path, options):\n    return {'answered_by': 'halfreg'}\n"
    )
    site = make_plugin_dist(tmp_path / "site", "modelport-halfreg", "mp_halfreg", src, "halfreg", "0.3")
    env = {"PYTHONPATH": str(site)}
    plugins = {p["name"]: p for p in json.loads(cli("plugins", "--json", env=env).stdout)}
    assert plugins["halfreg"]["status"] == "broken"
    assert "register_formats raised RuntimeError: registry exploded" in plugins["halfreg"]["error"]
    data = json.loads(cli("formats", "--json", env=env).stdout)
    assert "half" not in {f["name"] for f in data["formats"]}  # what it registered before raising is gone too
    assert {b["name"]: b for b in data["broken_plugins"]}["halfreg"]["status"] == "broken"
    artifact = tmp_path / "thing.unknownext"
    artifact.write_bytes(b"x")
    r = cli("inspect", str(artifact), "--json", env=env)
    assert r.returncode == 3 and "answered_by" not in r.stdout, (r.stdout, r.stderr)
    assert "no installed plugin can inspect" in r.stderr


def test_allow_list_switch(tmp_path, cli):
    site = make_plugin_dist(tmp_path / "site", "modelport-export-broken", "mp_broken", BROKEN, "broken")
    r = cli("plugins", "--json", env={"PYTHONPATH": str(site), "MODELPORT_LOAD_PLUGINS": ""})
    info = {p["name"]: p for p in json.loads(r.stdout)}
    assert info["broken"]["status"] == "disabled"


def test_every_hookspec_has_a_docstring_and_is_callable_through_the_manager(tmp_path):
    from modelport.plugins import hookspecs

    specs = [n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "modelport_spec")]
    assert set(specs) == {"register_formats", "register_publishers", "export", "load_runner", "validate",
                          "describe_metadata", "inspect_artifact", "publish", "pull", "list_models",
                          "register_commands", "load_intermediates", "register_sources"}
    for name in specs:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name
    host = PluginHost(load_entry_points=False)
    assert "pt2" in host.formats and "file" in host.publishers and "factory" in host.sources
    assert host.pm.hook.inspect_artifact(path=tmp_path / "x.unknown", options={}) is None
    assert host.pm.hook.describe_metadata(
        artifact=modelport.Artifact(format="nope", path=tmp_path / "x"), request=None) == []
    assert host.pm.hook.register_commands(cli=None) == []  # no built-in plugin adds commands
    assert host.pm.hook.load_intermediates(artifact=modelport.Artifact(format="nope", path=tmp_path / "x"),
                                           options={}) is None


def test_require_format_errors_are_config_errors():
    host = PluginHost(load_entry_points=False)
    with pytest.raises(modelport.ConfigError, match=r"not installed: pip install .*(modelport-export-onnx|plugins/export-onnx)"):
        host.require_format("onnx")
    with pytest.raises(modelport.ConfigError, match="unknown format 'zzz'"):
        host.require_format("zzz")


def test_unavailable_format_reports_reason_and_exit_3(tmp_path, cli):
    src = (
        "import modelport\n\n@modelport.hookimpl\ndef register_formats(register):\n"
        "    register(modelport.FormatSpec(name='gpuonly', display_name='GPU only', files=('m',),\n"
        "        availability=lambda: modelport.Availability.unavailable('no CUDA device')))\n"
    )
    site = make_plugin_dist(tmp_path / "site", "modelport-gpuonly", "mp_gpu", src, "gpuonly")
    env = {"PYTHONPATH": str(site)}
    data = json.loads(cli("formats", "--json", env=env).stdout)
    row = {f["name"]: f for f in data["formats"]}["gpuonly"]
    assert row["status"] == "unavailable" and row["reason"] == "no CUDA device"
    r = cli("export", "m.py:f", "-f", "gpuonly", "--vision", "3x8x8", env=env)
    assert r.returncode == 3
    assert r.stderr.strip() == "error: format 'gpuonly' is unavailable: no CUDA device"


SHADOWED = '''
import modelport

@modelport.hookimpl
def register_formats(register):
    register(modelport.FormatSpec(name="shadowfmt", display_name="Shadowed", files=("m",)))

@modelport.hookimpl
def export(request):
    if request.format != "shadowfmt":
        return None
    from mp_shadow.export import write  # sets mp_shadow.export to the submodule, over this hook
    return write(request)
'''


def test_a_hook_shadowed_by_a_submodule_of_its_name_stays_registered_in_a_second_host(tmp_path, monkeypatch):
    import importlib
    import sys

    from modelport.plugins.types import ExportRequest

    site = make_plugin_dist(tmp_path / "site", "modelport-shadow", "mp_shadow_flat", "", "shadow")
    pkg = site / "mp_shadow"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(SHADOWED)
    (pkg / "export.py").write_text("def write(request):\n    return 'written'\n")
    ep = next(site.glob("*.dist-info")) / "entry_points.txt"
    ep.write_text("[modelport]\nshadow = mp_shadow\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("MODELPORT_LOAD_PLUGINS", "shadow")
    importlib.invalidate_caches()
    try:
        request = ExportRequest(format="shadowfmt", model=None, inputs=modelport.vision(3, 4, 4), example_inputs=(),
                                options={}, workdir=tmp_path, output_names=["y"])
        assert PluginHost().pm.hook.export(request=request) == "written"
        assert not callable(sys.modules["mp_shadow"].export)  # the package attribute is the submodule now
        again = PluginHost()  # what get_plugin_manager(reload=True) or an in-process CLI run builds
        assert {p.name: p.status for p in again.plugins}["shadow"] == "loaded"
        assert again.pm.hook.export(request=request) == "written"
    finally:
        for name in [n for n in sys.modules if n.startswith("mp_shadow")]:
            del sys.modules[name]

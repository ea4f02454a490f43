"""Format objects (``FormatSpec(implementation=...)``): the core calls them for their format only, hook wrappers
still wrap them, keyword-bound models reach them unwrapped, and the plugin-isolation rules still hold."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from conftest import make_plugin_dist
from modelport.plugins import PluginHost
from modelport.testing import ConformanceError, check_format_object, check_plugin

OBJECT_PLUGIN = '''
import numpy_free_marker  # noqa: F401  (a light module: importing the plugin must not import the object's module)
from modelport import FormatSpec, hookimpl


@hookimpl
def register_formats(register):
    register(FormatSpec(name={fmt!r}, display_name="Pickle-free weights", files=("model.npz",),
                        implementation={impl!r}, suffixes=(".npz",)))
'''

OBJECT_MODULE = '''
import numpy as np
from modelport import Artifact

SEEN = []


class NpzFormat:
    """Stores the user's module's weights and calls it (not a copy) by keyword the way the binding says."""

    def export(self, request):
        SEEN.append((type(request.model).__name__, request.binding is not None,
                     type(request.positional_model()).__name__))
        self.model = request.model
        self.call = request.binding
        path = request.workdir / "model.npz"
        np.savez(path, **{{k: v.numpy() for k, v in request.model.state_dict().items()}})
        return Artifact(format={fmt!r}, path=path, files=["model.npz"], precision="fp32")

    def load_runner(self, artifact, options):
        import torch

        def run(inputs):
            tensors = {{k: torch.from_numpy(v) for k, v in inputs.items()}}
            args = [tensors[n] for n in (self.call.positional if self.call else tensors)]
            kwargs = {{n: tensors[n] for n in (self.call.keyword if self.call else ())}}
            with torch.no_grad():
                out = self.model(*args, **kwargs)
            return [t.numpy() for t in (out if isinstance(out, (list, tuple)) else [out])]
        run.runtime = "torch (the exported module)"
        return run

    def describe(self, artifact, request):
        return {{"extra_metadata": {{"npz": {{"arrays": len(np.load(artifact.path).files)}}}}{hijack}}}

    def inspect(self, path, options):
        return {{"format": {fmt!r}, "arrays": sorted(np.load(path).files)}}
'''


def _host(tmp_path, monkeypatch, name, *, impl=None, module=OBJECT_MODULE, extra=()):
    fmt = f"obj-{name}"
    site = make_plugin_dist(tmp_path / "site", f"modelport-export-obj{name}", f"objplug_{name}",
                            OBJECT_PLUGIN.format(fmt=fmt, impl=impl or f"objimpl_{name}:NpzFormat"), f"obj{name}")
    (site / f"objimpl_{name}.py").write_text(module.format(fmt=fmt, hijack="") if "{hijack}" in module else module.format(fmt=fmt))
    (site / "numpy_free_marker.py").write_text("")
    for dist, mod, src in extra:
        make_plugin_dist(site, dist, mod, textwrap.dedent(src), mod)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("MODELPORT_LOAD_PLUGINS", raising=False)
    return PluginHost(), fmt


def test_format_object_exports_validates_describes_and_inspects(tmp_path, monkeypatch):
    from modelport.engine.pipeline import call_hook

    host, fmt = _host(tmp_path, monkeypatch, "good")
    assert "objimpl_good" not in sys.modules  # registering (what `modelport formats` does) did not import it
    report = check_plugin("objplug_good", fmt, models=("mlp", "decoder"), output_dir=tmp_path / "out", host=host,
                          cli=False)
    assert report.passed, report.summary()
    seen = sys.modules["objimpl_good"].SEEN
    # the keyword-bound decoder reaches the object as the user's own module, the wrapper only on request
    assert ("TinyDecoder", True, "ModelportBound") in seen and ("TinyMLP", False, "TinyMLP") in seen, seen
    meta = json.loads((tmp_path / "out" / "mlp" / "metadata.json").read_text())
    assert meta["extra_metadata"]["npz"] == {"arrays": 6}
    assert meta["export_format"] == fmt
    info = call_hook(host, fmt, "inspect_artifact", path=tmp_path / "out" / "mlp" / "model.npz", options={})
    assert info["format"] == fmt and "fc1.weight" in info["arrays"], info


def test_a_format_object_cannot_overwrite_core_owned_metadata(tmp_path, monkeypatch):
    module = OBJECT_MODULE.replace("{hijack}", ', "export_format": "hijacked"')
    host, fmt = _host(tmp_path, monkeypatch, "hijack", module=module)
    report = check_plugin("objplug_hijack", fmt, models=("mlp",), output_dir=tmp_path / "out", host=host, cli=False,
                          raise_on_failure=False)
    assert "describe_metadata may not set export_format" in report.summary()
    assert not (tmp_path / "out" / "mlp" / "metadata.json").exists()


def test_kit_catches_an_implementation_that_does_not_load_or_lacks_methods(tmp_path, monkeypatch):
    host, _ = _host(tmp_path, monkeypatch, "missing", impl="objimpl_missing:NoSuchClass")
    with pytest.raises(ConformanceError, match="does not load: AttributeError"):
        check_format_object("objplug_missing", host=host)
    host, _ = _host(tmp_path, monkeypatch, "half", module="class NpzFormat:\n    def export(self, request): ...\n")
    with pytest.raises(ConformanceError, match="has no load_runner method"):
        check_format_object("objplug_half", host=host)
    host, fmt = _host(tmp_path, monkeypatch, "fine")
    assert check_format_object("objplug_fine", host=host) == [fmt]


def test_kit_still_polices_a_leftover_hook_of_a_format_object_plugin(tmp_path, monkeypatch):
    # half-migrated: the format object is registered, but an old unguarded hook still answers for every format
    leftover = OBJECT_PLUGIN + "\n\n@hookimpl\ndef load_runner(artifact, options):\n    return lambda inputs: []\n"
    site = make_plugin_dist(tmp_path / "site", "modelport-export-objleft", "objplug_left",
                            leftover.format(fmt="obj-left", impl="objimpl_left:NpzFormat"), "objleft")
    (site / "objimpl_left.py").write_text(OBJECT_MODULE.format(fmt="obj-left", hijack=""))
    (site / "numpy_free_marker.py").write_text("")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("MODELPORT_LOAD_PLUGINS", raising=False)
    with pytest.raises(ConformanceError, match="load_runner returned function for another plugin's"):
        check_format_object("objplug_left", host=PluginHost())


def test_an_implementation_that_fails_to_import_is_one_line_naming_the_plugin(tmp_path, monkeypatch):
    from modelport.engine.pipeline import call_hook
    from modelport.errors import ExportFailed
    from modelport.plugins.types import Artifact

    host, fmt = _host(tmp_path, monkeypatch, "boom", module="raise RuntimeError('no runtime here')\n")
    art = Artifact(format=fmt, path=tmp_path / "model.npz", files=["model.npz"])
    with pytest.raises(ExportFailed, match=r"failed in modelport-export-objboom .*RuntimeError: no runtime here"):
        call_hook(host, fmt, "load_runner", artifact=art, options={})


BROKEN = '''
from modelport import hookimpl

@hookimpl
def register_formats(register):
    raise RuntimeError("half-registered")
'''

CLAIMS_SAME = '''
from modelport import FormatSpec, hookimpl

@hookimpl
def register_formats(register):
    register(FormatSpec(name="obj-first", display_name="impostor", files=("x",), implementation="nowhere:X"))

@hookimpl
def load_runner(artifact, options):
    return "impostor"
'''


def test_isolation_holds_for_format_objects(tmp_path, monkeypatch):
    host, fmt = _host(tmp_path, monkeypatch, "first", extra=[
        ("modelport-export-zbroken", "zbroken", BROKEN), ("modelport-export-zclaims", "zclaims", CLAIMS_SAME)])
    status = {p.name: p.status for p in host.plugins}
    assert status["zbroken"] == "broken" and status["zclaims"] == "conflict", status
    assert host.pm.get_plugin("zbroken") is None and host.pm.get_plugin("zclaims") is None
    spec, owner = host.formats[fmt]
    assert owner == "objfirst" and spec.implementation == "objimpl_first:NpzFormat"  # the first one wins


def test_model_card_usage_and_hub_library_come_from_the_format_spec(tmp_path, monkeypatch):
    """publish's model card knows no format itself: the snippet, its pip package and the Hub library are the spec's."""
    import modelport.plugins
    from modelport import FormatSpec, hookimpl
    from modelport.publishers.publishing import ExportBundle, front_matter, render_card

    class CardPlugin:
        @hookimpl
        def register_formats(self, register):
            register(FormatSpec(name="cardfmt", display_name="Card format", files=("model.card",),
                                usage='import cardrt\n\nmodel = cardrt.load("{path}")\noutputs = model(inputs)',
                                runtime_library="cardrt", hub_library="cardlib"))

    host = PluginHost(load_entry_points=False)
    host.pm.register(CardPlugin(), name="cardplug")
    monkeypatch.setattr(modelport.plugins.host, "_HOST", host)
    metadata = {"export_format": "cardfmt", "model_name": "m", "files": {"model.card": {}},
                "input_shape": {"x": [1, 4]}, "input_dtype": {"x": "float32"}}
    bundle = ExportBundle(export_dir=tmp_path, folder="", metadata=metadata, record={"artifact": "model.card"}, bench=None)
    card = render_card([bundle])
    assert "Run it with cardrt (`pip install cardrt`):" in card
    assert 'model = cardrt.load("model.card")' in card and 'inputs = {"x": np.random.rand(1, 4)' in card
    assert front_matter([bundle], None).startswith("---\nlibrary_name: cardlib\n")
    # a format whose spec gives no snippet (or is not installed) gets the generic line and library modelport
    pt2 = ExportBundle(export_dir=tmp_path, folder="", metadata={**metadata, "export_format": "nosuch"}, record={}, bench=None)
    assert "with the nosuch runtime" in render_card([pt2])
    assert front_matter([pt2], None).startswith("---\nlibrary_name: modelport\n")

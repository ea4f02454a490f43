"""Model sources: the register_sources hook, the built-in sources, and exporting what a source resolved."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import modelport
import numpy as np
import pytest
from conftest import CNN, ROOT, make_plugin_dist, run_cli
from modelport.errors import ConfigError, ModelLoadError, PluginContractError
from modelport.models.sources import ResolvedModel, SourceSpec, export_resolved, split_reference
from modelport.plugins import PluginHost

TOY_SOURCE = '''
import modelport

def _build(scale):
    import torch

    class Toy(torch.nn.Module):
        """forward takes keyword-style named inputs: the order of the spec is the forward's."""
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 3)
        def forward(self, features, offset):
            return {"logits": self.lin(features) * scale + offset.sum(-1, keepdim=True)}

    torch.manual_seed(0)
    return Toy().eval()

def resolve(request):
    scale = float(request.reference)
    spec = modelport.InputSpec([
        modelport.TensorSpec("features", (2, 4), "float32", dynamic={0: "batch"}),
        modelport.TensorSpec("offset", (2, 5), "float32", dynamic={0: "batch"}),
    ])
    import numpy as np
    real = {"features": np.full((2, 4), 0.5, np.float32), "offset": np.arange(10, dtype=np.float32).reshape(2, 5)}
    return modelport.ResolvedModel(
        module=_build(scale), inputs=spec, input_sets=[real], task="classification",
        class_names=["a", "b", "c"], preprocessing={"mean": [0.5], "std": [0.25]}, model_name="toy",
        source={"kind": "toy", "scale": scale},
    )

@modelport.hookimpl
def register_sources(register):
    register(modelport.SourceSpec(name="toy", display_name="Toy source", resolve=resolve,
                                  description="a scaled linear model"))
'''


class _Plugin:
    """A third-party source registered through the same hook as the built-ins."""

    def __init__(self, resolve):  # type: ignore[no-untyped-def]
        self._resolve = resolve

    @modelport.hookimpl
    def register_sources(self, register):  # type: ignore[no-untyped-def]
        register(SourceSpec(name="toy", display_name="Toy", resolve=self._resolve))


def _toy_host(resolve=None) -> PluginHost:  # type: ignore[no-untyped-def]
    host = PluginHost(load_entry_points=False)
    ns: dict = {}
    exec(TOY_SOURCE, ns)
    host.pm.register(_Plugin(resolve or ns["resolve"]), name="toy-plugin")
    return host


def test_builtin_sources_are_registered_through_the_hook() -> None:
    host = PluginHost(load_entry_points=False)
    assert list(host.sources) == ["factory", "pt2", "torchscript", "file"]
    assert all(owner == "builtin.sources" for _spec, owner in host.sources.values())


def test_factory_reference_resolves_to_the_builtin_factory_source() -> None:
    resolved = modelport.resolve(CNN, host=PluginHost(load_entry_points=False))
    assert resolved.source["source"] == "factory"
    assert resolved.source["kind"] == "factory"
    assert resolved.inputs is None  # a factory says nothing about its inputs


def test_pt2_source_knows_the_inputs_of_the_archive(tmp_path: Path) -> None:
    import torch

    class Net(torch.nn.Module):
        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return image.mean((2, 3))

    ep = torch.export.export(Net(), (torch.zeros(2, 3, 8, 8),),
                             dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},))
    path = tmp_path / "net.pt2"
    torch.export.save(ep, str(path))
    for ref in (str(path), f"pt2:{path}"):
        resolved = modelport.resolve(ref, host=PluginHost(load_entry_points=False))
        assert resolved.source["source"] == "pt2"
        assert resolved.inputs is not None
        assert resolved.inputs.names == ["image"]
        assert resolved.inputs.tensors[0].shape[1:] == (3, 8, 8)
        assert resolved.inputs.tensors[0].dynamic == {0: "batch"}


def test_a_registered_prefix_routes_to_its_source_and_a_missing_first_party_one_says_how_to_install() -> None:
    host = PluginHost(load_entry_points=False)
    assert split_reference("toy:1", {"toy": None}) == ("toy", "1")
    assert split_reference("models.py:build", {"toy": None}) == (None, "models.py:build")
    with pytest.raises(ConfigError, match=r"model source 'hf' is not installed: pip install .*source-hf"):
        modelport.resolve("hf:./bert", host=host)


def test_source_names_must_not_look_like_a_drive_letter() -> None:
    with pytest.raises(ValueError, match="two characters"):
        SourceSpec(name="c", display_name="C", resolve=lambda r: None)  # type: ignore[arg-type,return-value]


def test_source_contract_violations_are_named() -> None:
    with pytest.raises(PluginContractError, match="resolve returned dict"):
        modelport.resolve("toy:1", host=_toy_host(lambda r: {"module": None}))

    def boom(request):  # type: ignore[no-untyped-def]
        raise KeyError("weights")

    with pytest.raises(ModelLoadError, match=r"model toy:1: source 'toy' failed: KeyError"):
        modelport.resolve("toy:1", host=_toy_host(boom))


def test_export_uses_what_the_source_knows(tmp_path: Path) -> None:
    host = _toy_host()
    resolved = modelport.resolve("toy:2", host=host)
    assert resolved.source == {"kind": "toy", "scale": 2.0, "reference": "toy:2", "source": "toy"}
    result = modelport.export(resolved, "pt2", output_dir=tmp_path / "out", host=host)
    r = result["pt2"]
    assert r.status == "passed", r.error
    md = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert md["task_type"] == "classification"
    assert md["class_names"] == ["a", "b", "c"]
    assert md["preprocessing"] == {"mean": [0.5], "std": [0.25]}
    assert md["input_shape"] == {"features": ["batch", 4], "offset": ["batch", 5]}
    record = json.loads((tmp_path / "out" / "export.json").read_text())
    assert record["source"]["source"] == "toy"
    # the source's real inputs are the first reference set (and the export's example)
    with np.load(tmp_path / "out" / "reference.npz") as ref:
        np.testing.assert_array_equal(ref["0/in/offset"], np.arange(10, dtype=np.float32).reshape(2, 5))
        # the model really ran on them: logits = lin(0.5) * 2 + offset row sums
        assert ref["0/out/0"].shape == (2, 3)
        assert not np.allclose(ref["0/out/0"][0], ref["0/out/0"][1])


def test_a_string_reference_exports_through_the_api(tmp_path: Path) -> None:
    host = _toy_host()
    result = modelport.export("toy:3", ["pt2"], output_dir=tmp_path / "o", host=host)
    assert result["pt2"].status == "passed"
    assert json.loads((tmp_path / "o" / "export.json").read_text())["source"]["scale"] == 3.0


def test_components_export_into_their_own_folders(tmp_path: Path) -> None:
    ns: dict = {}
    exec(TOY_SOURCE, ns)

    def two(request):  # type: ignore[no-untyped-def]
        a, b = ns["resolve"](request), ns["resolve"](request)
        return ResolvedModel(module=a.module, components={"encoder": a, "decoder": b}, model_name="pair")

    host = _toy_host(two)
    result = export_resolved(modelport.resolve("toy:1", host=host), ["pt2"], output_dir=tmp_path / "pair", host=host)
    assert sorted(result) == ["decoder/pt2", "encoder/pt2"]
    assert result.exit_code == 0
    for comp in ("encoder", "decoder"):
        record = json.loads((tmp_path / "pair" / comp / "export.json").read_text())
        assert record["source"]["component"] == comp
        assert record["model_name"] == f"pair-{comp}"
    with pytest.raises(ConfigError, match="several components"):
        export_resolved(modelport.resolve("toy:1", host=host), ["pt2"], modelport.vision(3, 8, 8),
                        output_dir=tmp_path / "x", host=host)


def test_cli_exports_a_third_party_source_with_no_input_flags(tmp_path: Path) -> None:
    site = make_plugin_dist(tmp_path / "site", "modelport-source-toy", "modelport_source_toy", TOY_SOURCE, "toy")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    proc = run_cli("export", "toy:1.5", "-f", "pt2", "--output-dir", str(tmp_path / "out"), "--json", add_env=env)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["results"]["pt2"]["status"] == "passed"
    md = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert md["model_name"] == "toy"
    assert md["class_names"] == ["a", "b", "c"]
    # --input still wins over the source's spec
    proc = run_cli("export", "toy:1.5", "-f", "pt2", "--output-dir", str(tmp_path / "out2"),
                   "--input", "features:1x4", "--input", "offset:1x2", add_env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "out2" / "metadata.json").read_text())["input_shape"]["offset"] == [1, 2]


def test_cli_names_the_missing_source_distribution(tmp_path: Path) -> None:
    env = {**os.environ, "MODELPORT_LOAD_PLUGINS": ""}
    proc = run_cli("export", "hf:./nothing-here", "-f", "pt2", "--output-dir", str(tmp_path / "o"), add_env=env,
                   cwd=ROOT)
    assert proc.returncode == 3
    line = proc.stderr.strip()
    assert line.startswith("error: model source 'hf' is not installed: pip install ") and "source-hf" in line
    assert len(line.splitlines()) == 1

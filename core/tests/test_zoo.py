"""The zoo side over a file:// registry: list, info, load_pretrained, the sha256-keyed cache, tampering, trust."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import modelport
import numpy as np
import pytest
from conftest import CNN, run_cli
from modelport import ConfigError, ModelEntry, PublishedExport, PublishError, PublisherSpec
from modelport.commands import zoo


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file:// registry holding the CNN (pt2, dynamic batch) as cnn/v1 and cnn/v2."""
    root = tmp_path_factory.mktemp("zoo")
    export = root / "cnn"
    r = run_cli("export", CNN, "--vision", "3x32x32", "--dynamic-batch", "-f", "pt2", "--output-dir", str(export),
                "--model-name", "cnn", "-q")
    assert r.returncode == 0, r.stderr
    reg = root / "registry"
    for version in ("v1", "v2"):
        r = run_cli("publish", str(export), f"file://{reg}", "--version", version)
        assert r.returncode == 0, r.stderr
    return reg


@pytest.fixture
def reg(registry: Path, tmp_path: Path) -> Path:
    """A private copy of the registry, so a test may tamper with it."""
    copy = tmp_path / "registry"
    shutil.copytree(registry, copy)
    return copy


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("MODELPORT_CACHE", str(path))
    monkeypatch.delenv("MODELPORT_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return path


def recorded(folder: Path, i: int = 1) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Input set ``i`` and PyTorch's output for it, from the export's reference.npz."""
    with np.load(folder / "reference.npz", allow_pickle=False) as ref:
        return {"input": ref[f"{i}/in/input"]}, ref[f"{i}/out/0"]


# ----------------------------------------------------------------------------- list / info


def test_list_shows_every_version_with_formats_size_and_validation(reg: Path) -> None:
    r = run_cli("list", f"file://{reg}", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(row["name"], row["version"]) for row in rows] == [("cnn", "v1"), ("cnn", "v2")]
    md = json.loads((reg / "cnn" / "v1" / "metadata.json").read_text())
    assert rows[0]["formats"] == ["pt2"]
    assert rows[0]["size"] == sum(f["bytes"] for f in md["files"].values()) == (reg / "cnn/v1/model.pt2").stat().st_size
    assert rows[0]["exports"][0]["validation_status"] == "passed"
    assert rows[0]["ref"] == f"file://{reg}/cnn@v1"
    table = run_cli("list", f"file://{reg}")
    assert table.returncode == 0
    assert "cnn" in table.stdout and "v2" in table.stdout and "passed" in table.stdout


def test_info_shows_the_card_of_the_latest_or_named_version(reg: Path) -> None:
    r = run_cli("info", f"file://{reg}/cnn")
    assert r.returncode == 0, r.stderr
    assert "cnn v2" in r.stdout  # the latest without a version
    for text in ("Signature", "input", "batch × 3 × 32 × 32", "float32", "pt2", "passed"):
        assert text in r.stdout
    r = run_cli("info", f"file://{reg}/cnn@v1", "--json")
    assert r.returncode == 0, r.stderr
    card = json.loads(r.stdout)
    assert card["version"] == "v1" and card["exports"][0]["metadata"]["model_name"] == "cnn"


@pytest.mark.parametrize("ref", ["cnn", "file:///nowhere/at/all/cnn", "REGISTRY/cnn@v9"])
def test_info_of_something_that_is_not_there_is_one_error_line(reg: Path, ref: str) -> None:
    r = run_cli("info", ref.replace("REGISTRY", f"file://{reg}"))
    assert r.returncode in (1, 3), r.stderr
    assert [line for line in r.stderr.splitlines() if line.startswith("error:")] and "Traceback" not in r.stderr


def test_python_api_lists_and_prints(reg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entries = zoo.print_zoo_summary(f"file://{reg}")
    assert [e.version for e in entries] == ["v1", "v2"]
    assert "cnn" in capsys.readouterr().out
    assert zoo.get_model_info(f"file://{reg}/cnn@v1").exports[0].pull_target == f"file://{(reg / 'cnn' / 'v1').resolve()}"


# ----------------------------------------------------------------------------- load_pretrained and trust


def test_pt2_with_pickled_parts_is_refused_after_verification_without_trust_code(registry: Path, tmp_path: Path) -> None:
    """A publisher marks a weight ``use_pickle`` (and fixes both hash tables): the download verifies, but reading
    the archive shows what torch.export.load would unpickle, so it is refused unless trust_code."""
    import zipfile

    from modelport.folder.store import sha256_file
    from modelport.folder.trust import UntrustedCode

    export = tmp_path / "cnn"
    shutil.copytree(registry.parent / "cnn", export)
    pt2 = export / "model.pt2"
    with zipfile.ZipFile(registry.parent / "cnn" / "model.pt2") as zin, zipfile.ZipFile(pt2, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("model_weights_config.json"):
                cfg = json.loads(data)
                next(iter(cfg["config"].values()))["use_pickle"] = True
                data = json.dumps(cfg).encode()
            zout.writestr(info, data)
    for name in ("export.json", "metadata.json"):
        data = json.loads((export / name).read_text())
        data["files"]["model.pt2"] = {"bytes": pt2.stat().st_size, "sha256": sha256_file(pt2)}
        (export / name).write_text(json.dumps(data))
    r = run_cli("publish", str(export), f"file://{tmp_path / 'reg'}", "--version", "v1")
    assert r.returncode == 0, r.stderr
    with pytest.raises(UntrustedCode, match=r"cnn@v1: refusing to load the pt2 export: .*pickled weight .*trust_code=True"):
        zoo.load_pretrained(f"file://{tmp_path / 'reg'}/cnn@v1")


def test_plain_pt2_loads_without_trust_code_and_matches_pytorch(reg: Path, cache: Path) -> None:
    """A plain torch.export.save archive holds no pickled or native part (trust.pt2_code_parts): no opt-in needed."""
    ref = f"file://{reg}/cnn@v1"
    model = zoo.load_pretrained(ref)
    assert model.format == "pt2" and model.downloaded
    inputs, expected = recorded(reg / "cnn" / "v1")
    got = model(inputs)
    np.testing.assert_allclose(got[0], expected, rtol=1e-4, atol=1e-5)
    assert list(model.predict(input=inputs["input"])) == ["output"]
    with pytest.raises(ConfigError, match="input must be float32"):
        model(input=inputs["input"].astype(np.float64))
    with pytest.raises(ConfigError, match="missing input"):
        model({"image": inputs["input"]})


def test_second_load_is_a_cache_hit_and_offline_loads_from_the_cache(reg: Path, cache: Path, tmp_path: Path) -> None:
    ref = f"file://{reg}/cnn@v2"
    first = zoo.load_pretrained(ref, trust_code=True)
    assert first.path.parent == cache / "exports" and first.path.name == zoo._sha256(reg / "cnn" / "v2" / "metadata.json")
    model_file = first.path / "model.pt2"
    stamp = model_file.stat().st_mtime_ns
    second = zoo.load_pretrained(ref, trust_code=True)
    assert not second.downloaded and second.path == first.path and model_file.stat().st_mtime_ns == stamp

    shutil.move(reg, tmp_path / "gone")  # the registry is unreachable now
    offline = zoo.load_pretrained(ref, trust_code=True)
    assert not offline.downloaded
    inputs, expected = recorded(tmp_path / "gone" / "cnn" / "v2")
    np.testing.assert_allclose(offline(inputs)[0], expected, rtol=1e-4, atol=1e-5)
    assert zoo.load_pretrained(ref, trust_code=True, offline=True).path == first.path
    with pytest.raises(ConfigError, match="offline and not in the cache"):
        zoo.load_pretrained(f"file://{reg}/cnn@v1", trust_code=True, offline=True)


def test_tampered_registry_file_is_refused_and_nothing_is_cached(reg: Path, cache: Path) -> None:
    model = reg / "cnn" / "v1" / "model.pt2"
    data = bytearray(model.read_bytes())
    data[-100] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(PublishError, match=r"sha256 does not match.*model\.pt2"):
        zoo.load_pretrained(f"file://{reg}/cnn@v1", trust_code=True)
    assert [p.name for p in (cache / "exports").iterdir()] == []


def test_a_cached_file_changed_on_disk_is_fetched_again_or_refused_offline(reg: Path, cache: Path) -> None:
    ref = f"file://{reg}/cnn@v1"
    path = zoo.load_pretrained(ref, trust_code=True).path
    (path / "model.pt2").write_bytes(b"not the model")
    again = zoo.load_pretrained(ref, trust_code=True)
    assert again.downloaded and (path / "model.pt2").stat().st_size > 1000
    (path / "model.pt2").write_bytes(b"not the model")
    with pytest.raises(PublishError, match="does not verify"):
        zoo.load_pretrained(ref, trust_code=True, offline=True)


def test_download_model_copies_a_verified_export(reg: Path, tmp_path: Path) -> None:
    dest = zoo.download_model(f"file://{reg}/cnn", tmp_path / "here")
    assert sorted(p.name for p in dest.iterdir()) == ["export.json", "metadata.json", "model.pt2", "reference.npz"]
    assert (dest / "model.pt2").read_bytes() == (reg / "cnn" / "v2" / "model.pt2").read_bytes()
    with pytest.raises(ConfigError, match="not empty"):
        zoo.download_model(f"file://{reg}/cnn", dest)


# ----------------------------------------------------------------------------- the hook, for third-party registries


class MemoryRegistry:
    """A third-party publisher that lists models through the hook, as a plugin would."""

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.calls: list[dict[str, object]] = []

    @modelport.hookimpl
    def register_publishers(self, register: object) -> None:
        register(PublisherSpec(scheme="memo", display_name="Memory", can_list=True))  # type: ignore[operator]

    @modelport.hookimpl
    def list_models(self, target: modelport.Target, options: dict[str, object]) -> object:
        if target.scheme != "memo":
            return None
        self.calls.append({"location": target.location, **options})
        return self.answer


def host_with(plugin: object) -> object:
    from modelport.plugins import PluginHost

    host = PluginHost(load_entry_points=False)
    host.pm.register(plugin, name="memo")
    return host


def test_a_third_party_registry_lists_through_the_hook() -> None:
    md = {"export_format": "onnx", "model_name": "m", "files": {"model.onnx": {"bytes": 10, "sha256": "0" * 64}},
          "validation": {"status": "passed"}}
    entries = [ModelEntry("m", v, "memo://shelf", [PublishedExport("onnx", "", f"memo://shelf/m/{v}", md, "a" * 64)],
                          published_at=f"2026-01-0{i + 1}T00:00:00Z") for i, v in enumerate(("1.2", "1.10"))]
    plugin = MemoryRegistry(entries)
    host = host_with(plugin)
    listed = zoo.list_models("memo://shelf", host=host)  # type: ignore[arg-type]
    assert [e.version for e in listed] == ["1.2", "1.10"]
    assert listed[0].size == 10 and listed[0].ref == "memo://shelf/m@1.2"
    info = zoo.get_model_info("memo://shelf/m", host=host)  # type: ignore[arg-type]
    assert info.version == "1.10"
    assert plugin.calls[-1] == {"location": "shelf", "name": "m", "version": None}


def test_a_lister_that_breaks_the_contract_is_named() -> None:
    host = host_with(MemoryRegistry({"not": "a list"}))
    with pytest.raises(modelport.PluginContractError, match="list_models must return a list"):
        zoo.list_models("memo://shelf", host=host)  # type: ignore[arg-type]


def test_parse_ref() -> None:
    target, name, version = zoo.parse_ref("github://o/r/cnn@v1.0")
    assert (target.raw, name, version) == ("github://o/r", "cnn", "v1.0")
    assert zoo.parse_ref("hf://alice/cnn")[0].raw == "hf://alice"
    for bad in ("hf://alice", "hf://alice/cnn@", "nothing"):
        with pytest.raises(ConfigError):
            zoo.parse_ref(bad)


def test_cache_location_follows_modelport_cache_then_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODELPORT_CACHE", str(tmp_path / "a"))
    assert zoo.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("MODELPORT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert zoo.cache_dir() == tmp_path / "xdg" / "modelport"

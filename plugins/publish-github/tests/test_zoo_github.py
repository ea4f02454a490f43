"""The zoo side against the fake GitHub: list a repository's releases, read a card, load a verified model.

Listing downloads only the small metadata assets; loading downloads one export zip, once (then the cache).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import modelport
import numpy as np
import pytest
from conftest import SENTINEL
from fake_github import FakeGitHub
from modelport import PublishError
from modelport.commands import zoo
from modelport.testing import run_cli
from modelport.testing.http import ExportPair

REPO = "alice/models"


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process as the user: GITHUB_TOKEN set, a fresh modelport cache; the cache folder."""
    monkeypatch.setenv("GITHUB_TOKEN", SENTINEL)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    monkeypatch.delenv("GITHUB_API_URL", raising=False)
    monkeypatch.delenv("MODELPORT_OFFLINE", raising=False)
    monkeypatch.setenv("MODELPORT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def released(exports: ExportPair, gh: FakeGitHub, user: Path) -> FakeGitHub:
    """Release v1 holds both exports of the CNN, release v2 the strict one alone."""
    modelport.publish([exports.dynamic, exports.strict], f"github://{REPO}@v1", options={"api_url": gh.url})
    modelport.publish(exports.strict, f"github://{REPO}@v2", options={"api_url": gh.url})
    return gh


def zip_downloads(gh: FakeGitHub) -> int:
    return len([r for r in gh.requests if r.server == "storage" and r.method == "GET" and r.fault is None])


def test_list_and_info_read_only_the_metadata_assets(released: FakeGitHub, env: dict[str, str],
                                                     exports: ExportPair) -> None:
    before = zip_downloads(released)
    r = run_cli("list", f"github://{REPO}", "--api-url", released.url, "--json", env=env)
    assert r.returncode == 0, r.stderr
    rows = {row["version"]: row for row in json.loads(r.stdout)}
    name = json.loads((exports.strict / "metadata.json").read_text())["model_name"]
    assert sorted(rows) == ["v1", "v2"] and {row["name"] for row in rows.values()} == {name}
    assert [(e["folder"], e["pull_options"]) for e in rows["v1"]["exports"]] == [
        ("pt2-dynamic", {"folder": "pt2-dynamic"}), ("pt2-strict", {"folder": "pt2-strict"})]
    assert rows["v2"]["exports"][0]["pull_target"] == f"github://{REPO}@v2"
    assert rows["v2"]["exports"][0]["metadata"] == json.loads((exports.strict / "metadata.json").read_text())
    assert rows["v1"]["url"].endswith("/releases/tag/v1")
    assert zip_downloads(released) - before == 3, "three metadata assets, no zip"
    assert not [q for q in released.requests if q.server == "storage" and q.path.endswith(".zip")]

    info = run_cli("info", f"github://{REPO}/{name}", "--api-url", released.url, env=env)
    assert info.returncode == 0, info.stderr
    assert f"{name} v2" in info.stdout and "pt2-strict" not in info.stdout.split("Formats")[0]
    pinned = run_cli("info", f"github://{REPO}/{name}@v1", "--api-url", released.url, "--json", env=env)
    assert [e["folder"] for e in json.loads(pinned.stdout)["exports"]] == ["pt2-dynamic", "pt2-strict"]
    assert SENTINEL not in r.stdout + r.stderr + info.stdout + info.stderr


def test_load_pretrained_downloads_once_and_matches_pytorch(released: FakeGitHub, exports: ExportPair,
                                                             user: Path) -> None:
    name = json.loads((exports.strict / "metadata.json").read_text())["model_name"]
    ref = f"github://{REPO}/{name}@v1"
    model = zoo.load_pretrained(ref, "pt2", trust_code=True, options={"api_url": released.url})
    assert model.downloaded and model.path.parent == user / "exports"
    assert model.entry.exports[0].folder == "pt2-dynamic"
    with np.load(exports.dynamic / "reference.npz", allow_pickle=False) as ref_data:
        x, expected = ref_data["3/in/input"], ref_data["3/out/0"]
    np.testing.assert_allclose(model(input=x)[0], expected, rtol=1e-4, atol=1e-5)
    count = zip_downloads(released)
    again = zoo.load_pretrained(ref, "pt2", trust_code=True, options={"api_url": released.url})
    assert not again.downloaded
    assert zip_downloads(released) - count == 2, "only the two metadata assets again, not the zip"


def test_a_tampered_file_in_a_release_zip_is_refused(released: FakeGitHub, exports: ExportPair, user: Path) -> None:
    assets = released.asset_bytes(REPO, "v2")
    zname = next(n for n in assets if n.endswith(".zip"))
    src = zipfile.ZipFile(io.BytesIO(assets[zname]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("model.pt2"):
                data = data[:-100] + bytes(b ^ 0xFF for b in data[-100:])
            dst.writestr(item, data)
    released.add_release(REPO, "v3", {"metadata.json": assets["metadata.json"], zname: out.getvalue()})
    name = json.loads(assets["metadata.json"])["model_name"]
    with pytest.raises(PublishError, match=r"sha256 does not match.*model\.pt2"):
        zoo.load_pretrained(f"github://{REPO}/{name}@v3", trust_code=True, options={"api_url": released.url})
    assert not any((user / "exports").iterdir())


def test_a_checkpoint_asset_is_added_to_an_existing_release(released: FakeGitHub, exports: ExportPair,
                                                            tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load

    name = json.loads((exports.strict / "metadata.json").read_text())["model_name"]
    before = set(released.asset_bytes(REPO, "v2"))
    state = {"fc.weight": torch.randn(10, 8), "fc.bias": torch.randn(10)}
    ckpt = tmp_path / "weights.pt"
    torch.save({"model_state_dict": state, "optimizer": {"lr": 0.1}}, ckpt)
    result = modelport.publish(exports.strict, f"github://{REPO}@v2",
                               options={"api_url": released.url, "checkpoint": str(ckpt)})
    assert result.files == [f"{name}.safetensors"], "only the new asset is uploaded to the existing release"
    assets = released.asset_bytes(REPO, "v2")
    assert set(assets) - before == {f"{name}.safetensors"}
    weights = load(assets[f"{name}.safetensors"])
    assert sorted(weights) == ["fc.bias", "fc.weight"] and torch.equal(weights["fc.weight"], state["fc.weight"])
    assert "## PyTorch weights" in released.release(REPO, "v2")["body"]

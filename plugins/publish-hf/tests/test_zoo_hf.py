"""The zoo side against the fake Hub: list an owner's modelport repositories, read a card, load a verified model.

The real CLI publishes; listing and loading go through the real huggingface_hub client. Assertions are on what a
user gets and on the requests the Hub received (a cache hit downloads no model file again).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import SENTINEL
from fake_hub import Blob, FakeHub
from modelport import PublishError
from modelport.commands import zoo
from modelport.testing import run_cli
from modelport.testing.http import ExportPair

REPO = "alice/cnn"


@pytest.fixture
def published(exports: ExportPair, hub: FakeHub, env: dict[str, str]) -> FakeHub:
    """alice/cnn holds both exports (one commit, with the card); alice/notes and bob/cnn are other repositories."""
    r = run_cli("publish", str(exports.dynamic), str(exports.strict), f"hf://{REPO}", "--endpoint", hub.url, env=env)
    assert r.returncode == 0, r.stderr
    hub.seed("alice/notes", {"README.md": b"---\ntags:\n- notes\n---\n# not a model\n"})
    hub.seed("bob/cnn", {"README.md": b"---\ntags:\n- modelport\n---\n# bob's\n"})
    return hub


@pytest.fixture
def user(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process as the user: HF_TOKEN set, a fresh modelport cache."""
    for key in ("HF_TOKEN", "HF_HOME", "HF_HUB_DISABLE_XET", "NO_PROXY", "no_proxy"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("MODELPORT_OFFLINE", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("MODELPORT_CACHE", str(cache))
    return cache


def model_downloads(hub: FakeHub) -> list[str]:
    return [r.path for r in hub.calls("GET", r"/resolve/[^/]+/.*model\.pt2$")]


def test_list_shows_the_owners_modelport_repositories(published: FakeHub, env: dict[str, str],
                                                      exports: ExportPair) -> None:
    r = run_cli("list", "hf://alice", "--endpoint", published.url, "--json", env=env)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(row["name"], row["version"]) for row in rows] == [("cnn", "main")]
    row = rows[0]
    assert row["ref"] == "hf://alice/cnn@main" and row["formats"] == ["pt2", "pt2"]
    assert [e["folder"] for e in row["exports"]] == ["pt2-dynamic", "pt2-strict"]
    assert row["exports"][0]["pull_target"] == "hf://alice/cnn/pt2-dynamic"
    local = json.loads((exports.dynamic / "metadata.json").read_text())
    assert row["exports"][0]["metadata"] == local
    assert row["revision"] == published.repos[REPO].heads["main"]
    query = published.calls("GET", r"^/api/models$")[0].query
    assert query["author"] == ["alice"] and query["filter"] == ["modelport"]
    assert SENTINEL not in r.stdout + r.stderr

    table = run_cli("list", "hf://alice", "--endpoint", published.url, env=env)
    assert table.returncode == 0 and "cnn" in table.stdout and "2 passed" in table.stdout


def test_info_prints_the_card(published: FakeHub, env: dict[str, str]) -> None:
    r = run_cli("info", f"hf://{REPO}", "--endpoint", published.url, env=env)
    assert r.returncode == 0, r.stderr
    for text in ("cnn main", "Signature", "pt2-dynamic", "pt2-strict", "passed", f"{published.url}/{REPO}"):
        assert text in r.stdout
    r = run_cli("info", "hf://alice/nothing", "--endpoint", published.url, env=env)
    assert r.returncode == 1 and len(r.error_lines) == 1 and "no such repository" in r.error_lines[0]


def test_load_pretrained_verifies_caches_and_works_offline(published: FakeHub, user: Path, exports: ExportPair) -> None:
    opts = {"endpoint": published.url}
    model = zoo.load_pretrained(f"hf://{REPO}", options=opts)  # a plain .pt2 (no pickled part) needs no trust_code
    assert model.downloaded and model.path.parent == user / "exports"
    assert len(model_downloads(published)) == 1
    with np.load(exports.dynamic / "reference.npz", allow_pickle=False) as ref:
        x, expected = ref["2/in/input"], ref["2/out/0"]
    np.testing.assert_allclose(model(input=x)[0], expected, rtol=1e-4, atol=1e-5)

    again = zoo.load_pretrained(f"hf://{REPO}", trust_code=True, options=opts)
    assert not again.downloaded and len(model_downloads(published)) == 1, "a cache hit downloads no model file"

    published.stop()
    offline = zoo.load_pretrained(f"hf://{REPO}", trust_code=True, options={"endpoint": published.url, "retries": 0})
    assert not offline.downloaded
    np.testing.assert_allclose(offline(input=x)[0], expected, rtol=1e-4, atol=1e-5)


def test_a_model_file_changed_on_the_hub_is_refused(published: FakeHub, user: Path) -> None:
    branch = published.repos[REPO].branches["main"]
    path = next(p for p in branch if re.fullmatch(r"pt2-dynamic/model\.pt2", p))
    data = bytearray(branch[path].data)
    data[-100] ^= 0xFF
    branch[path] = Blob(bytes(data), True)
    with pytest.raises(PublishError, match=r"sha256 does not match.*model\.pt2"):
        zoo.load_pretrained(f"hf://{REPO}", "pt2", trust_code=True, options={"endpoint": published.url})
    assert not any((user / "exports").iterdir())


# ----------------------------------------------------------------------------- weights beside the exports, collections


def test_checkpoint_goes_up_as_safetensors_and_the_repo_joins_a_collection(
        exports: ExportPair, hub: FakeHub, env: dict[str, str], tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load

    state = {"conv.weight": torch.randn(4, 3, 3, 3), "conv.bias": torch.zeros(4)}
    state["head.weight"] = state["conv.bias"]  # tied: shares memory, which safetensors refuses unless copied
    ckpt = tmp_path / "last.ckpt"
    torch.save({"epoch": 3, "state_dict": state}, ckpt)  # a Lightning-style checkpoint
    hub.collections["alice/cnn-zoo-0123abcd"] = []
    r = run_cli("publish", str(exports.dynamic), f"hf://{REPO}", "--endpoint", hub.url,
                "-o", f"checkpoint={ckpt}", "-o", "collection=alice/cnn-zoo-0123abcd", env=env)
    assert r.returncode == 0, r.stderr
    assert "in collection alice/cnn-zoo-0123abcd" in r.stdout
    assert "pytorch/model.safetensors" in hub.repos[REPO].commits[0]["paths"]
    weights = load(hub.file(REPO, "pytorch/model.safetensors"))
    assert sorted(weights) == ["conv.bias", "conv.weight", "head.weight"]
    assert torch.equal(weights["conv.weight"], state["conv.weight"])
    assert b"\x80" not in hub.file(REPO, "pytorch/model.safetensors")[:8]  # not a pickle
    card = hub.file(REPO, "README.md").decode()
    assert "## PyTorch weights" in card and "converted from `last.ckpt`" in card
    assert [i["id"] for i in hub.collections["alice/cnn-zoo-0123abcd"]] == [REPO]

    again = run_cli("publish", str(exports.dynamic), f"hf://{REPO}", "--endpoint", hub.url,
                    "-o", f"checkpoint={ckpt}", "-o", "collection=alice/cnn-zoo-0123abcd", env=env)
    assert again.returncode == 0, again.stderr
    assert "no changes" in again.stdout and len(hub.repos[REPO].commits) == 1, "conversion is deterministic"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("code ran",))

    bad = tmp_path / "pickled.pt"
    torch.save({"state_dict": state, "extra": Payload()}, bad)
    refused = run_cli("publish", str(exports.dynamic), f"hf://{REPO}", "--endpoint", hub.url,
                      "-o", f"checkpoint={bad}", env=env)
    assert refused.returncode == 3 and "weights_only" in refused.error_lines[0] and "code ran" not in refused.stdout

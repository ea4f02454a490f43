"""Model and checkpoint loading: nested state dicts, prefixes, strictness, and untrusted pickles."""

from __future__ import annotations

import sys

import pytest
import torch
from conftest import EXAMPLES, run_cli
from modelport.errors import ModelLoadError
from modelport.folder.trust import UntrustedCode
from modelport.models.loading import extract_state_dict, load_checkpoint, load_model

sys.path.insert(0, str(EXAMPLES.parent))
from models import small_cnn  # type: ignore[import-not-found]


class Payload:
    """Unpickling this creates a marker file: proof that code from the file ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("layout", ["plain", "state_dict", "model_state_dict", "model", "lightning"])
def test_checkpoint_layouts(tmp_path, layout):
    src = small_cnn(seed=3)
    sd = src.state_dict()
    obj = {
        "plain": sd, "state_dict": {"state_dict": sd, "epoch": 1}, "model_state_dict": {"model_state_dict": sd, "optimizer": {}},
        "model": {"model": sd}, "lightning": {"state_dict": {f"model.{k}": v for k, v in sd.items()}, "global_step": 9},
    }[layout]
    path = tmp_path / "ckpt.pt"
    torch.save(obj, path)
    dst = small_cnn(seed=0)
    facts = load_checkpoint(dst, str(path))
    assert facts["keys"] == len(sd)
    for k, v in dst.state_dict().items():
        assert torch.equal(v, sd[k])


def test_strict_loading_lists_missing_and_unexpected_keys(tmp_path):
    sd = small_cnn().state_dict()
    sd.pop("head.weight")
    sd["extra.bias"] = torch.zeros(1)
    path = tmp_path / "c.pt"
    torch.save(sd, path)
    with pytest.raises(ModelLoadError) as info:
        load_checkpoint(small_cnn(), str(path))
    msg = str(info.value)
    assert "missing 1 key(s): head.weight" in msg and "unexpected 1 key(s): extra.bias" in msg
    facts = load_checkpoint(small_cnn(), str(path), strict=False)
    assert facts["missing_keys"] == ["head.weight"]


def test_explicit_prefix(tmp_path):
    sd = {f"net.backbone.{k}": v for k, v in small_cnn().state_dict().items()}
    path = tmp_path / "c.pt"
    torch.save(sd, path)
    facts = load_checkpoint(small_cnn(), str(path), prefix="net.backbone.")
    assert facts["prefix_stripped"] == "net.backbone."


def test_extract_state_dict_refuses_non_mappings():
    with pytest.raises(ModelLoadError, match="not a state dict"):
        extract_state_dict([1, 2, 3])


def test_malicious_checkpoint_never_runs_its_payload(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": small_cnn().state_dict(), "payload": Payload(str(marker))}, path)
    assert not marker.exists()
    with pytest.raises(ModelLoadError, match="weights_only"):
        load_checkpoint(small_cnn(), str(path))
    assert not marker.exists()
    # as a MODEL too, through the CLI, without --trust-pickle
    r = run_cli("export", str(path), "-f", "pt2", "--vision", "3x32x32", "--output-dir", str(tmp_path / "o"))
    assert r.returncode == 3 and "--trust-code" in r.stderr
    assert not marker.exists()
    r = run_cli("export", f"{EXAMPLES}:small_cnn", "--checkpoint", str(path), "-f", "pt2", "--vision", "3x32x32",
                "--output-dir", str(tmp_path / "o2"))
    assert r.returncode == 1 and "weights_only" in r.stderr
    assert not marker.exists()
    assert not (tmp_path / "o").exists() and not (tmp_path / "o2").exists()


def test_trust_pickle_loads_a_whole_module(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(small_cnn(seed=5), path)
    with pytest.raises(UntrustedCode, match="--trust-pickle"):
        load_model(str(path))
    model, facts = load_model(str(path), trust_pickle=True)
    assert facts["kind"] == "pickle"
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), small_cnn(seed=5)(x))


def test_torchscript_archive_as_model(tmp_path):
    scripted = torch.jit.trace(small_cnn(), torch.randn(1, 3, 32, 32))
    path = tmp_path / "m.torchscript"
    scripted.save(str(path))
    with pytest.raises(UntrustedCode, match="TorchScript archive is a program"):
        load_model(str(path))  # a program from elsewhere: refused without the opt-in
    model, facts = load_model(str(path), trust_code=True)
    assert facts["kind"] == "torchscript"
    assert isinstance(model, torch.jit.ScriptModule)


def test_module_factory_reference_with_kwargs():
    model, facts = load_model(f"{EXAMPLES}:small_cnn", model_kwargs={"num_classes": 4})
    assert model.head.out_features == 4 and facts["kind"] == "factory"

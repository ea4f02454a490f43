"""modelport-export-executorch as a user meets it: the real CLI in a subprocess, plus the Python API and the hooks.

Lowering is slow on a small machine, so each export is made once per module and shared.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from modelport import testing
from modelport.testing import load_module, read_metadata, read_record

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "models.py"
HEAVY = ("executorch", "coremltools", "litert_torch", "tensorflow")


run_cli = partial(testing.run_cli, timeout=500)


@pytest.fixture(scope="module")
def examples() -> ModuleType:
    return load_module(EXAMPLES, "modelport_examples_models")


@pytest.fixture(scope="module")
def cnn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cnn") / "executorch"
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "--dynamic-batch", "-f", "executorch",
                   "--output-dir", str(out), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    json.loads(proc.stdout)  # nothing the lowering prints reaches stdout
    return out


@pytest.fixture(scope="module")
def transformer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("transformer") / "executorch"
    proc = run_cli("export", f"{EXAMPLES}:small_transformer", "--text", "16", "--dynamic-batch", "-f", "executorch",
                   "--output-dir", str(out), "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_formats_lists_executorch_available_without_importing_it() -> None:
    # the real `modelport formats --json` exits 0 and imports neither torch, numpy nor HEAVY
    row = testing.check_cli_lists_format("executorch", plugin="modelport_executorch", heavy_modules=HEAVY, timeout=120)
    assert row["status"] == "available" and row["can_export"] is True and row["can_validate"] is True
    assert row["plugin"] == "modelport-export-executorch"


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    testing.check_import_is_light("modelport_executorch", HEAVY)  # a fresh interpreter; torch and numpy are watched too


def test_format_object_and_options() -> None:
    from modelport.plugins import get_plugin_manager

    # the format object loads (lazily: not when the formats are listed) and has the methods the core calls
    assert testing.check_format_object("modelport_executorch") == ["executorch"]
    spec = get_plugin_manager().require_format("executorch")
    assert spec.option("backend").default == "xnnpack" and spec.option("backend").choices == ("xnnpack", "portable")


def test_cnn_lowers_to_xnnpack_and_validates_at_fp32(cnn_dir: Path) -> None:
    assert sorted(p.name for p in cnn_dir.iterdir()) == ["export.json", "metadata.json", "model.pte", "reference.npz"]
    rec = read_record(cnn_dir)
    v = rec["validation"]
    assert v["status"] == "passed" and v["precision"] == "fp32" and v["max_abs_diff"] < 1e-4
    assert v["batch_sizes"] == [1, 4, 8]
    assert v["runtime"].startswith("executorch ")
    d = rec["details"]["delegation"]
    assert d["delegated_nodes"] > 0 and d["by_operator"]["aten_convolution_default"] == {"delegated": 3, "non_delegated": 0}
    md = read_metadata(cnn_dir)["extra_metadata"]["executorch"]
    assert md["backend"] == "xnnpack"
    assert md["delegation"]["delegated_nodes"] == d["delegated_nodes"]
    # the program's planned capacity is read back from the .pte and recorded, whatever it turned out to be
    cap = rec["details"]["batch"]["program_capacity"]
    assert rec["validation"]["checks"]["batch"].startswith(f"dynamic, up to {cap} per call")
    assert md["inputs"]["input"] == {"shape": [cap, 3, 32, 32], "dtype": "float32"}


def test_cnn_runner_handles_batches_beyond_the_program_capacity(cnn_dir: Path, examples: ModuleType) -> None:
    import torch
    from modelport.engine.pipeline import artifact_from_dir
    from modelport.plugins import get_plugin_manager

    artifact = artifact_from_dir(cnn_dir)
    cap = read_record(cnn_dir)["details"]["batch"]["program_capacity"]
    runner = get_plugin_manager().pm.hook.load_runner(artifact=artifact, options={"threads": 1})
    x = np.random.default_rng(1).standard_normal((cap + 5, 3, 32, 32), dtype=np.float32)
    (got,) = runner({"input": x})
    with torch.no_grad():
        want = examples.small_cnn()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-3)
    assert runner.chunked_calls == 1
    with pytest.raises(ValueError, match="does not fit"):
        runner({"input": np.zeros((1, 3, 64, 64), dtype=np.float32)})


def test_cli_revalidates_and_inspects_the_cnn(cnn_dir: Path) -> None:
    again = run_cli("validate", str(cnn_dir))
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("executorch: passed")
    info = run_cli("inspect", str(cnn_dir / "model.pte"), "--json")
    assert info.returncode == 0, info.stderr
    desc = json.loads(info.stdout)
    assert desc["backends"] == ["XnnpackBackend"]
    assert desc["methods"]["forward"]["inputs"][0]["dtype"] == "float32"


def test_transformer_is_partly_delegated_and_validates_at_fp32(transformer_dir: Path) -> None:
    rec = read_record(transformer_dir)
    v = rec["validation"]
    assert v["status"] == "passed" and v["precision"] == "fp32" and v["max_abs_diff"] < 1e-4
    assert v["batch_sizes"] == [1, 4, 8]
    d = read_metadata(transformer_dir)["extra_metadata"]["executorch"]["delegation"]
    # XNNPACK takes the linear layers and softmax, not the embeddings or layer norms
    assert 0 < d["delegated_nodes"] < d["delegated_nodes"] + d["non_delegated_nodes"]
    assert d["by_operator"]["aten_embedding_default"]["delegated"] == 0
    assert d["by_operator"]["aten_linear_default"]["non_delegated"] == 0
    assert any(n.startswith("executorch: XNNPACK took ") for n in rec["notes"])
    # int64 ids stay int64 in a .pte: nothing is recorded as changed
    assert "artifact_input_dtypes" not in rec
    assert read_metadata(transformer_dir)["input_dtype"] == {"input_ids": "int64", "attention_mask": "int64"}


def test_portable_backend_delegates_nothing_and_keeps_a_fixed_batch(tmp_path: Path, examples: ModuleType) -> None:
    import modelport
    from modelport.engine.pipeline import artifact_from_dir
    from modelport.plugins import get_plugin_manager

    r = modelport.export(examples.small_cnn(), ["executorch"], modelport.vision(3, 32, 32, batch=2),
                         output_dir=tmp_path / "portable", options=["backend=portable"])["executorch"]
    assert r.status == "passed", r.error
    assert r.validation.max_abs_diff < 1e-4 and r.validation.batch_sizes == [2]
    d = r.metadata["extra_metadata"]["executorch"]
    assert d["backend"] == "portable"
    assert d["delegation"]["delegated_nodes"] == 0 and d["delegation"]["non_delegated_nodes"] > 0
    assert d["batch"] == {"dynamic": False, "size": 2}
    assert r.record["details"]["edge_ir_validity_check"] is True
    runner = get_plugin_manager().pm.hook.load_runner(artifact=artifact_from_dir(r.path), options={"threads": None})
    with pytest.raises(ValueError, match="fixed batch of 2"):
        runner({"input": np.zeros((3, 3, 32, 32), dtype=np.float32)})
    inspected = get_plugin_manager().pm.hook.inspect_artifact(path=r.path / "model.pte", options={})
    assert inspected["backends"] == [] and inspected["methods"]["forward"]["inputs"][0]["shape"] == [2, 3, 32, 32]


def test_bad_max_batch_is_a_configuration_error(tmp_path: Path) -> None:
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "--dynamic-batch", "-f", "executorch",
                   "-o", "max_batch=0", "--output-dir", str(tmp_path / "x"), "-q")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "max_batch must be at least 1" in proc.stderr

"""modelport-export-executorch as a user meets it: the real CLI in a subprocess, plus the Python API and the hooks.

Lowering is slow on a small machine, so each export is made once per module and shared.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "models.py"
HEAVY = ("executorch", "coremltools", "litert_torch", "tensorflow")


def run_cli(*args: str, timeout: int = 500) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelport", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def examples() -> ModuleType:
    spec = importlib.util.spec_from_file_location("modelport_examples_models", EXAMPLES)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def record(path: Path) -> dict[str, Any]:
    return json.loads((path / "export.json").read_text())


def metadata(path: Path) -> dict[str, Any]:
    return json.loads((path / "metadata.json").read_text())


def test_formats_lists_executorch_available_without_importing_it() -> None:
    code = (
        "import json, sys\n"
        "from modelport.cli import main\n"
        "try:\n"
        "    main(['formats', '--json'], standalone_mode=False)\n"
        "finally:\n"
        f"    print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []
    row = {f["name"]: f for f in json.loads(proc.stdout)["formats"]}["executorch"]
    assert row["status"] == "available" and row["can_export"] is True and row["can_validate"] is True
    assert row["plugin"] == "modelport-export-executorch"

    real = run_cli("formats", "--json")
    assert real.returncode == 0, real.stderr
    assert {f["name"]: f for f in json.loads(real.stdout)["formats"]}["executorch"]["status"] == "available"


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    code = f"import modelport_executorch, sys; print(sorted(m for m in {(*HEAVY, 'torch', 'numpy')!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_hooks_ignore_other_formats() -> None:
    import modelport_executorch
    from modelport import Artifact
    from modelport.plugins import get_plugin_manager

    other = Artifact(format="onnx", path=Path("model.onnx"))
    assert modelport_executorch.load_runner(other, {}) is None
    assert modelport_executorch.describe_metadata(other, None) is None
    assert modelport_executorch.validate(other, []) is None
    assert modelport_executorch.inspect_artifact(Path("model.onnx"), {}) is None
    spec = get_plugin_manager().require_format("executorch")
    assert spec.option("backend").default == "xnnpack" and spec.option("backend").choices == ("xnnpack", "portable")


def test_cnn_lowers_to_xnnpack_and_validates_at_fp32(cnn_dir: Path) -> None:
    assert sorted(p.name for p in cnn_dir.iterdir()) == ["export.json", "metadata.json", "model.pte", "reference.npz"]
    rec = record(cnn_dir)
    v = rec["validation"]
    assert v["status"] == "passed" and v["precision"] == "fp32" and v["max_abs_diff"] < 1e-4
    assert v["batch_sizes"] == [1, 4, 8]
    assert v["runtime"].startswith("executorch ")
    d = rec["details"]["delegation"]
    assert d["delegated_nodes"] > 0 and d["by_operator"]["aten_convolution_default"] == {"delegated": 3, "non_delegated": 0}
    md = metadata(cnn_dir)["extra_metadata"]["executorch"]
    assert md["backend"] == "xnnpack"
    assert md["delegation"]["delegated_nodes"] == d["delegated_nodes"]
    # the program's planned capacity is read back from the .pte and recorded, whatever it turned out to be
    cap = rec["details"]["batch"]["program_capacity"]
    assert rec["validation"]["checks"]["batch"].startswith(f"dynamic, up to {cap} per call")
    assert md["inputs"]["input"] == {"shape": [cap, 3, 32, 32], "dtype": "float32"}


def test_cnn_runner_handles_batches_beyond_the_program_capacity(cnn_dir: Path, examples: ModuleType) -> None:
    import torch
    from modelport.pipeline import artifact_from_dir
    from modelport.plugins import get_plugin_manager

    artifact = artifact_from_dir(cnn_dir)
    cap = record(cnn_dir)["details"]["batch"]["program_capacity"]
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
    rec = record(transformer_dir)
    v = rec["validation"]
    assert v["status"] == "passed" and v["precision"] == "fp32" and v["max_abs_diff"] < 1e-4
    assert v["batch_sizes"] == [1, 4, 8]
    d = metadata(transformer_dir)["extra_metadata"]["executorch"]["delegation"]
    # XNNPACK takes the linear layers and softmax, not the embeddings or layer norms
    assert 0 < d["delegated_nodes"] < d["delegated_nodes"] + d["non_delegated_nodes"]
    assert d["by_operator"]["aten_embedding_default"]["delegated"] == 0
    assert d["by_operator"]["aten_linear_default"]["non_delegated"] == 0
    assert any(n.startswith("executorch: XNNPACK took ") for n in rec["notes"])
    # int64 ids stay int64 in a .pte: nothing is recorded as changed
    assert "artifact_input_dtypes" not in rec
    assert metadata(transformer_dir)["input_dtype"] == {"input_ids": "int64", "attention_mask": "int64"}


def test_portable_backend_delegates_nothing_and_keeps_a_fixed_batch(tmp_path: Path, examples: ModuleType) -> None:
    import modelport
    from modelport.pipeline import artifact_from_dir
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

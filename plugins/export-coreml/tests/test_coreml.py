"""modelport-export-coreml as a user meets it on Linux: export works, the package's structure is checked, and
the status table says the numeric check needs macOS. The real CLI runs in a subprocess; exports are shared.
"""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from modelport import testing
from modelport.testing import load_module, read_metadata, read_record

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "models.py"
HEAVY = ("coremltools", "executorch", "litert_torch", "tensorflow")
STRUCTURE_ONLY = "structure checked; numeric check needs macOS"

pytestmark = pytest.mark.skipif(sys.platform == "darwin", reason="these tests describe the Linux behaviour")


run_cli = partial(testing.run_cli, timeout=400)


@pytest.fixture(scope="module")
def examples() -> ModuleType:
    return load_module(EXAMPLES, "modelport_examples_models")


@pytest.fixture(scope="module")
def cnn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cnn") / "coreml"
    proc = run_cli("export", f"{EXAMPLES}:small_cnn", "--vision", "3x32x32", "--dynamic-batch", "-f", "coreml",
                   "--output-dir", str(out), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    json.loads(proc.stdout)  # coremltools' progress bars and logs never reach stdout
    return out


@pytest.fixture(scope="module")
def transformer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("transformer") / "coreml"
    proc = run_cli("export", f"{EXAMPLES}:small_transformer", "--text", "16", "--dynamic-batch", "-f", "coreml",
                   "--output-dir", str(out), "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.fixture(scope="module")
def fp16_cnn(tmp_path_factory: pytest.TempPathFactory, examples: ModuleType) -> Any:
    import modelport

    out = tmp_path_factory.mktemp("fp16") / "coreml"
    return modelport.export(examples.small_cnn(), ["coreml"], modelport.vision(3, 32, 32, batch=2), output_dir=out,
                            options=["precision=fp16", "minimum_deployment_target=iOS17", "compute_units=CPU_AND_NE"])["coreml"]


# ----------------------------------------------------------------------------- discovery


def test_formats_says_export_yes_validate_structure_only_without_importing_coremltools() -> None:
    # the real `modelport formats --json` exits 0 and imports neither torch, numpy nor HEAVY
    row = testing.check_cli_lists_format("coreml", plugin="modelport_coreml", heavy_modules=HEAVY, timeout=120)
    assert row["status"] == "available"
    assert row["can_export"] is True and row["can_validate"] is False
    assert row["reason"] == STRUCTURE_ONLY
    assert row["plugin"] == "modelport-export-coreml"

    table = run_cli("formats")
    assert table.returncode == 0, table.stderr
    line = next(ln for ln in table.stdout.splitlines() if ln.strip("│ ").startswith("coreml"))
    assert "available" in line and "structure" in line
    assert STRUCTURE_ONLY in table.stdout  # the reason, as a note under the table


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    testing.check_import_is_light("modelport_coreml", HEAVY)  # a fresh interpreter; torch and numpy are watched too


def test_format_object_and_options() -> None:
    from modelport.plugins import get_plugin_manager

    # the format object loads (lazily: not when the formats are listed) and has the methods the core calls
    assert testing.check_format_object("modelport_coreml") == ["coreml"]
    spec = get_plugin_manager().require_format("coreml")
    assert spec.option("precision").default == "fp32"
    assert spec.option("minimum_deployment_target").default == "ios15"
    assert spec.option("compute_units").default == "all"


# ----------------------------------------------------------------------------- the bundled models


def test_cnn_exports_a_package_and_passes_the_structural_check(cnn_dir: Path) -> None:
    rec = read_record(cnn_dir)
    package = cnn_dir / "model.mlpackage"
    assert package.is_dir() and rec["artifact"] == "model.mlpackage"
    on_disk = sorted(p.relative_to(cnn_dir).as_posix() for p in package.rglob("*") if p.is_file())
    assert rec["artifact_files"] == on_disk
    assert "model.mlpackage/Manifest.json" in on_disk and "model.mlpackage/Data/com.apple.CoreML/model.mlmodel" in on_disk
    # only what the Manifest describes (no ExecuTorch debug-handle map), readable like the rest of the export
    assert on_disk == ["model.mlpackage/Data/com.apple.CoreML/model.mlmodel",
                       "model.mlpackage/Data/com.apple.CoreML/weights/weight.bin", "model.mlpackage/Manifest.json"]
    reference_mode = (cnn_dir / "metadata.json").stat().st_mode & 0o777
    for p in [package, *package.rglob("*")]:
        want = reference_mode | ((reference_mode & 0o444) >> 2) if p.is_dir() else reference_mode
        assert p.stat().st_mode & 0o777 == want, (p, oct(p.stat().st_mode & 0o777))
    md = read_metadata(cnn_dir)
    assert set(on_disk) <= set(md["files"])  # each file of the package is hashed
    v = rec["validation"]
    assert v["status"] == "structure-only" and v["reason"] == STRUCTURE_ONLY
    checks = v["checks"]
    for name in ("reload", "inputs", "validation_inputs", "outputs", "compute_precision", "weights"):
        assert checks[name].startswith("ok: "), (name, checks[name])
    assert checks["inputs"] == "ok: input FLOAT32 [1..65536, 3, 32, 32]"
    assert checks["validation_inputs"] == "ok: 5 input set(s) (batch 1, 4, 8) fit the declared inputs"
    assert checks["compute_precision"].startswith("ok: fp32 throughout")
    assert checks["ops"]["conv"] == 3 and checks["ops"]["linear"] == 1
    assert rec["precision"] == "fp32" and rec["details"]["compute_precision"] == "fp32"
    assert any("has not been tested with coremltools" in n for n in rec["notes"])
    extra = md["extra_metadata"]["coreml"]
    assert extra["minimum_deployment_target"] == "iOS15" and extra["compute_units"] == "ALL"
    assert extra["prediction"] == "macOS only"


def test_cli_validate_and_inspect_on_linux(cnn_dir: Path) -> None:
    again = run_cli("validate", str(cnn_dir))
    assert again.returncode == 0, again.stderr
    assert "structure-only" in again.stdout and "needs macOS" in again.stdout
    info = run_cli("inspect", str(cnn_dir), "--json")
    assert info.returncode == 0, info.stderr
    art = json.loads(info.stdout)["artifact"]
    assert art["model_type"] == "mlProgram" and art["ops"]["conv"] == 3
    assert art["metadata"]["modelport.model_name"] == "small_cnn"


def test_transformer_package_declares_int32_ids_and_named_outputs(transformer_dir: Path) -> None:
    rec = read_record(transformer_dir)
    assert rec["validation"]["status"] == "structure-only"
    checks = rec["validation"]["checks"]
    assert checks["inputs"] == "ok: input_ids INT32 [1..65536, 16], attention_mask INT32 [1..65536, 16]"
    assert checks["outputs"] == "ok: last_hidden_state FLOAT32 ['?', 16, 64], pooler_output FLOAT32 ['?', 64]"
    assert rec["artifact_input_dtypes"] == {"input_ids": "int32", "attention_mask": "int32"}
    assert rec["artifact_outputs"] == ["last_hidden_state", "pooler_output"]
    md = read_metadata(transformer_dir)
    assert md["input_dtype"] == {"input_ids": "int32", "attention_mask": "int32"}
    assert checks["ops"]["softmax"] == 2 and checks["ops"]["layer_norm"] == 5


def test_load_runner_says_prediction_needs_macos(cnn_dir: Path) -> None:
    from modelport import ConfigError
    from modelport.engine.pipeline import artifact_from_dir
    from modelport.plugins import get_plugin_manager

    with pytest.raises(ConfigError, match="Core ML prediction needs macOS"):
        get_plugin_manager().pm.hook.load_runner(artifact=artifact_from_dir(cnn_dir), options={})


# ----------------------------------------------------------------------------- options and the checks failing


def test_fp16_options_reach_the_package(fp16_cnn: Any) -> None:
    r = fp16_cnn
    assert r.status == "structure-only", r.error
    assert r.artifact.precision == "fp16"
    checks = r.record["validation"]["checks"]
    assert checks["compute_precision"].startswith("ok: fp16 (")
    assert checks["reload"].startswith("ok: mlProgram, specification version 8")  # iOS17
    assert checks["inputs"] == "ok: input FLOAT32 [2, 3, 32, 32]"  # fixed batch: no range
    extra = r.metadata["extra_metadata"]["coreml"]
    assert extra["compute_units"] == "CPU_AND_NE" and extra["minimum_deployment_target"] == "iOS17"


def test_structural_check_fails_when_the_package_does_not_match(cnn_dir: Path, fp16_cnn: Any) -> None:
    from modelport import ValidationFailed
    from modelport.engine.pipeline import artifact_from_dir
    from modelport_coreml.format import CoreMLFormat

    sets = [{"input": np.zeros((1, 3, 32, 32), dtype=np.float32)}]
    art = artifact_from_dir(cnn_dir)
    art.details["inputs"][0]["shape"] = [1, 3, 64, 64]
    art.details["outputs"][0]["name"] = "logits"
    with pytest.raises(ValidationFailed) as err:
        CoreMLFormat().validate(art, sets)
    assert "input axis 2 accepts 32, expected 64" in str(err.value)
    assert "names ['output'] != ['logits']" in str(err.value)

    fp16 = artifact_from_dir(fp16_cnn.path)
    fp16.details["compute_precision"] = "fp32"
    with pytest.raises(ValidationFailed, match="ops compute in fp16, requested fp32"):
        CoreMLFormat().validate(fp16, [{"input": np.zeros((2, 3, 32, 32), dtype=np.float32)}])
    with pytest.raises(ValidationFailed, match=r"set 0: input\[3, 3, 32, 32\] outside the declared shape"):
        CoreMLFormat().validate(artifact_from_dir(fp16_cnn.path), [{"input": np.zeros((3, 3, 32, 32), np.float32)}])


def test_macos_branch_feeds_int32_and_returns_outputs_in_model_order(transformer_dir: Path, monkeypatch: Any) -> None:
    """The macOS path cannot run here; this checks modelport's side of it (what it feeds, how it orders outputs)
    with Core ML's ``MLModel`` replaced by a recorder. The package's structure checks still run for real."""
    import coremltools
    import modelport_coreml
    from modelport.engine.pipeline import artifact_from_dir
    from modelport_coreml.format import CoreMLFormat

    fed: list[dict[str, Any]] = []
    real = coremltools.models.MLModel

    class RecordingModel:
        def __init__(self, path: str, compute_units: Any = None, skip_model_load: bool = False) -> None:
            self.compute_units = compute_units
            self._spec = real(path, skip_model_load=True).get_spec()

        def get_spec(self) -> Any:
            return self._spec

        def predict(self, feed: dict[str, Any]) -> dict[str, Any]:
            fed.append(feed)
            n = feed["input_ids"].shape[0]
            return {"pooler_output": np.full((n, 64), 2.0, np.float32), "last_hidden_state": np.ones((n, 16, 64), np.float32)}

    monkeypatch.setattr(modelport_coreml, "is_macos", lambda: True)
    monkeypatch.setattr(coremltools.models, "MLModel", RecordingModel)
    ids = np.arange(32, dtype=np.int64).reshape(2, 16)
    run = CoreMLFormat().validate(artifact_from_dir(transformer_dir), [{"input_ids": ids, "attention_mask": np.ones_like(ids)}])
    assert run.skipped is None and run.runtime.endswith("(Core ML, ALL)")
    assert fed[0]["input_ids"].dtype == np.int32 and fed[0]["attention_mask"].dtype == np.int32
    np.testing.assert_array_equal(fed[0]["input_ids"], ids)
    last, pooled = run.outputs[0]
    assert last.shape == (2, 16, 64) and pooled.shape == (2, 64) and pooled[0, 0] == 2.0

"""export.json has one schema and one reader (modelport.exportdir) used by validate, bench, compare and publish."""

import json
import shutil

import pytest
from conftest import CNN, run_cli
from modelport.errors import ConfigError, ModelportError
from modelport.exportdir import ExportFolder, ExportRecord, record_errors, record_schema, write_record
from modelport.trust import seal_verifies


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("exp") / "pt2"
    r = run_cli("export", CNN, "--vision", "3x16x16", "-f", "pt2", "--output-dir", str(out), "-q")
    assert r.returncode == 0, r.stderr
    return out


def test_a_real_record_fits_the_schema_and_opens(exported):
    record = json.loads((exported / "export.json").read_text())
    assert record_errors(record) == []
    folder = ExportFolder.open(exported)
    assert folder.format == "pt2" and folder.artifact.path.is_file()
    assert folder.verify() == []
    (exported / folder.record["artifact"]).write_bytes(b"tampered")
    assert folder.verify() == [f"{folder.record['artifact']} (sha256 mismatch)"]


def test_an_old_record_with_only_the_early_keys_opens(tmp_path):
    (tmp_path / "export.json").write_text(json.dumps({"format": "onnx", "artifact": "model.onnx", "legacy_key": 1}))
    assert ExportFolder.open(tmp_path).record["legacy_key"] == 1


def test_schema_command_prints_the_record_schema():
    r = run_cli("schema", "--record")
    assert r.returncode == 0
    assert json.loads(r.stdout) == record_schema()
    assert "artifact" in record_schema()["required"]


@pytest.mark.parametrize("text", ["{not json", json.dumps([1, 2]), json.dumps({"format": "pt2", "artifact": ["x"]})])
def test_corrupt_or_foreign_record_is_one_line_for_every_reader(tmp_path, text):
    (tmp_path / "export.json").write_text(text)
    with pytest.raises(ConfigError):
        ExportFolder.open(tmp_path)
    for args in (["validate", str(tmp_path)], ["bench", str(tmp_path)], ["compare", str(tmp_path), str(tmp_path)]):
        r = run_cli(*args)
        assert r.returncode in (2, 3), (args, r.stderr)  # validate reports it as 3 today (see report)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr and "export.json" in r.stderr, (args, r.stderr)


def test_typed_record_round_trips_a_real_record_and_keeps_unknown_keys(exported):
    record = json.loads((exported / "export.json").read_text())
    typed = ExportRecord.from_dict({**record, "from_the_future": {"x": 1}})
    assert typed.format == "pt2" and typed.artifact == record["artifact"] and typed.verdict == "passed"
    assert typed.extra == {"from_the_future": {"x": 1}}
    assert typed.to_dict() == {**record, "from_the_future": {"x": 1}}
    assert list(typed.to_dict())[: len(record)] == list(record)  # same key order as the export wrote
    assert record_errors(ExportRecord(format="onnx", artifact="model.onnx").to_dict()) == []
    with pytest.raises(ConfigError, match="artifact"):
        ExportRecord.from_dict({"format": "onnx", "artifact": 3})


def test_write_record_checks_seals_and_replaces_atomically(exported, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(exported, folder)
    typed = ExportFolder.open(folder).typed_record
    typed.notes = ["rewritten"]
    written = write_record(folder, typed)
    assert json.loads((folder / "export.json").read_text()) == written and written["notes"] == ["rewritten"]
    assert seal_verifies(written, folder)  # the writer seals; a record edited by hand afterwards does not verify
    assert not seal_verifies({**written, "notes": []}, folder)
    before = (folder / "export.json").read_bytes()
    with pytest.raises(ModelportError, match="invalid export record"):
        write_record(folder, {"format": "onnx", "artifact": ""})
    assert (folder / "export.json").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []  # no temp file left


def test_a_record_built_in_code_writes_unknowns_as_null_where_the_schema_allows():
    data = ExportRecord(format="onnx", artifact="model.onnx", precision="fp16").to_dict()
    assert record_errors(data) == []
    assert data["model_name"] is None and data["artifact_inputs"] is None and data["precision"] == "fp16"
    assert "id" not in data and "seal" not in data and "exit_code" not in data  # never null: left out

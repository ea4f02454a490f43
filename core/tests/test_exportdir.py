"""export.json has one schema and one reader (modelport.folder.exportdir) used by validate, bench, compare and publish."""

import json
import shutil

import pytest
from conftest import CNN, run_cli
from modelport.errors import ConfigError, ModelportError
from modelport.folder.exportdir import ExportFolder, ExportRecord, record_errors, record_schema, write_record
from modelport.folder.trust import seal_verifies


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("exp") / "pt2"
    r = run_cli("export", CNN, "--vision", "3x16x16", "-f", "pt2", "--output-dir", str(out), "-q")
    assert r.returncode == 0, r.stderr
    return out


def test_a_real_record_fits_the_schema_and_opens(exported, tmp_path):
    record = json.loads((exported / "export.json").read_text())
    assert record_errors(record) == []
    folder = ExportFolder.open(shutil.copytree(exported, tmp_path / "copy"))
    assert folder.format == "pt2" and folder.artifact.path.is_file()
    assert folder.verify() == []
    (folder.path / folder.record["artifact"]).write_bytes(b"tampered")
    assert folder.verify() == [f"{folder.record['artifact']} (sha256 mismatch)"]


def test_an_old_record_with_only_the_early_keys_opens(tmp_path):
    (tmp_path / "export.json").write_text(json.dumps({"format": "onnx", "artifact": "model.onnx", "legacy_key": 1}))
    assert ExportFolder.open(tmp_path).record["legacy_key"] == 1


def test_schema_command_prints_the_record_schema():
    r = run_cli("schema", "--record")
    assert r.returncode == 0
    assert json.loads(r.stdout) == record_schema()
    assert "artifact" in record_schema()["required"]


def _edit_record(d, **changes):
    record = json.loads((d / "export.json").read_text())
    (d / "export.json").write_text(json.dumps({**record, **changes}))


TAMPERINGS = {
    "record not JSON": lambda d: (d / "export.json").write_text("{not json"),
    "record not an object": lambda d: (d / "export.json").write_text("[1, 2]"),
    "record off the schema": lambda d: _edit_record(d, artifact=["model.pt2"]),
    "artifact outside the folder": lambda d: _edit_record(d, artifact="../pt2/model.pt2"),
    "artifact changed": lambda d: (d / "model.pt2").write_bytes(b"PK tampered"),
    "artifact missing": lambda d: (d / "model.pt2").unlink(),
    "reference changed": lambda d: (d / "reference.npz").write_bytes(b"junk"),
    # a file the format does not write, named as its artifact (as when a record is edited to claim another format)
    "artifact its format does not write": lambda d: (shutil.copy(d / "model.pt2", d / "weights.bin"),
                                                     _edit_record(d, artifact="weights.bin")),
}


@pytest.mark.parametrize("kind", list(TAMPERINGS))
def test_a_tampered_folder_is_refused_identically_by_every_reader(exported, tmp_path, kind):
    d = tmp_path / "copy"
    shutil.copytree(exported, d)
    TAMPERINGS[kind](d)
    before = sorted(p.name for p in d.iterdir())
    readers = {
        "validate": ["validate", d],
        "bench": ["bench", d, "--max-seconds", "0.1"],
        "compare": ["compare", exported, d],
        "inspect": ["inspect", d],
        "publish": ["publish", d, f"file://{tmp_path / 'reg'}"],
    }
    said = {}
    for name, args in readers.items():
        r = run_cli(*map(str, args))
        assert r.returncode == 3, (kind, name, r.returncode, r.stderr)  # DESIGN.md: bad input is exit 3
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, (kind, name, r.stderr)
        said[name] = lines[0]
    assert len(set(said.values())) == 1, said  # the same words from every command
    assert sorted(p.name for p in d.iterdir()) == before and not (tmp_path / "reg").exists()  # nothing written


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


def test_side_file_names_are_spelled_once():
    """Code names export.json, metadata.json, reference.npz... through modelport.folder.exportdir (or the leaf
    modelport.folder.exportfiles), so a reader cannot grow its own copy of the list; messages may still say them."""
    import re
    from pathlib import Path

    import modelport

    root = Path(modelport.__file__).parent
    joined = re.compile(r'/ "(export\.json|metadata\.json|bench\.json|reference\.npz|README\.md)"|'
                        r'\(\s*"(metadata|export)\.json",\s*"(export|metadata)\.json"')
    found = [f"{p.relative_to(root)}:{n}" for p in sorted(root.rglob("*.py")) if p.name != "exportfiles.py"
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if joined.search(line)]
    assert found == []

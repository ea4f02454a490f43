"""export.json has one schema and one reader (modelport.exportdir) used by validate, bench, compare and publish."""

import json

import pytest
from conftest import CNN, run_cli
from modelport.errors import ConfigError
from modelport.exportdir import ExportFolder, record_errors, record_schema


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

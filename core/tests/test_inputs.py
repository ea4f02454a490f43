"""Input-spec, dynamic-axis, option and target parsers — examples plus properties (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from modelport.engine.inputs import InputSpec, TensorSpec, parse_dynamic, parse_input, parse_text, parse_vision, text, vision
from modelport.errors import ConfigError
from modelport.plugins.options import coerce, parse_pairs, resolve_options
from modelport.plugins.types import FormatSpec, OptionSpec, Target

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
dims = st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=5)
dtypes = st.sampled_from(["float32", "float16", "int64", "int32", "uint8", "bool"])


@given(names, dims, dtypes)
def test_input_spec_round_trip(name, shape, dtype):
    text_ = f"{name}:{'x'.join(map(str, shape))}:{dtype}"
    t = parse_input(text_)
    assert (t.name, t.shape, t.dtype) == (name, tuple(shape), dtype)
    assert TensorSpec.from_dict(t.to_dict()) == t


@given(st.text(max_size=30))
def test_input_parser_never_crashes_unexpectedly(raw):
    try:
        parse_input(raw)
    except ConfigError:
        pass


@given(names, st.integers(min_value=0, max_value=9), st.one_of(st.none(), names))
def test_dynamic_round_trip(name, axis, label):
    raw = f"{name}:{axis}" + (f"={label}" if label else "")
    assert parse_dynamic(raw) == (name, axis, label)


@given(st.text(max_size=20))
def test_dynamic_parser_only_raises_config_errors(raw):
    try:
        parse_dynamic(raw)
    except ConfigError:
        pass


def test_presets_and_seeded_inputs():
    v = parse_vision("3x224x224", batch=2)
    assert v.tensors[0].shape == (2, 3, 224, 224)
    t = parse_text("128:30522")
    assert t.names == ["input_ids", "attention_mask"]
    a = t.make_numpy(seed=1)
    b = t.make_numpy(seed=1)
    assert np.array_equal(a["input_ids"], b["input_ids"]) and a["input_ids"].dtype == np.int64
    assert a["input_ids"].max() < 30522 and np.all(a["attention_mask"] == 1)
    assert not np.array_equal(t.make_numpy(seed=2)["input_ids"], a["input_ids"])
    spec = vision(3, 8, 8, dynamic_batch=True)
    assert spec.dynamic_batch and spec.make_numpy(batch=5)["input"].shape == (5, 3, 8, 8)
    assert text(4).tensors[0].high == 1000


@pytest.mark.parametrize("bad", ["", "x", "x:", "x:1xx2", "x:1x2:nope", "x:1x2:int64:5,1", ":1x2", "x:1x2:int64:a,b"])
def test_bad_input_specs(bad):
    with pytest.raises(ConfigError):
        parse_input(bad)


def test_duplicate_input_names_refused():
    with pytest.raises(ConfigError, match="given twice"):
        InputSpec([TensorSpec("a", (1,)), TensorSpec("a", (2,))])


SPEC = FormatSpec("f", "F", ("m",), config_aliases={"opset_version": "opset"}, options=(
    OptionSpec("opset", "int", 18, "opset"), OptionSpec("simplify", "bool", True, "simplify"),
    OptionSpec("mode", "choice", "a", "mode", choices=("a", "b")), OptionSpec("scale", "float", 1.0, "scale"),
))


@given(st.integers(min_value=-10**6, max_value=10**6))
def test_int_option_round_trip(n):
    assert resolve_options({"f": SPEC}, [f"opset={n}"])["f"]["opset"] == n


@given(st.sampled_from(["1", "true", "yes", "on", "0", "false", "no", "off", "TRUE", "Off"]))
def test_bool_option_words(word):
    value = resolve_options({"f": SPEC}, [f"f.simplify={word}"])["f"]["simplify"]
    assert value is (word.lower() in ("1", "true", "yes", "on"))


@given(st.text(max_size=20))
def test_option_parser_only_raises_config_errors(raw):
    try:
        resolve_options({"f": SPEC}, [raw])
    except ConfigError:
        pass


def test_config_aliases_and_precedence():
    got = resolve_options({"f": SPEC}, ["opset=13"], {"opset_version": 17, "simplify": False, "dynamic_axes": True})
    assert got["f"] == {"opset": 13, "simplify": False, "mode": "a", "scale": 1.0}
    with pytest.raises(ConfigError, match="not one of a, b"):
        resolve_options({"f": SPEC}, ["mode=c"])
    with pytest.raises(ConfigError, match="not a valid float"):
        coerce(SPEC.options[3], "fast", "-o")
    assert parse_pairs(["onnx.opset=17"]) == [("onnx", "opset", "17")]


@given(st.sampled_from(["file", "hf", "github", "s3"]), st.from_regex(r"[A-Za-z0-9_./@-]{1,30}", fullmatch=True))
def test_target_round_trip(scheme, loc):
    t = Target.parse(f"{scheme}://{loc}")
    assert (t.scheme, t.location) == (scheme, loc)


@given(st.text(max_size=30))
def test_target_parser_only_raises_config_errors(raw):
    try:
        Target.parse(raw)
    except ConfigError:
        pass

"""Shape profiles from the input spec and the min/opt/max_shape options: pure functions, no TensorRT."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from modelport import ConfigError, ExportFailed, InputSpec, TensorSpec, text, vision
from modelport_tensorrt.profiles import (
    DEFAULT_MAX_BATCH,
    calibration_shapes,
    derive_profile,
    fit_to_network,
    map_inputs,
    parse_shapes,
)


def text_with_dynamic_seq(seq: int = 16) -> InputSpec:
    return text(seq, dynamic_batch=True).with_dynamic(["input_ids:1=seq", "attention_mask:1=seq"])


# ----------------------------------------------------------------------------- parsing


def test_parse_shapes_reads_several_inputs() -> None:
    assert parse_shapes("input_ids:1x16, attention_mask:8X16", "min_shape") == {
        "input_ids": (1, 16), "attention_mask": (8, 16)}
    assert parse_shapes(None, "min_shape") == {}
    assert parse_shapes("  ", "min_shape") == {}


@pytest.mark.parametrize("bad", [
    "input", "input:", "input:1x", "input:x3", "1x3x32x32", "input:1x3,input:2x3", "input:0x3x32x32",
    "in put:1x2", "input:1.5x3", "input:-1x3", "input:1;other:2", "input:1x3,",
])
def test_malformed_shape_strings_are_configuration_errors(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_shapes(bad, "max_shape")
    assert info.value.exit_code == 3
    assert str(info.value).startswith(f"tensorrt: max_shape={bad!r}")


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
shapes = st.lists(st.integers(1, 4096), min_size=1, max_size=5).map(tuple)


@given(st.dictionaries(names, shapes, min_size=1, max_size=4))
def test_parse_shapes_reads_back_what_a_user_writes(entries: dict[str, tuple[int, ...]]) -> None:
    text_ = ",".join(f"{n}:{'x'.join(map(str, s))}" for n, s in entries.items())
    assert parse_shapes(text_, "opt_shape") == entries


# ----------------------------------------------------------------------------- defaults from the spec


def test_dynamic_batch_defaults_run_from_1_through_the_example_to_max_batch() -> None:
    profile = derive_profile(vision(3, 32, 32, dynamic_batch=True))
    assert profile is not None
    assert profile.to_dict() == {"input": {"min": [1, 3, 32, 32], "opt": [1, 3, 32, 32], "max": [DEFAULT_MAX_BATCH, 3, 32, 32]}}
    assert profile.notes == []


def test_opt_is_the_example_batch_and_max_never_below_it() -> None:
    assert derive_profile(vision(3, 32, 32, batch=4, dynamic_batch=True)).to_dict()["input"]["opt"] == [4, 3, 32, 32]
    assert derive_profile(vision(3, 32, 32, batch=64, dynamic_batch=True)).to_dict()["input"]["max"] == [64, 3, 32, 32]
    assert derive_profile(vision(3, 32, 32, dynamic_batch=True), max_batch=8).to_dict()["input"]["max"] == [8, 3, 32, 32]


def test_max_batch_below_the_example_batch_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_batch=2 is below the example batch 4"):
        derive_profile(vision(3, 32, 32, batch=4, dynamic_batch=True), max_batch=2)
    with pytest.raises(ConfigError, match="max_batch=0 must be at least 1"):
        derive_profile(vision(3, 32, 32, dynamic_batch=True), max_batch=0)


def test_every_input_of_a_text_model_gets_the_same_batch_range() -> None:
    profile = derive_profile(text(16, dynamic_batch=True))
    assert profile.to_dict() == {
        "input_ids": {"min": [1, 16], "opt": [1, 16], "max": [32, 16]},
        "attention_mask": {"min": [1, 16], "opt": [1, 16], "max": [32, 16]},
    }


def test_a_static_spec_needs_no_profile_and_refuses_shape_options() -> None:
    assert derive_profile(vision(3, 32, 32)) is None
    with pytest.raises(ConfigError, match="no input has a dynamic axis; declare one with --dynamic-batch"):
        derive_profile(vision(3, 32, 32), max_shape="input:8x3x32x32")


def test_other_dynamic_axes_default_to_their_example_size_at_most_and_say_how_to_widen() -> None:
    profile = derive_profile(text_with_dynamic_seq(16))
    assert profile.to_dict()["input_ids"] == {"min": [1, 1], "opt": [1, 16], "max": [32, 16]}
    assert any("dynamic axis 1 (seq) of input_ids accepts 1..16" in n and "max_shape=input_ids:32x64" in n
               for n in profile.notes)


# ----------------------------------------------------------------------------- overrides


def test_overriding_one_input_carries_its_labels_to_inputs_that_share_them() -> None:
    profile = derive_profile(text_with_dynamic_seq(16), max_shape="input_ids:16x128", opt_shape="input_ids:4x64")
    d = profile.to_dict()
    assert d["input_ids"] == {"min": [1, 1], "opt": [4, 64], "max": [16, 128]}
    assert d["attention_mask"] == {"min": [1, 1], "opt": [4, 64], "max": [16, 128]}
    assert profile.notes == []  # the user chose the sequence range


def test_inputs_sharing_a_label_cannot_be_given_two_sizes() -> None:
    with pytest.raises(ConfigError, match=re.escape("gives dynamic axis 'seq' two sizes: 128 (input_ids) and 64 (attention_mask)")):
        derive_profile(text_with_dynamic_seq(), max_shape="input_ids:8x128,attention_mask:8x64")


def test_a_user_min_above_the_example_moves_opt_up_with_it() -> None:
    d = derive_profile(vision(3, 32, 32, dynamic_batch=True), min_shape="input:4x3x32x32").to_dict()["input"]
    assert d == {"min": [4, 3, 32, 32], "opt": [4, 3, 32, 32], "max": [32, 3, 32, 32]}


def test_a_user_opt_above_the_default_max_moves_max_up_with_it() -> None:
    d = derive_profile(text_with_dynamic_seq(16), opt_shape="input_ids:2x48").to_dict()["attention_mask"]
    assert d == {"min": [1, 1], "opt": [2, 48], "max": [32, 48]}


@pytest.mark.parametrize(("batch", "options", "message"), [
    (1, {"max_shape": "image:8x3x32x32"}, "names 'image', which is not an input .inputs: input."),
    (1, {"max_shape": "input:8x3x32"}, "has 3 dims; input has 4"),
    (1, {"max_shape": "input:8x3x64x64"}, "axis 2 of input is static .32.; declare it dynamic with --dynamic input:2"),
    (1, {"min_shape": "input:8x3x32x32", "max_shape": "input:4x3x32x32"}, r"min 8 <= opt 8 <= max 4 does not hold"),
    (8, {"max_shape": "input:4x3x32x32"}, r"min 1 <= opt 8 <= max 4 does not hold \(opt defaults to the example size\)"),
])
def test_overrides_are_checked_against_the_spec(batch: int, options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        derive_profile(vision(3, 32, 32, batch=batch, dynamic_batch=True), **options)
    assert info.value.exit_code == 3


# ----------------------------------------------------------------------------- fitting to the parsed network


def test_fit_keeps_dynamic_inputs_and_leaves_static_ones_to_the_engine() -> None:
    spec = text(16, dynamic_batch=True)
    profile = derive_profile(spec)
    fitted, notes = fit_to_network(profile, spec, {"input_ids": [-1, 16], "attention_mask": [-1, 16]},
                                   map_inputs(spec.names, spec.names))
    assert fitted.to_dict() == profile.to_dict()
    assert notes == []


def test_fit_follows_an_axis_the_exporter_made_static_and_says_so() -> None:
    spec = text_with_dynamic_seq(16)
    profile = derive_profile(spec)
    fitted, notes = fit_to_network(profile, spec, {"input_ids": [-1, 16], "attention_mask": [-1, 16]},
                                   map_inputs(spec.names, spec.names))
    assert fitted.to_dict()["input_ids"] == {"min": [1, 16], "opt": [1, 16], "max": [32, 16]}
    assert any("fixed axis 1 of input_ids at 16 although it is declared dynamic" in n for n in notes)


def test_fit_skips_an_input_the_exporter_dropped_and_uses_renamed_ones() -> None:
    spec = text(16, dynamic_batch=True)
    dropped = map_inputs(spec.names, ["input_ids"])
    assert dropped == {"input_ids": "input_ids", "attention_mask": None}
    fitted, _ = fit_to_network(derive_profile(spec), spec, {"input_ids": [-1, 16]}, dropped)
    assert fitted.names() == ["input_ids"]

    renamed = map_inputs(spec.names, ["ids", "mask"])
    fitted, _ = fit_to_network(derive_profile(spec), spec, {"ids": [-1, 16], "mask": [-1, 16]}, renamed)
    assert fitted.to_dict()["mask"]["max"] == [32, 16]


def test_a_network_dynamic_where_the_spec_is_static_is_an_export_failure() -> None:
    spec = vision(3, 32, 32)
    with pytest.raises(ExportFailed, match=re.escape(
            "network input input has dynamic shape [-1, 3, 32, 32] but the input spec declares no dynamic axis for "
            "it (1x3x32x32); declare it with --dynamic")):
        fit_to_network(None, spec, {"input": [-1, 3, 32, 32]}, map_inputs(spec.names, spec.names))
    assert fit_to_network(None, spec, {"input": [1, 3, 32, 32]}, map_inputs(spec.names, spec.names)) == (None, [])


def test_unmatched_onnx_inputs_are_an_export_failure() -> None:
    with pytest.raises(ExportFailed, match=re.escape("input(s) x that match none of the model's inputs")):
        map_inputs(["input_ids", "attention_mask"], ["x"])


def test_calibration_profile_uses_one_sample_per_engine_input() -> None:
    import numpy as np

    samples = [{"input_ids": np.zeros((1, 16), np.int64), "attention_mask": np.ones((1, 16), np.int64)}]
    assert calibration_shapes(samples, {"input_ids": "ids", "attention_mask": None}) == {"ids": (1, 16)}
    with pytest.raises(ConfigError, match="--sample-inputs has no array for input 'x'"):
        calibration_shapes(samples, {"x": "x"})


def test_profile_contains_checks_every_axis() -> None:
    spec = InputSpec([TensorSpec("x", (2, 8), dynamic={0: "batch"})])
    profile = derive_profile(spec, max_batch=4)
    assert profile.contains("x", (4, 8)) and profile.contains("x", (1, 8))
    assert not profile.contains("x", (5, 8)) and not profile.contains("x", (2, 9)) and not profile.contains("x", (2,))

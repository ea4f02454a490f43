"""The one line a user reads when TensorRT's ONNX parser refuses a model: every node by name and op, with reasons."""

from __future__ import annotations

from modelport_tensorrt.build import MAX_NODES_IN_MESSAGE, describe_parser_failure


def test_every_refused_node_is_named_with_its_op_and_the_parser_reason() -> None:
    errors = [
        {"node": 12, "name": "/blocks.0/attn/Einsum", "op": "Einsum", "code": "ErrorCode.UNSUPPORTED_NODE",
         "desc": "Assertion failed: equation is not supported\n  (more)"},
        {"node": 40, "name": "node_NonZero_40", "op": "NonZero", "code": "UNSUPPORTED_NODE_DATATYPE", "desc": "bool input"},
    ]
    line = describe_parser_failure(errors, [])
    assert line == (
        "tensorrt: TensorRT's ONNX parser refused the model: 2 node(s) TensorRT cannot build (ops: Einsum, NonZero): "
        "/blocks.0/attn/Einsum (Einsum): UNSUPPORTED_NODE: Assertion failed: equation is not supported (more); "
        "node_NonZero_40 (NonZero): UNSUPPORTED_NODE_DATATYPE: bool input"
    )
    assert "\n" not in line


def test_supports_model_adds_nodes_the_errors_did_not_name_once_each() -> None:
    errors = [{"node": 3, "name": "n3", "op": "Foo", "code": "UNSUPPORTED_NODE", "desc": "no importer"}]
    unsupported = [{"node": 3, "name": "n3", "op": "Foo"}, {"node": 4, "name": "n4", "op": "Bar"}]
    line = describe_parser_failure(errors, unsupported)
    assert line.count("n3 (Foo)") == 1
    assert "n4 (Bar): not supported by this TensorRT" in line
    assert "2 node(s) TensorRT cannot build (ops: Bar, Foo)" in line


def test_long_lists_are_cut_with_a_count_and_graph_errors_are_kept() -> None:
    unsupported = [{"node": i, "name": f"n{i}", "op": "Op"} for i in range(MAX_NODES_IN_MESSAGE + 5)]
    graph = [{"node": -1, "name": None, "op": None, "code": "INVALID_GRAPH", "desc": "opset 30 is not supported"}]
    line = describe_parser_failure(graph, unsupported)
    assert f"{MAX_NODES_IN_MESSAGE + 5} node(s)" in line
    assert "; and 5 more" in line
    assert f"n{MAX_NODES_IN_MESSAGE}" not in line.split("; and")[0]
    assert line.endswith("— INVALID_GRAPH: opset 30 is not supported")


def test_a_refusal_without_details_still_says_so() -> None:
    assert describe_parser_failure([], []).endswith("refused the model: the parser gave no reason")

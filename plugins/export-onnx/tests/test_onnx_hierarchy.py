"""``modelport inspect --format/--check/--graphml``: ONNX nodes by the PyTorch module that produced them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import torch
from modelport.testing import run_cli
from torch import nn


class Attention(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, -1)
        return self.proj(torch.softmax(q @ k.transpose(-1, -2) / 4.0, -1) @ v)


class Block(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.attn = Attention(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm(x))
        return x + self.mlp(x)


class Nested(nn.Module):
    """Blocks in a ModuleList, each with an attention and an MLP: three levels below the root."""

    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.stem = nn.Linear(8, d)
        self.blocks = nn.ModuleList([Block(d), Block(d)])
        self.head = nn.Linear(d, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(1))


@pytest.fixture(scope="module")
def nested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import modelport
    from modelport.engine.inputs import InputSpec, parse_input

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("nested") / "onnx"
    res = modelport.export(Nested().eval(), ["onnx"], InputSpec([parse_input("x:1x6x8:float32")]), output_dir=out)
    assert res["onnx"].status == "passed", res["onnx"].error
    return out


def test_summary_groups_nodes_by_module_in_tree_order(nested):
    r = run_cli("inspect", str(nested), "--format", "summary")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert list(rows)[:3] == ["(root)", "blocks.0", "blocks.0.attn"] and list(rows)[-1] == "stem"
    assert "Block" in rows["blocks.0"] and "Attention" in rows["blocks.0.attn"] and "Linear" in rows["blocks.0.attn.qkv"]
    # indentation follows the module tree: blocks.0.attn.qkv is two levels below blocks.0
    indent = {name: len(line) - len(line.lstrip()) for name, line in rows.items()}
    assert indent["blocks.0.attn.qkv"] == indent["blocks.0.attn"] + 2 == indent["blocks.0"] + 4
    assert lines[-1].endswith(" nodes")

    r = run_cli("inspect", str(nested), "--format", "summary", "--module", "blocks.1.mlp")
    names = [line.split()[0] for line in r.stdout.splitlines()[1:-1]]
    assert names and all(n.startswith("blocks.1.mlp.") for n in names), r.stdout


def test_csv_and_json_list_every_node_once(nested):
    import onnx

    graph = onnx.load(str(nested / "model.onnx"), load_external_data=False).graph
    r = run_cli("inspect", str(nested), "--format", "csv")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["node"] for row in rows] == [n.name for n in graph.node]
    assert {row["op"] for row in rows} == {n.op_type for n in graph.node}
    assert all(row["module"] != "" or row["node"] for row in rows)
    qkv = [row for row in rows if row["module"] == "blocks.1.attn.qkv"]
    assert qkv and {row["class"] for row in qkv if row["inferred"] == "False"} == {"torch.nn.modules.linear.Linear"}

    data = json.loads(run_cli("inspect", str(nested), "--format", "json", "--module", "blocks.0.attn").stdout)
    assert {g["module"] for g in data["modules"]} == {"blocks.0.attn", "blocks.0.attn.qkv", "blocks.0.attn.proj"}
    assert {n["module"] for n in data["nodes"]} == {"blocks.0.attn", "blocks.0.attn.qkv", "blocks.0.attn.proj"}


def test_check_passes_on_an_export_and_names_the_offending_nodes(nested, tmp_path):
    import onnx

    r = run_cli("inspect", str(nested), "--check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "hierarchy check passed" in r.stdout

    model = onnx.load(str(nested / "model.onnx"))
    compute = [n for n in model.graph.node if n.op_type != "Constant"]
    scoped = [n for n in compute if any(p.key == "pkg.torch.onnx.name_scopes" for p in n.metadata_props)]
    untagged, moved = scoped[0], scoped[-1]
    del untagged.metadata_props[:]
    untagged.name = "untagged_node"
    for p in moved.metadata_props:  # a chain that does not nest: blocks.0 → blocks.1.attn
        if p.key == "pkg.torch.onnx.name_scopes":
            p.value = str(["", "blocks.0", "blocks.1.attn", "op"])
        elif p.key == "pkg.modelport.module":
            p.value = "blocks.1.attn"
    bad = tmp_path / "bad.onnx"
    onnx.save(model, str(bad))
    r = run_cli("inspect", str(bad), "--check")
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: hierarchy check failed: 1 of {len(compute)} compute nodes untagged, 1 inconsistent"]
    assert f"untagged: untagged_node ({untagged.op_type})" in r.stdout
    assert f"inconsistent: {moved.name}" in r.stdout and "'blocks.1.attn' is not inside 'blocks.0'" in r.stdout


def test_graphml_holds_the_module_tree(nested, tmp_path):
    import networkx as nx

    out = tmp_path / "tree.graphml"
    r = run_cli("inspect", str(nested), "--graphml", str(out))
    assert r.returncode == 0, r.stderr
    graph = nx.read_graphml(out)
    assert nx.is_tree(graph) and graph.in_degree("(root)") == 0
    assert set(graph.successors("blocks.0")) >= {"blocks.0.norm", "blocks.0.attn", "blocks.0.mlp"}
    assert set(graph.successors("blocks.0.attn")) == {"blocks.0.attn.qkv", "blocks.0.attn.proj"}
    assert graph.nodes["blocks.0.attn"]["class"].endswith("Attention")
    assert graph.nodes["blocks.1.mlp.0"]["nodes"] >= 1
    assert f"wrote {out}" in r.stderr


def test_a_format_without_module_paths_says_so(tmp_path):
    import modelport
    from modelport.engine.inputs import InputSpec, parse_input

    out = tmp_path / "pt2"
    res = modelport.export(Nested().eval(), ["pt2"], InputSpec([parse_input("x:1x6x8:float32")]), output_dir=out)
    assert res["pt2"].exit_code == 0
    r = run_cli("inspect", str(out), "--format", "summary")
    assert r.returncode == 3 and "records no PyTorch module paths" in r.stderr


def test_check_against_the_model_module_tree(nested, tmp_path):
    r = run_cli("inspect", str(nested), "--check", "--model", f"{__file__}:Nested")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "consistent with the model's" in r.stdout

    other = tmp_path / "other.py"  # the same layout, but the blocks are called layers
    other.write_text(Path(__file__).read_text().replace("self.blocks", "self.layers"))
    r = run_cli("inspect", str(nested), "--check", "--model", f"{other}:Nested")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "tagged 'blocks.0.attn.qkv', which is no module of the model" in r.stdout
    assert r.stderr.startswith("error: hierarchy check failed: 0 of")


def test_a_conv_with_its_batchnorm_folded_in_says_so_in_the_summary(tmp_path):
    """The exporter folds BatchNorm into the Conv before it; the summary counts the Conv under its weight's module
    and names the norm it absorbed instead of leaving the class blank."""
    import modelport
    from modelport.engine.inputs import InputSpec, parse_input

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    out = tmp_path / "onnx"
    res = modelport.export(model, ["onnx"], InputSpec([parse_input("x:1x3x8x8:float32")]), output_dir=out)
    assert res["onnx"].status == "passed", res["onnx"].error
    r = run_cli("inspect", str(out), "--format", "summary")
    assert r.returncode == 0, r.stderr
    (conv,) = [line.split() for line in r.stdout.splitlines() if "Conv×" in line]
    assert conv[:2] == ["0", "+1"], r.stdout  # module 0 (the conv), fused with module 1 (the norm)

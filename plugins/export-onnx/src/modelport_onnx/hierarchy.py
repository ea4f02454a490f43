"""Each ONNX node's PyTorch module path (``blocks.0.attn.qkv``), kept in node ``metadata_props`` across rewrites.

The dynamo exporter writes ``pkg.torch.onnx.name_scopes`` on the nodes it translates; the legacy exporter encodes
the scope in node names (``/blocks.0/attn/qkv/MatMul``). onnxslim, onnxruntime's quantization pre-processing and
the fp16 converter drop or never write node metadata, so the path is captured before those rewrites, keyed by node
name and by output name, and restored after; nodes that a rewrite created (a fused op, a Cast, a QDQ pair) take the
common module of their neighbours and are flagged as inferred.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MODULE_KEY = "pkg.modelport.module"
INFERRED_KEY = "pkg.modelport.module_inferred"
NAME_SCOPES_KEY = "pkg.torch.onnx.name_scopes"
CLASS_KEY = "pkg.torch.onnx.class_hierarchy"
NAMESPACE_KEY = "namespace"
# Kept on nodes: the module path and class. Dropped: pkg.torch.onnx.stack_trace and fx_node, which carry absolute
# source paths of the machine that exported the model into a file meant to be published.
KEEP_KEYS = (MODULE_KEY, INFERRED_KEY, NAME_SCOPES_KEY, CLASS_KEY, NAMESPACE_KEY)
ROOT_LABEL = "(root)"


def iter_nodes(graph: Any) -> Iterator[Any]:
    """Every node of ``graph`` and of the subgraphs of its If/Loop/Scan nodes."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from iter_nodes(attr.g)
            for g in attr.graphs:
                yield from iter_nodes(g)


def props_of(node: Any) -> dict[str, str]:
    return {p.key: p.value for p in node.metadata_props}


def set_props(node: Any, props: dict[str, str]) -> None:
    del node.metadata_props[:]
    for key, value in props.items():
        entry = node.metadata_props.add()
        entry.key = key
        entry.value = value


def module_from_props(props: dict[str, str]) -> str | None:
    """The module path recorded by us or by the dynamo exporter, or None."""
    if MODULE_KEY in props:
        return props[MODULE_KEY]
    scopes = props.get(NAME_SCOPES_KEY)
    if scopes:
        try:
            names = ast.literal_eval(scopes)
        except (ValueError, SyntaxError):
            names = None
        if isinstance(names, list) and names:
            # the last scope is the op itself (an FX node name); the one before it is the deepest module
            return str(names[-2]) if len(names) >= 2 else ""
    namespace = props.get(NAMESPACE_KEY)
    if namespace:
        parts = namespace.split("/")
        if len(parts) >= 2:
            return parts[-2].split(":", 1)[0].strip()
    return None


def module_from_legacy_name(name: str) -> str | None:
    """``/blocks.0/attn/qkv/MatMul`` → ``blocks.0.attn.qkv``; ``/Add`` → root; other names → None."""
    if not name.startswith("/"):
        return None
    parts = [p for p in name.split("/") if p]
    return ".".join(parts[:-1])


def module_class(props: dict[str, str]) -> str | None:
    """The class of the deepest module (``torch.nn.modules.linear.Linear``) when the exporter recorded it."""
    text = props.get(CLASS_KEY)
    if not text:
        return None
    try:
        classes = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    if isinstance(classes, list) and len(classes) >= 2:
        return str(classes[-2])
    return None


def node_module(node: Any) -> str | None:
    """The module path kept on a node of a written model (our key, else the exporter's)."""
    return module_from_props(props_of(node))


@dataclass
class Capture:
    """Module metadata of every node before a rewrite, by node name and by output name."""

    by_name: dict[str, dict[str, str]] = field(default_factory=dict)
    by_output: dict[str, dict[str, str]] = field(default_factory=dict)


def capture(model: Any, legacy: bool = False) -> Capture:
    """Record each node's module path (and the exporter's scope keys) before the graph is rewritten."""
    cap = Capture()
    for node in iter_nodes(model.graph):
        props = props_of(node)
        path = module_from_props(props)
        if path is None and legacy:
            path = module_from_legacy_name(node.name)
        if path is None:
            continue
        kept = {k: v for k, v in props.items() if k in KEEP_KEYS and k != MODULE_KEY}
        kept[MODULE_KEY] = path
        if node.name:
            cap.by_name.setdefault(node.name, kept)
        for out in node.output:
            if out:
                cap.by_output.setdefault(out, kept)
    return cap


def _common_module(paths: list[str]) -> str:
    split = [p.split(".") if p else [] for p in paths]
    common: list[str] = []
    for parts in zip(*split):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return ".".join(common)


def restore(model: Any, cap: Capture) -> dict[str, int]:
    """Put the captured module metadata back on every node; infer it for nodes a rewrite created.

    Returns counts: nodes, restored (matched by name or output), inferred (from neighbours).
    """
    nodes = list(iter_nodes(model.graph))
    path_of: dict[int, str] = {}
    restored = 0
    for i, node in enumerate(nodes):
        props = cap.by_name.get(node.name) if node.name else None
        if props is None:
            props = next((cap.by_output[o] for o in node.output if o in cap.by_output), None)
        if props is None:
            continue
        set_props(node, dict(props))
        path_of[i] = props[MODULE_KEY]
        restored += 1

    producers: dict[str, int] = {}
    consumers: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        for o in node.output:
            producers[o] = i
        for name in node.input:
            consumers.setdefault(name, []).append(i)
    missing = [i for i in range(len(nodes)) if i not in path_of]
    inferred = 0
    # propagate from neighbours until nothing changes: a Cast before a MatMul takes the MatMul's module
    while missing:
        progress = []
        for i in missing:
            node = nodes[i]
            around = [producers[n] for n in node.input if n in producers]
            around += [j for o in node.output for j in consumers.get(o, [])]
            known = [path_of[j] for j in around if j in path_of]
            if known:
                progress.append((i, _common_module(known)))
        if not progress:
            break
        for i, path in progress:
            path_of[i] = path
        done = {i for i, _ in progress}
        missing = [i for i in missing if i not in done]
    for i in range(len(nodes)):
        if i in path_of and i not in missing and MODULE_KEY not in props_of(nodes[i]):
            set_props(nodes[i], {MODULE_KEY: path_of[i], INFERRED_KEY: "1"})
            inferred += 1
    for i in missing:  # isolated nodes (no neighbour knows its module): the model itself
        set_props(nodes[i], {MODULE_KEY: "", INFERRED_KEY: "1"})
        inferred += 1
    return {"nodes": len(nodes), "restored": restored, "inferred": inferred}


def strip(model: Any) -> None:
    """Remove node metadata (hierarchy off): smaller files, no source paths."""
    for node in iter_nodes(model.graph):
        del node.metadata_props[:]


def _module_sort_key(label: str) -> list[tuple[int, Any]]:
    """Tree order with numeric indices compared as numbers: root, blocks.0, blocks.0.attn, blocks.2, blocks.10."""
    if label == ROOT_LABEL:
        return []
    return [(0, int(p)) if p.isdigit() else (1, p) for p in label.split(".")]


WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul")


def weight_owner(node: Any, initializers: set[str]) -> str | None:
    """The module whose parameter a weighted op reads (``stem.conv.weight`` → ``stem.conv``), or None.

    When the exporter folds a BatchNorm into the Conv before it, the fused Conv keeps the BatchNorm's scope (its
    output is the BatchNorm's), but its weight initializer still carries the convolution's parameter name.
    """
    if node.op_type not in WEIGHTED_OPS:
        return None
    for name in list(node.input)[1:]:
        if name in initializers and name.endswith(".weight") and "::" not in name:
            return name[: -len(".weight")]
    return None


def group_by_module(model: Any, prefix: str | None = None) -> list[dict[str, Any]]:
    """Nodes grouped by module path in tree order: module, class, node count, op types (for ``inspect``).

    A weighted op whose recorded scope is another module than its weight's (a Conv with a BatchNorm folded in)
    is counted under the weight's module, with the scope it was recorded under listed as ``fused``.
    """
    initializers = {i.name for i in model.graph.initializer}
    groups: dict[str, dict[str, Any]] = {}
    for node in model.graph.node:  # top-level nodes, as counted by ``nodes`` and ``ops``
        props = props_of(node)
        path = module_from_props(props)
        if path is None:
            path = module_from_legacy_name(node.name)
        fused = None
        owner = weight_owner(node, initializers)
        # only a folded norm moves (a tied weight, e.g. an LM head reading the embedding, stays where it was used)
        if owner is not None and path is not None and owner != path and "Norm" in (module_class(props) or ""):
            fused, path = path, owner
        label = path if path else ROOT_LABEL
        if prefix and not (path == prefix or (path or "").startswith(prefix + ".")):
            continue
        g = groups.setdefault(label, {"module": label, "class": None, "nodes": 0, "ops": {}})
        g["nodes"] += 1
        g["ops"][node.op_type] = g["ops"].get(node.op_type, 0) + 1
        if fused is not None:
            g.setdefault("fused", [])
            if fused not in g["fused"]:
                g["fused"].append(fused)
        elif g["class"] is None:
            g["class"] = module_class(props)
    out = []
    for g in sorted(groups.values(), key=lambda g: _module_sort_key(g["module"])):
        g["ops"] = dict(sorted(g["ops"].items(), key=lambda kv: (-kv[1], kv[0])))
        if g["class"] is None:
            del g["class"]
        out.append(g)
    return out


# ----------------------------------------------------------------------------- inspect: nodes, check, tree

#: Ops that compute nothing a module owns: constants folded or emitted by the exporter.
UNOWNED_OPS = ("Constant",)


def _chain(props: dict[str, str], key: str) -> list[str] | None:
    """A list the exporter stored as text on a node (module names, class names), without the op's own entry."""
    text = props.get(key)
    if not text:
        return None
    try:
        items = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    return [str(n) for n in items[:-1]] if isinstance(items, list) and items else None


def _scope_chain(props: dict[str, str]) -> list[str] | None:
    """The exporter's module chain for a node (``['', 'blocks.0', 'blocks.0.attn']``), without the op's own name."""
    return _chain(props, NAME_SCOPES_KEY)


def _class_chain(props: dict[str, str]) -> list[str] | None:
    """The classes of that chain (``['Model', 'Block', 'Attention']``)."""
    return _chain(props, CLASS_KEY)


def node_rows(model: Any, prefix: str | None = None) -> list[dict[str, Any]]:
    """One row per top-level node: module (``""`` for the model itself, None when untagged), class, name, op, inferred."""
    rows = []
    for node in model.graph.node:
        props = props_of(node)
        path = module_from_props(props)
        if path is None:
            path = module_from_legacy_name(node.name)
        if prefix and not (path == prefix or (path or "").startswith(prefix + ".")):
            continue
        rows.append({"module": path, "class": module_class(props), "node": node.name, "op": node.op_type,
                     "inferred": props.get(INFERRED_KEY) == "1"})
    return rows


def check(model: Any) -> dict[str, Any]:
    """Every compute node tagged with a module, and the tags forming one module tree.

    Inconsistent: a node whose recorded module chain does not nest (``blocks.0`` → ``blocks.0.attn``), whose tag is
    not the deepest module of its own chain, or that gives a module another class than the other nodes of it do.
    """
    untagged: list[dict[str, str]] = []
    bad: list[dict[str, str]] = []
    classes: dict[str, dict[str, list[str]]] = {}
    compute = 0
    for node in iter_nodes(model.graph):
        if node.op_type in UNOWNED_OPS:
            continue
        compute += 1
        props = props_of(node)
        path = module_from_props(props)
        if path is None:
            path = module_from_legacy_name(node.name)
        if path is None:
            untagged.append({"node": node.name, "op": node.op_type})
            continue
        chain, cls = _scope_chain(props), _class_chain(props)
        if chain is None:
            continue
        for parent, child in itertools.pairwise(chain):
            if parent and not child.startswith(parent + "."):
                bad.append({"node": node.name, "op": node.op_type, "why": f"module {child!r} is not inside {parent!r}"})
                break
        if chain and path != chain[-1] and props.get(INFERRED_KEY) != "1":
            bad.append({"node": node.name, "op": node.op_type,
                        "why": f"tagged {path!r} but its scope chain ends at {chain[-1]!r}"})
        if cls and len(cls) == len(chain):
            for module, klass in zip(chain, cls):
                classes.setdefault(module, {}).setdefault(klass, []).append(node.name)
    for module, by_class in sorted(classes.items()):
        if len(by_class) > 1:
            kinds = ", ".join(f"{k} ({len(v)} nodes, e.g. {v[0]})" for k, v in sorted(by_class.items()))
            bad.append({"node": min(v[0] for v in by_class.values()), "op": "",
                        "why": f"module {module or ROOT_LABEL!r} recorded as different classes: {kinds}"})
    return {"ok": not untagged and not bad, "compute_nodes": compute, "tagged": compute - len(untagged),
            "untagged": untagged, "inconsistent": bad}


def module_tree(model: Any) -> list[dict[str, Any]]:
    """The module hierarchy the nodes record: module, class, parent, own node count — root first, tree order.

    A module's parent is the one before it in the exporter's scope chain, else its longest dotted prefix that is a
    module of the tree (a ModuleList that is never called itself, ``blocks``, does not appear)."""
    info: dict[str, dict[str, Any]] = {"": {"module": "", "class": None, "parent": None, "nodes": 0}}
    for node in model.graph.node:
        props = props_of(node)
        path = module_from_props(props)
        if path is None:
            path = module_from_legacy_name(node.name) or ""
        chain, cls = _scope_chain(props) or [], _class_chain(props) or []
        for i, module in enumerate(chain):
            entry = info.setdefault(module, {"module": module, "class": None, "parent": None, "nodes": 0})
            if i and entry["parent"] is None and module:
                entry["parent"] = chain[i - 1]
            if entry["class"] is None and len(cls) == len(chain):
                entry["class"] = cls[i]
        info.setdefault(path, {"module": path, "class": None, "parent": None, "nodes": 0})["nodes"] += 1
    for module, entry in info.items():
        if module and entry["parent"] is None:
            parts = module.split(".")
            entry["parent"] = next((".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)
                                    if ".".join(parts[:i]) in info), "")
    return [info[k] for k in sorted(info, key=lambda m: _module_sort_key(m or ROOT_LABEL))]

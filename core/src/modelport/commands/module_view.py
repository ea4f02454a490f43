"""``modelport inspect --format summary|detailed|csv``, ``--check`` and ``--graphml``: an artifact's nodes by module.

A format's ``inspect`` answers with ``modules`` (nodes grouped by the PyTorch module that produced them), and on
request ``nodes`` (one row per node), ``hierarchy_check`` and ``module_tree``; this module only renders them, so
any format that keeps module paths (ONNX today) gets the same views.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

VIEWS = ("summary", "detailed", "json", "csv")
ROOT = "(root)"
CSV_FIELDS = ("module", "class", "node", "op", "inferred")


def _label(module: str | None) -> str:
    return ROOT if module in ("", ROOT) else "(untagged)" if module is None else str(module)


def _short_class(cls: str | None) -> str:
    return (cls or "").rsplit(".", 1)[-1]


def _ops(ops: Mapping[str, int], limit: int = 4) -> str:
    items = list(ops.items())
    text = ", ".join(f"{op}×{n}" for op, n in items[:limit])
    return text + (f", +{len(items) - limit} more" if len(items) > limit else "")


def render_summary(info: Mapping[str, Any]) -> str:
    """One line per module: indented by depth, class, node count and its most common ops."""
    groups = info.get("modules") or []
    if not groups:
        return str(info.get("modules_note") or (info.get("module_filter") or {}).get("note") or "no module paths recorded")
    known = {g["module"] for g in groups}
    width = max(len(_label(g["module"])) + 2 * _depth(g["module"], known) for g in groups)
    lines = [f"{'module'.ljust(width)}  {'class':<20} {'nodes':>5}  ops"]
    for g in groups:
        name = "  " * _depth(g["module"], known) + _label(g["module"])
        # a Conv with a BatchNorm folded in is counted under the conv (its weight's module): say which module it absorbed
        cls = _short_class(g.get("class")) or ("+" + ",".join(g["fused"]) if g.get("fused") else "")
        lines.append(f"{name.ljust(width)}  {cls:<20} {g['nodes']:>5}  {_ops(g['ops'])}")
    total = sum(g["nodes"] for g in groups)
    lines.append(f"{len(groups)} modules, {total} nodes")
    return "\n".join(lines)


def _depth(module: str | None, known: set[str | None]) -> int:
    """How many of ``known`` are ancestors of ``module`` (the root counts for every module)."""
    if module in ("", ROOT) or module is None:
        return 0
    parts = module.split(".")
    return 1 + sum(1 for i in range(1, len(parts)) if ".".join(parts[:i]) in known)


def render_detailed(info: Mapping[str, Any]) -> str:
    """Every node under its module, in tree order (inferred tags marked ``~``)."""
    rows = info.get("nodes") or []
    by_module: dict[str | None, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_module.setdefault(row.get("module"), []).append(row)
    order = [g["module"] for g in info.get("modules") or []]
    order = [None if m is None else ("" if m == ROOT else m) for m in order]
    order += [m for m in by_module if m not in order]
    known = set(order)
    lines = []
    for module in order:
        nodes = by_module.get(module)
        if not nodes:
            continue
        pad = "  " * _depth(module, known)
        cls = next((n.get("class") for n in nodes if n.get("class")), None)
        lines.append(f"{pad}{_label(module)}" + (f"  [{_short_class(cls)}]" if cls else "") + f"  ({len(nodes)} nodes)")
        lines += [f"{pad}  {'~' if n.get('inferred') else '-'} {n['op']:<18} {n['node']}" for n in nodes]
    return "\n".join(lines) if lines else "no nodes"


def render_csv(info: Mapping[str, Any]) -> str:
    """One CSV row per node: module, class, node, op, inferred (a spreadsheet or pandas reads it)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in info.get("nodes") or []:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in CSV_FIELDS})
    return out.getvalue()


def model_tree(model: Any) -> dict[str, str]:
    """The model's module tree: path (``""`` for the model) → class (``torch.nn.modules.linear.Linear``)."""
    return {name: f"{type(m).__module__}.{type(m).__qualname__}" for name, m in model.named_modules()}


def check_against_model(result: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
                        tree: Mapping[str, str]) -> dict[str, Any]:
    """``result`` (a format's ``hierarchy_check``) with every node whose tag names no module of the model, or a module
    of another class than the model's, added to ``inconsistent``. Classes are compared by name (a model file imported
    under another module name keeps its class names)."""
    bad = list(result.get("inconsistent") or [])
    for row in rows:
        module = row.get("module")
        if module is None:
            continue
        if module not in tree:
            bad.append({"node": row["node"], "op": row["op"], "why": f"tagged {module!r}, which is no module of the model"})
        elif row.get("class") and _short_class(row["class"]) != _short_class(tree[module]):
            bad.append({"node": row["node"], "op": row["op"],
                        "why": f"module {module!r} recorded as {row['class']}, the model's is {tree[module]}"})
    return {**result, "inconsistent": bad, "ok": not result.get("untagged") and not bad, "model_modules": len(tree)}


def render_check(result: Mapping[str, Any], limit: int = 20) -> list[str]:
    """The ``--check`` verdict: one line, then one line per offending node (the first ``limit``)."""
    if result.get("ok"):
        tree = f"consistent with the model's {result['model_modules']} modules" if "model_modules" in result else "one module tree"
        return [f"hierarchy check passed: {result['tagged']}/{result['compute_nodes']} compute nodes tagged, {tree}"]
    offending = [f"untagged: {u['node']} ({u['op']})" for u in result.get("untagged") or []]
    offending += [f"inconsistent: {b['node']}" + (f" ({b['op']})" if b.get("op") else "") + f" — {b['why']}"
                  for b in result.get("inconsistent") or []]
    head = (f"hierarchy check failed: {len(result.get('untagged') or [])} of {result['compute_nodes']} compute nodes "
            f"untagged, {len(result.get('inconsistent') or [])} inconsistent")
    more = [f"... and {len(offending) - limit} more (--format json lists all)"] if len(offending) > limit else []
    return [head, *offending[:limit], *more]


def write_graphml(tree: Sequence[Mapping[str, Any]], path: str | Path) -> int:
    """Write the module hierarchy as GraphML (yEd, Gephi, networkx read it): one node per module with its class and
    own node count, an edge from each module to its children. Returns the number of modules written."""
    import networkx as nx

    graph = nx.DiGraph(name="module hierarchy")
    for m in tree:
        graph.add_node(m["module"] or ROOT, label=_label(m["module"]), module=m["module"],
                       **{"class": m.get("class") or "", "nodes": int(m.get("nodes") or 0)})
    for m in tree:
        if m.get("parent") is not None and m["module"]:
            graph.add_edge(m["parent"] or ROOT, m["module"])
    nx.write_graphml(graph, str(path), named_key_ids=True)
    return graph.number_of_nodes()

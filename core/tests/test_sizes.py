"""Sizes are shown one way everywhere: binary units (KiB, MiB) from one helper, ``strings.human_size``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import modelport
from modelport.terminal.strings import human_size


def test_human_size_uses_binary_units():
    assert [human_size(n) for n in (512, 1536, 5 << 20, 3 << 30)] == ["512 B", "1.5 KiB", "5.0 MiB", "3.0 GiB"]
    assert human_size(None) == "?" and human_size(None, "") == ""


def test_no_core_or_plugin_text_speaks_of_kb_or_mb():
    """A decimal unit in a message (``1.3 MB``) next to the helper's MiB is the twin this replaced."""
    roots = [Path(modelport.__file__).parent, *Path(__file__).resolve().parents[2].glob("plugins/*/src")]
    unit = re.compile(r"\d\s?[KMG]B\b|\{[^}]*\}\s?[KMG]B\b")
    found = []
    for root in roots:
        for path in root.rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = {id(n.body[0].value) for n in ast.walk(tree)  # prose for readers, not output
                          if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                          and n.body and isinstance(n.body[0], ast.Expr)}
            for node in ast.walk(tree):
                if id(node) in docstrings:
                    continue
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and unit.search(node.value):
                    found.append(f"{path.name}:{node.lineno}: {node.value.strip()[:60]}")
                if isinstance(node, ast.JoinedStr) and unit.search(ast.unparse(node)):
                    found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)[:60]}")
    assert not found, found

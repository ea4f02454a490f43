"""docs/cli.md is generated from the click commands: it fails here when a command or option changed without it."""

from __future__ import annotations

import importlib
import importlib.util

import click
import pytest
from conftest import ROOT, run_cli

GEN = ROOT / "docs" / "gen_cli.py"


def _gen():
    spec = importlib.util.spec_from_file_location("gen_cli", GEN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_up_to_date():
    gen = _gen()
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == gen.render(), "docs/cli.md is out of date: run `python docs/gen.py` and commit the result"


def test_cli_reference_documents_every_command_and_option():
    from modelport.cli import main

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")

    def walk(cmd: click.Command, path: list[str]) -> None:
        assert f"## `{' '.join(path)}`" in text, path
        for p in cmd.params:
            if isinstance(p, click.Option):
                assert f"`{p.opts[0]}`" in text, (path, p.opts)
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                if not sub.hidden:  # a kept old spelling (`plugin new`) is not documented twice
                    walk(sub, [*path, name])

    walk(main, ["modelport"])


def test_docs_gen_check_names_the_stale_page_and_a_rewrite_fixes_it(tmp_path, monkeypatch, capsys):
    """`python docs/gen.py --check` exits 1 naming the stale page; `python docs/gen.py` rewrites only that one."""
    monkeypatch.syspath_prepend(str(ROOT / "docs"))
    gen = importlib.import_module("gen")
    pages = {}
    for name in ("gen_cli", "gen_metadata", "gen_plugins"):
        module = importlib.import_module(name)
        copy = tmp_path / module.OUT.name
        copy.write_text(module.OUT.read_text(encoding="utf-8"), encoding="utf-8")
        monkeypatch.setattr(module, "OUT", copy)
        pages[name] = copy
    assert gen.main(["--check"]) == 0
    pages["gen_cli"].write_text("# old\n")
    assert gen.main(["--check"]) == 1
    assert "cli.md is out of date" in capsys.readouterr().err
    assert gen.main([]) == 0
    assert "wrote" in capsys.readouterr().out
    assert gen.main(["--check"]) == 0
    assert pages["gen_cli"].read_text(encoding="utf-8") == (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("args", [["--help"], ["plugins", "--help"], ["plugins", "new", "--help"], ["plugin", "new", "--help"],
                                  ["publish", "--help"], ["pull", "--help"]])
def test_help_of_every_new_command_runs(args):
    r = run_cli(*args, timeout=60)
    assert r.returncode == 0 and "Usage:" in r.stdout, r.stderr

"""The documentation cannot drift: every command in docs/getting-started.md runs, and the site builds strictly.

Blocks in getting-started.md carry a marker on the line before the fence:

* ``<!-- test -->``               run the ```bash block (in one temporary folder shared by the whole page, in order)
* ``<!-- test: needs NAME -->``   run it when format or publish target NAME is available here, else skip with why
* ``<!-- test: file NAME -->``    write the block's content to NAME in that folder (a model file, a script)
* ``<!-- test: install -->``      pip commands: checked to name distributions of this repository, not run
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGE = DOCS / "getting-started.md"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
MARKER = re.compile(r"^<!--\s*test(?::\s*(\w+)(?:\s+(\S+))?)?\s*-->$")


@dataclass
class Block:
    index: int
    line: int
    lang: str
    code: str
    kind: str | None  # run | needs | file | install | None (unmarked)
    arg: str | None = None

    @property
    def label(self) -> str:
        first = next((ln for ln in self.code.splitlines() if ln.strip()), "").strip()
        return f"{self.index:02d}-{first[:60]}"


def parse_blocks(text: str) -> list[Block]:
    blocks = []
    for i, m in enumerate(FENCE.finditer(text)):
        before = [ln.strip() for ln in text[: m.start()].splitlines() if ln.strip()]
        marker = MARKER.match(before[-1]) if before else None
        kind = arg = None
        if marker:
            kind = marker.group(1) or "run"
            arg = marker.group(2)
        blocks.append(Block(i, text[: m.start()].count("\n") + 1, m.group(1), m.group(2), kind, arg))
    return blocks


BLOCKS = parse_blocks(PAGE.read_text(encoding="utf-8"))
RUNNABLE = [b for b in BLOCKS if b.kind in ("run", "needs")]


def test_every_shell_block_is_marked():
    unmarked = [f"line {b.line}" for b in BLOCKS if b.lang in ("bash", "sh", "console") and b.kind is None]
    assert not unmarked, f"getting-started.md: bash blocks without a <!-- test... --> marker at {', '.join(unmarked)}"
    assert all(b.kind in ("run", "needs", "file", "install") for b in BLOCKS if b.kind), [b.kind for b in BLOCKS]
    assert len(RUNNABLE) >= 6


def _repo_distributions() -> set[str]:
    names = set()
    for pyproject in [ROOT / "core" / "pyproject.toml", *ROOT.glob("plugins/*/pyproject.toml")]:
        names.add(tomllib.loads(pyproject.read_text())["project"]["name"])
    return names


def test_install_commands_name_real_distributions():
    known = _repo_distributions()
    seen = 0
    for block in (b for b in BLOCKS if b.kind == "install"):
        for line in block.code.splitlines():
            words = line.split("#", 1)[0].split()
            if words[:2] != ["pip", "install"]:
                assert not words, f"install blocks hold pip install lines only: {line!r}"
                continue
            for name in (w for w in words[2:] if not w.startswith("-")):
                seen += 1
                assert name.split("[")[0] in known, f"getting-started.md installs {name}, which no pyproject.toml here defines"
    assert seen >= 2


def _available() -> set[str]:
    r = subprocess.run([sys.executable, "-m", "modelport", "formats", "--json"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    return {f["name"] for f in data["formats"] if f["can_export"]} | {
        p["name"] for p in data["publishers"] if p["status"] == "available"}


@pytest.fixture(scope="module")
def page_run(tmp_path_factory) -> dict[int, tuple[str, int | None, str]]:
    """Run the page top to bottom once: block index → (outcome, exit code, output)."""
    work = tmp_path_factory.mktemp("getting-started")
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           "COLUMNS": "160"}
    available = _available()
    results: dict[int, tuple[str, int | None, str]] = {}
    for block in BLOCKS:
        if block.kind == "file":
            (work / str(block.arg)).write_text(block.code, encoding="utf-8")
        elif block.kind == "needs" and block.arg not in available:
            results[block.index] = ("skipped", None, f"needs {block.arg}, which is not installed or not available here "
                                                     f"(see `modelport formats`)")
        elif block.kind in ("run", "needs"):
            r = subprocess.run(["bash", "-c", "set -euo pipefail\n" + block.code], cwd=work, env=env,
                               capture_output=True, text=True, timeout=600)
            results[block.index] = ("ran", r.returncode, r.stdout[-3000:] + r.stderr[-3000:])
    results[-1] = ("folder", None, str(work))
    return results


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.label for b in RUNNABLE])
def test_getting_started_command_runs(block, page_run):
    outcome, code, output = page_run[block.index]
    if outcome == "skipped":
        pytest.skip(output)
    assert code == 0, f"getting-started.md line {block.line} exited {code}:\n{block.code}\n---\n{output}"


def test_getting_started_leaves_what_it_promises(page_run):
    work = Path(page_run[-1][2])
    for rel in ("exports/pt2/model.pt2", "exports/pt2/metadata.json", "exports/pt2/bench.json",
                "registry/index.json", "deployed/model.pt2", "exports/api/model.pt2"):
        assert (work / rel).is_file(), rel
    versions = {e["version"] for e in json.loads((work / "registry" / "index.json").read_text())["exports"]}
    assert versions == {"v1", "v2"}


def _nav_pages(nav: list) -> list[str]:
    pages = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages.extend(_nav_pages(value) if isinstance(value, list) else [value])
    return pages


def test_mkdocs_nav_lists_every_page_and_only_existing_ones():
    yaml = pytest.importorskip("yaml", reason="PyYAML (a dependency of mkdocs) is not installed")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = _nav_pages(config["nav"])
    missing = [p for p in nav if not (DOCS / p).is_file()]
    assert not missing, f"mkdocs.yml names pages that do not exist: {missing}"
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    unlisted = [p for p in pages if p not in nav]
    assert not unlisted, f"add these pages to the nav in mkdocs.yml: {unlisted}"


def test_mkdocs_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (tests/requirements.txt)")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                        "-d", str(tmp_path / "site")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    for page in ("index.html", "getting-started/index.html", "cli/index.html", "plugins/index.html",
                 "metadata/index.html", "errors/index.html"):
        assert (tmp_path / "site" / page).is_file(), page

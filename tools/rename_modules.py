"""Rewrite wave 1's flat module names (``modelport.pipeline``) to the core's folders (``modelport.engine.pipeline``).

    python tools/rename_modules.py            # rewrite every tracked text file of the repository in place
    python tools/rename_modules.py --check    # list what would change; exit 1 if anything would
    python tools/rename_modules.py PATH...    # only these files and folders (a plugin's src/ and tests/)

The tables are core/src/modelport/aliases.py's (read by path: no install needed, so it runs on any branch).
What it rewrites: ``modelport.OLD`` (imports, monkeypatch targets, docs), ``modelport/OLD.py`` paths, and
``from modelport import OLD``. ``modelport.plugins`` / ``.cli`` / ``.testing`` used to be modules and are now
packages: inside core/src/modelport every name imported from them goes to the module itself (``plugins.host``,
``cli.app``, ``testing.kit``) so the layering test sees the real import; elsewhere (plugins, tests, docs, the
``modelport plugin new`` template) the public names (PACKAGES) stay on the package and other names move.
Lines that mention "wave 1" / "wave-1" talk about the old names and are left alone.
Lines it cannot rewrite safely are reported (``from modelport import (`` over several lines).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core" / "src" / "modelport"
SUFFIXES = {".py", ".md", ".toml", ".txt", ".cfg", ".yml", ".yaml", ".tmpl", ".ini", ".rst"}
SKIP = {"core/src/modelport/aliases.py", "tools/rename_modules.py", "core/tests/test_aliases.py"}


def _tables() -> tuple[dict[str, str], dict[str, tuple[str, tuple[str, ...]]]]:
    spec = importlib.util.spec_from_file_location("_modelport_aliases", CORE / "aliases.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MOVED, module.PACKAGES


MOVED, PACKAGES = _tables()


def _submodules(package: str) -> set[str]:
    folder = CORE / package
    return {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}


SUBMODULES = {pkg: _submodules(pkg) for pkg in PACKAGES}
_OLD = "|".join(sorted(MOVED, key=len, reverse=True))
_PKG = "|".join(PACKAGES)
# modelport.OLD as a whole dotted name, not a call (modelport.debug(...) is the API function)
DOTTED = re.compile(rf"(?<![\w.])modelport\.({_OLD})(?![\w(])")
PATH = re.compile(rf"(?<![\w.])modelport/({_OLD})\.py\b")
FROM_TOP = re.compile(r"^(?P<indent>[ \t]*)from modelport import (?P<names>[^()\n#]+?)(?P<tail>[ \t]*(#.*)?)$", re.M)
FROM_PKG = re.compile(rf"^(?P<indent>[ \t]*)from modelport\.(?P<pkg>{_PKG}) import (?P<names>\([^)]*\)|[^()\n#]+?)(?P<tail>[ \t]*(#.*)?)$", re.M)
# setattr(modelport.plugins, "_HOST", ...): patch the module that holds the name, not the package forwarding it
PKG_SETATTR = re.compile(rf"(?<=setattr\()modelport\.(?P<pkg>{_PKG})(?=\s*,)")
WAVE1 = re.compile(r"wave[ -]1", re.I)
KEEP = "\0rename-keep:"
PKG_DOTTED = re.compile(rf"(?<![\w.])modelport\.(?P<pkg>{_PKG})\.(?P<name>[A-Za-z_]\w*)")


def _concrete(path: Path) -> bool:
    """Core source imports the module itself; everything else may use the packages' public names."""
    return path.suffix == ".py" and CORE in path.resolve().parents


def _split_names(text: str) -> list[str]:
    return [n.strip() for n in text.strip().strip("()").replace("\n", " ").split(",") if n.strip()]


def _from_top(m: re.Match[str], concrete: bool) -> str:
    """``from modelport import pipeline, __version__`` → one import per new package."""
    keep: list[str] = []
    moved: dict[str, list[str]] = {}
    for item in _split_names(m["names"]):
        name, _, alias = item.partition(" as ")
        name, alias = name.strip(), alias.strip()
        if name in MOVED:
            target = "modelport." + MOVED[name]
        elif name in PACKAGES and concrete:
            target = f"modelport.{name}.{PACKAGES[name][0]}"
        else:
            keep.append(item)
            continue
        package, _, base = target.rpartition(".")
        shown = alias or name
        moved.setdefault(package, []).append(base if base == shown else f"{base} as {shown}")
    if not moved:
        return m[0]
    lines = [f"{m['indent']}from modelport import {', '.join(keep)}"] if keep else []
    lines += [f"{m['indent']}from {package} import {', '.join(names)}" for package, names in moved.items()]
    lines[0] += m["tail"] or ""
    return "\n".join(lines)


def _stays(pkg: str, name: str, concrete: bool) -> bool:
    """Whether ``name`` is imported from the package ``modelport.<pkg>`` rather than from its main module."""
    return name in SUBMODULES[pkg] or (not concrete and name in PACKAGES[pkg][1])


def _from_pkg(m: re.Match[str], concrete: bool) -> str:
    pkg = m["pkg"]
    items = _split_names(m["names"])
    stay = [i for i in items if _stays(pkg, i.partition(" as ")[0].strip(), concrete)]
    go = [i for i in items if i not in stay]
    if not go:
        return m[0]
    module = f"modelport.{pkg}.{PACKAGES[pkg][0]}"
    lines = [f"{m['indent']}from modelport.{pkg} import {', '.join(stay)}"] if stay else []
    lines.append(f"{m['indent']}from {module} import {', '.join(go)}")
    lines[0] += m["tail"] or ""
    return "\n".join(lines)


def _pkg_dotted(m: re.Match[str], concrete: bool) -> str:
    pkg, name = m["pkg"], m["name"]
    if name in SUBMODULES[pkg] or (not concrete and name in PACKAGES[pkg][1] and not name.startswith("_")):
        return m[0]
    return f"modelport.{pkg}.{PACKAGES[pkg][0]}.{name}"


def rewrite(text: str, concrete: bool) -> str:
    """``text`` with every old module name replaced by its new one (lines about wave 1's names are kept)."""
    lines = text.split("\n")
    keep = {i: line for i, line in enumerate(lines) if WAVE1.search(line)}
    if not keep:
        return _rewrite(text, concrete)
    marked = "\n".join(f"{KEEP}{i}" if i in keep else line for i, line in enumerate(lines))
    out = _rewrite(marked, concrete).split("\n")
    return "\n".join(keep[int(line[len(KEEP):])] if line.startswith(KEEP) else line for line in out)


def _rewrite(text: str, concrete: bool) -> str:
    text = FROM_TOP.sub(lambda m: _from_top(m, concrete), text)
    text = DOTTED.sub(lambda m: "modelport." + MOVED[m[1]], text)
    text = PATH.sub(lambda m: "modelport/" + MOVED[m[1]].replace(".", "/") + ".py", text)
    text = FROM_PKG.sub(lambda m: _from_pkg(m, concrete), text)
    text = PKG_SETATTR.sub(lambda m: f"modelport.{m['pkg']}.{PACKAGES[m['pkg']][0]}", text)
    # dotted names (monkeypatch targets, mock.patch, docs) always reach the module that holds the name, except
    # public ones outside the core, and never those inside import statements handled above
    return "\n".join(
        line if re.match(r"\s*(from|import)\s", line) else PKG_DOTTED.sub(lambda m: _pkg_dotted(m, concrete), line)
        for line in text.split("\n")
    )


def _files(args: list[str]) -> list[Path]:
    if args:
        paths = [Path(a).resolve() for a in args]
        return [f for p in paths for f in ([p] if not p.is_dir() else sorted(
            q for q in p.rglob("*") if q.suffix in SUFFIXES and not any(part.startswith(".") for part in q.parts)))]
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / f for f in out.split("\0") if f and Path(f).suffix in SUFFIXES and f not in SKIP]


def unsafe(text: str) -> list[str]:
    """Multi-line ``from modelport import (`` statements that name an old module: rewrite those by hand."""
    found = []
    for m in re.finditer(r"from modelport import \(([^)]*)\)", text):
        hits = [n for n in _split_names(m[1]) if n.partition(" as ")[0].strip() in {*MOVED, *PACKAGES}]
        if hits:
            found.append(", ".join(hits))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*")
    parser.add_argument("--check", action="store_true", help="only list the files that would change")
    args = parser.parse_args(argv)
    changed = 0
    for path in _files(args.files):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        new = rewrite(text, _concrete(path))
        shown = path.relative_to(ROOT) if ROOT in path.parents else path
        for hit in unsafe(new):
            print(f"{shown}: rewrite by hand: from modelport import ({hit})", file=sys.stderr)
        if new != text:
            changed += 1
            print(shown)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())

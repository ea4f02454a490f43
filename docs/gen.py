"""Regenerate every generated page of the docs from the code, or check that they are current.

    python docs/gen.py           # rewrite docs/cli.md, docs/errors.md, docs/metadata.md and the generated blocks of docs/plugins.md
    python docs/gen.py --check   # exit 1 naming each page that is out of date (the core tests check the same)
"""

from __future__ import annotations

import sys
from pathlib import Path

import gen_cli
import gen_errors
import gen_metadata
import gen_plugins


def pages() -> list[tuple[Path, str]]:
    """(page, its text as the code says it should be) for each generated page."""
    current = gen_plugins.OUT.read_text(encoding="utf-8")
    return [(gen_cli.OUT, gen_cli.render()), (gen_errors.OUT, gen_errors.render()), (gen_metadata.OUT, gen_metadata.render()),
            (gen_plugins.OUT, gen_plugins.render(current))]


def main(argv: list[str]) -> int:
    stale = 0
    for out, text in pages():
        same = out.is_file() and out.read_text(encoding="utf-8") == text
        if "--check" in argv:
            if not same:
                print(f"{out} is out of date; run: python docs/gen.py", file=sys.stderr)
                stale += 1
        elif not same:
            out.write_text(text, encoding="utf-8")
            print(f"wrote {out}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

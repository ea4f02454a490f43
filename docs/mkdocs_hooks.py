"""mkdocs hook: links from a docs page to a repository file outside docs/ (a plugin's README, an example) work
when the Markdown is read in the repository, but are not part of the site. On the site they become the file's
repository path in code, so `mkdocs build --strict` stays strict about every other link."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s#]+)(#[^)\s]*)?\)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    docs = Path(config["docs_dir"]).resolve()
    repo = docs.parent
    here = (docs / page.file.src_path).parent

    def rewrite(m: re.Match[str]) -> str:
        target = m.group(2)
        if "://" in target or target.startswith(("mailto:", "/")):
            return m.group(0)
        resolved = (here / target).resolve()
        if resolved.is_relative_to(docs) or not resolved.is_relative_to(repo):
            return m.group(0)
        path = resolved.relative_to(repo).as_posix()
        if m.group(1).strip("`") in (path, target):
            return f"`{path}`"
        return f"{m.group(1)} (`{path}` in the repository)"

    return _LINK.sub(rewrite, markdown)

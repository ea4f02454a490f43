"""Shared helpers: tiny checkpoints saved once per session, and the CLI run in-process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from modelport_hf import testing


class CliResult:
    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code, self.stdout, self.stderr = exit_code, stdout, stderr


def run_export(*args: str) -> CliResult:
    """``modelport export ARGS`` in this process (click's runner), exit code and both streams captured."""
    from click.testing import CliRunner
    from modelport.cli import main

    result = CliRunner().invoke(main, ["export", *args])
    return CliResult(result.exit_code, result.stdout, result.stderr)


def read(folder: Path, name: str = "metadata.json") -> dict[str, Any]:
    return json.loads((folder / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``checkpoint("bert", head="token")``: the folder of a tiny saved checkpoint, built once per session."""
    made: dict[tuple[str, tuple[tuple[str, Any], ...]], Path] = {}

    def get(kind: str, **kwargs: Any) -> Path:
        key = (kind, tuple(sorted(kwargs.items())))
        if key not in made:
            folder = tmp_path_factory.mktemp(kind + "".join(f"-{v}" for v in kwargs.values()))
            made[key] = testing.BUILDERS[kind](folder, **kwargs)
        return made[key]

    return get

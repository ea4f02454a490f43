"""`modelport serve` comes from this distribution through the register_commands hook."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from modelport.cli import main


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelport", *args], capture_output=True, text=True, timeout=120)


def test_serve_is_listed_and_has_help() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "serve" in result.output
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for flag in ("--host", "--port", "--exports-root", "--models-dir", "--workers", "--job-timeout", "--executor"):
        assert flag in result.output


def test_plugin_is_loaded_with_its_hook() -> None:
    out = _run("plugins", "--json")
    assert out.returncode == 0, out.stderr
    serve = next(p for p in json.loads(out.stdout) if p["name"] == "serve")
    assert serve["status"] == "loaded" and serve["hooks"] == ["register_commands"]
    assert serve["distribution"] == "modelport-serve"


def test_public_host_without_token_is_a_configuration_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELPORT_SERVE_TOKEN", raising=False)
    runner = CliRunner()
    result = runner.invoke(main, ["serve", "--host", "0.0.0.0", "--exports-root", str(tmp_path)])
    assert result.exit_code == 3
    assert result.stderr.startswith("error: --host 0.0.0.0 would expose the server without authentication")
    assert "Traceback" not in result.stderr
    result = runner.invoke(main, ["serve", "--models-dir", str(tmp_path / "nope"), "--exports-root", str(tmp_path)])
    assert result.exit_code == 3 and "no such directory" in result.stderr
    monkeypatch.setenv("MODELPORT_SERVE_TOKEN", "abc123xyz")
    result = runner.invoke(main, ["serve", "--exports-root", str(tmp_path)])
    assert result.exit_code == 3 and "too short" in result.stderr and "abc123xyz" not in result.stderr


def test_listing_commands_does_not_import_the_server() -> None:
    code = ("import sys; from click.testing import CliRunner; from modelport.cli import main; "
            "r = CliRunner().invoke(main, ['--help']); assert 'serve' in r.output; "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'torch', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

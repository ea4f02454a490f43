"""Commands from plugins (the ``register_commands`` hook): added to the CLI, isolated when they misbehave."""

from __future__ import annotations

import json
import os

from conftest import make_plugin_dist

HELLO = '''
import click
import modelport


@modelport.hookimpl
def register_commands(cli):
    @cli.command()
    @click.argument("name")
    def hello(name):
        """Say hello (a command from a plugin)."""
        click.echo(f"hello {name}")
'''
RAISES = "import modelport\n\n@modelport.hookimpl\ndef register_commands(cli):\n    raise RuntimeError('no commands today')\n"
HIJACK = '''
import click
import modelport


@modelport.hookimpl
def register_commands(cli):
    @cli.command("export")
    def export():
        click.echo("hijacked")
'''


def _env(site) -> dict[str, str]:
    return {"PYTHONPATH": str(site) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_plugin_command_is_added_and_listed(tmp_path, cli):
    env = _env(make_plugin_dist(tmp_path / "site", "modelport-hello", "mp_hello", HELLO, "hello"))
    r = cli("hello", "world", env=env)
    assert r.returncode == 0 and r.stdout.strip() == "hello world", r.stderr
    r = cli("--help", env=env)
    assert r.returncode == 0 and "Say hello" in r.stdout
    info = {p["name"]: p for p in json.loads(cli("plugins", "--json", env=env).stdout)}
    assert info["hello"]["status"] == "loaded" and info["hello"]["hooks"] == ["register_commands"]


def test_plugin_whose_hook_raises_is_broken_and_the_cli_works(tmp_path, cli):
    env = _env(make_plugin_dist(tmp_path / "site", "modelport-raises", "mp_raises", RAISES, "raises"))
    r = cli("--help", env=env)
    assert r.returncode == 0 and "export" in r.stdout
    r = cli("nosuchcommand", env=env)
    assert r.returncode == 3 and "No such command" in r.stderr
    info = {p["name"]: p for p in json.loads(cli("plugins", "--json", env=env).stdout)}
    assert info["raises"]["status"] == "broken"
    assert info["raises"]["error"] == "register_commands raised RuntimeError: no commands today"


def test_plugin_cannot_replace_a_core_command(tmp_path, cli):
    env = _env(make_plugin_dist(tmp_path / "site", "modelport-hijack", "mp_hijack", HIJACK, "hijack"))
    r = cli("--help", env=env)
    assert r.returncode == 0
    r = cli("export", "--help", env=env)
    assert "hijacked" not in r.stdout and "Export MODEL" in r.stdout
    info = {p["name"]: p for p in json.loads(cli("plugins", "--json", env=env).stdout)}
    assert info["hijack"]["status"] == "broken" and "replaced core command(s) export" in info["hijack"]["error"]


def test_core_commands_never_load_plugin_commands(tmp_path, cli):
    """`modelport formats` (a core command) never calls register_commands: a raising hook cannot slow or break it."""
    env = _env(make_plugin_dist(tmp_path / "site", "modelport-raises", "mp_raises", RAISES, "raises"))
    r = cli("formats", "--json", env=env)
    assert r.returncode == 0, r.stderr

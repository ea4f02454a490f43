"""``modelport list`` and ``modelport info``: the zoo side of the command line (see :mod:`modelport.commands.zoo`)."""

from __future__ import annotations

import json

import click

_EXTRA = {"ignore_unknown_options": True, "allow_extra_args": True}


@click.command("list", context_settings=_EXTRA)
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.pass_context
def list_cmd(ctx: click.Context, target: str, as_json: bool) -> None:
    """List the models published at TARGET (file://DIR, hf://OWNER, github://OWNER/REPO).

    A table of model, version, formats, size, validation status and date. Publisher options go after the
    target: --endpoint URL, --api-url URL, -o key=value.
    """
    from modelport.commands.zoo import entry_json, list_models, summary_table
    from modelport.plugins.options import publisher_args
    from modelport.terminal.console import quiet_work

    with quiet_work():  # client libraries print (progress bars, warnings): captured, shown with --debug
        entries = list_models(target, options=publisher_args(ctx.args))
    if as_json:
        click.echo(json.dumps([entry_json(e) for e in entries], indent=2, default=str))
        return
    from modelport.terminal.console import stdout_console

    out = stdout_console()
    out.print(summary_table(entries, f"Models at {target}"))
    if not entries:
        out.print("no models published there yet")


@click.command("info", context_settings=_EXTRA)
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.pass_context
def info_cmd(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Show one published model's card: REF is TARGET/NAME[@VERSION] (the latest version without one).

    Metadata, input/output signature, validation per format and benchmark numbers when they were published,
    e.g. `modelport info hf://alice/cnn`, `modelport info file:///srv/zoo/cnn@v2`,
    `modelport info github://alice/models/cnn@v1.0`.
    """
    from modelport.commands.zoo import entry_json, get_model_info, print_model_info
    from modelport.plugins.options import publisher_args
    from modelport.terminal.console import quiet_work

    with quiet_work():
        entry = get_model_info(ref, options=publisher_args(ctx.args))
    if as_json:
        click.echo(json.dumps(entry_json(entry), indent=2, default=str))
        return
    print_model_info(entry)


def register(group: click.Group) -> None:
    """Add the zoo commands to the ``modelport`` group."""
    group.add_command(list_cmd)
    group.add_command(info_cmd)

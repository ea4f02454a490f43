"""The ``modelport`` command line. Every failure maps to one line on stderr and a documented exit code:
0 success · 1 export failed · 2 validation failed · 3 configuration error · 130 interrupted."""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, cast

import click

from modelport.engine.input_flags import build_input_spec
from modelport.engine.settings import ExportSettings, cli_options, from_flags
from modelport.errors import ConfigError, ModelportError
from modelport.plugins.options import publisher_args
from modelport.terminal.console import debug_enabled, set_debug
from modelport.terminal.redaction import redact
from modelport.terminal.strings import human_size
from modelport.version import __version__

EXIT_OK, EXIT_EXPORT, EXIT_VALIDATION, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _err(message: str) -> None:
    click.echo(redact(f"error: {message}"), err=True)


class ModelportGroup(click.Group):
    """Maps exceptions to exit codes in one place; usage errors are configuration errors (3).

    Runs the same in a terminal and in-process (click's ``CliRunner``, :func:`modelport.testing.kit.run_cli`):
    ``--debug`` is read from the arguments given to ``main`` (``sys.argv`` only when none are given), and
    the SIGINT handler it installs is put back when ``main`` returns.

    Commands from plugins (the ``register_commands`` hook) load on first use: when a name is not a core
    command, or when the commands are listed. ``load_plugin_commands = False`` keeps to the core ones.
    """

    load_plugin_commands = True
    _plugin_commands_loaded = False

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            self._add_plugin_commands()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands()
        return super().list_commands(ctx)

    def _add_plugin_commands(self) -> None:
        """Call every ``register_commands`` hook once; a plugin that raises or replaces a core command is broken."""
        if self._plugin_commands_loaded or not self.load_plugin_commands:
            return
        self._plugin_commands_loaded = True
        from modelport.plugins.host import get_plugin_manager

        host = get_plugin_manager()
        for impl in host.pm.hook.register_commands.get_hookimpls():
            before = dict(self.commands)
            try:
                impl.function(cli=self)
                replaced = [n for n, c in before.items() if self.commands.get(n) is not c]
                if replaced:
                    raise ValueError(f"register_commands replaced core command(s) {', '.join(replaced)}")
            except Exception as exc:  # one broken plugin never breaks the CLI
                self.commands.clear()
                self.commands.update(before)
                info = host.plugin_of(impl.plugin_name)
                if info is not None:
                    info.status = "broken"
                    info.error = f"register_commands raised {type(exc).__name__}: {exc}".splitlines()[0]

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        finally:  # a command that failed mid-work gets its terminal back before the error line is printed
            from modelport.terminal.console import end_captures

            end_captures()

    def main(self, args: Sequence[str] | None = None, *rest: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if args is not None:  # embedded or tested (CliRunner): a normal return or SystemExit
            return self._main(args, *rest, **kwargs)
        try:  # the process's own command line: end it without the interpreter's slow teardown
            rv = self._main(None, *rest, **kwargs)
        except SystemExit as exc:
            _quick_exit(exc.code)
        if rv is None:
            _quick_exit(0)
        return rv

    def _main(self, args: Sequence[str] | None, *rest: Any, **kwargs: Any) -> Any:
        import signal

        from modelport.folder import store

        kwargs["standalone_mode"] = False
        argv = list(sys.argv[1:] if args is None else args)
        previous_debug = set_debug("--debug" in argv)
        try:
            previous_handler = signal.signal(signal.SIGINT, store.on_sigint)
            previous_term = signal.signal(signal.SIGTERM, store.on_sigint)  # timeout, docker stop, CI: like Ctrl-C
        except ValueError:  # not the main thread (embedded use): keep the default handlers
            previous_handler = previous_term = None
        try:
            return self._run(argv, *rest, **kwargs)
        finally:
            set_debug(previous_debug)
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
            if previous_term is not None:
                signal.signal(signal.SIGTERM, previous_term)

    def _run(self, argv: list[str], *rest: Any, **kwargs: Any) -> Any:
        from modelport.folder import store

        debug = debug_enabled()
        try:
            rv = super().main(argv, *rest, **kwargs)
            if isinstance(rv, int):
                sys.exit(rv)
            return rv
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            _interrupted()
        except KeyboardInterrupt:
            _interrupted()
        except click.UsageError as exc:
            msg = exc.format_message().replace("\n", " ")
            cmd = exc.ctx.command_path if exc.ctx else "modelport"
            _err(f"{msg} (see `{cmd} --help`)")
            sys.exit(EXIT_CONFIG)
        except click.ClickException as exc:
            _err(exc.format_message().replace("\n", " "))
            sys.exit(EXIT_CONFIG)
        except ModelportError as exc:
            if store.INTERRUPTED:
                _interrupted()
            if debug:
                traceback.print_exc()
            _err(str(exc).replace("\n", " "))
            sys.exit(exc.exit_code)
        except BrokenPipeError:
            sys.exit(EXIT_OK)
        except Exception as exc:
            if store.INTERRUPTED:
                _interrupted()
            if debug:
                traceback.print_exc()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            _err(f"unexpected {type(exc).__name__}: {first} (run with --debug for the traceback)")
            sys.exit(EXIT_EXPORT)


def _quick_exit(code: Any) -> NoReturn:
    """Exit with ``code``, skipping module teardown (~1 s once torch and transformers are loaded, issue 18).

    atexit handlers (temporary folders, logging, coverage) still run and the streams are flushed; with a
    non-daemon thread still alive, or MODELPORT_SLOW_EXIT=1, it is a plain sys.exit.
    """
    import atexit
    import os
    import threading

    alive = [t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive() and not t.daemon]
    if "torch" not in sys.modules or alive or os.environ.get("MODELPORT_SLOW_EXIT"):
        sys.exit(code)
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed pipe or stream: nothing more can reach it
            pass
    os._exit(code)


def _interrupted() -> NoReturn:
    import signal

    from modelport.folder import store

    store.cleanup_live_staging()
    if store.SIGNAL == signal.SIGTERM:
        _err("terminated (SIGTERM); temporary files removed")
        sys.exit(128 + signal.SIGTERM)
    _err("interrupted; temporary files removed")
    sys.exit(EXIT_INTERRUPTED)


def _stdout() -> Any:
    from modelport.terminal.console import stdout_console

    return stdout_console()


@click.group(cls=ModelportGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="modelport")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def main(debug: bool) -> None:
    """Turn a trained PyTorch model into deployable artifacts, each proven equal to the model."""


# ----------------------------------------------------------------------------- formats / plugins


@main.command()
@click.argument("format_name", metavar="[FORMAT]", required=False)
@click.option("--options", "show_options", is_flag=True, help="List every option of each format (or of FORMAT): type, default, help.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def formats(format_name: str | None, show_options: bool, as_json: bool) -> None:
    """List every format and publish target with its status on this machine.

    With --options (or a FORMAT), list the options of every format and publisher (or of FORMAT) instead:
    name, type, default, the other keys that set it, help — what -o and --config accept.
    """
    from modelport.plugins.host import get_plugin_manager
    from modelport.terminal.console import quiet_work

    with quiet_work():  # importing a plugin or probing a runtime may print
        host = get_plugin_manager()
        if not (show_options or format_name):
            rows = host.format_statuses()
            pubs = host.publisher_statuses()
    if show_options or format_name:
        from modelport.cli.option_help import print_format_options

        print_format_options(host, format_name, as_json)
        return
    if as_json:
        click.echo(json.dumps({
            "formats": [_row_json(r) for r in rows if r.kind != "plugin"],
            "publishers": [_row_json(r) for r in pubs],
            "broken_plugins": [_row_json(r) for r in rows if r.kind == "plugin"],
        }, indent=2))
        return
    from modelport.terminal.render import print_formats

    print_formats(_stdout(), rows, pubs)


def _row_json(r: Any) -> dict[str, Any]:
    return {
        "name": r.name, "display_name": r.display_name, "status": r.status, "can_export": r.can_export,
        "can_validate": r.can_validate, "reason": r.reason, "fix": r.fix, "plugin": r.plugin, "version": r.version,
        "summary": r.describe(),
    }


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List loaded, broken and disabled plugins; `plugins new NAME` writes a plugin of your own."""
    if ctx.invoked_subcommand is not None:
        return
    from modelport.plugins.host import get_plugin_manager
    from modelport.terminal.console import quiet_work

    with quiet_work():
        host = get_plugin_manager()
        host.formats  # noqa: B018 - registering formats can mark a plugin broken
        host.publishers  # noqa: B018
        cast(ModelportGroup, main)._add_plugin_commands()  # ... and so can registering commands
    if as_json:
        click.echo(json.dumps([p.__dict__ for p in host.plugins], indent=2))
        return
    from modelport.terminal.render import print_plugins

    print_plugins(_stdout(), host.plugins)


@main.command()
@click.option("--record", is_flag=True, help="Print the export.json record schema instead of metadata.json's.")
def schema(record: bool) -> None:
    """Print the metadata.json JSON Schema (or export.json's with --record)."""
    if record:
        from modelport.folder.exportdir import record_schema

        click.echo(json.dumps(record_schema(), indent=2))
        return
    from modelport.folder.metadata import schema as _schema

    click.echo(json.dumps(_schema(), indent=2))


# ----------------------------------------------------------------------------- export


def _split_formats(values: Sequence[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


def _Progress(quiet: bool) -> Any:
    """Progress on stderr (a spinner in a terminal) and third-party output captured until ``stop()``."""
    from modelport.terminal.console import CommandProgress

    return CommandProgress(quiet)


_CONVENTION = {"--checkpoint_path": "--checkpoint", "--export_format": "--format", "--output_dir": "--output-dir",
               "--export_config": "--export-config"}


@main.command(context_settings={"ignore_unknown_options": False})
@click.argument("model", required=False)
@click.option("-f", "--format", "--export_format", "formats", multiple=True, help="Format(s): onnx,pt2,... or all (every format available here).")
@click.option("--input", "inputs", multiple=True, metavar="NAME:SHAPE[:DTYPE[:LOW,HIGH]]", help="A model input (repeatable).")
@click.option("--vision", metavar="CxHxW", help="Image preset: one float32 input N x C x H x W.")
@click.option("--text", metavar="SEQ_LEN[:VOCAB]", help="Text preset: int64 input_ids + attention_mask.")
@click.option("--batch", "batch_text", metavar="N[,N...]", help="Example batch size (default 1); with --dynamic-batch, more sizes to validate at, e.g. 1,8.")
@click.option("--dynamic", multiple=True, metavar="NAME:AXIS[=label]", help="Mark an axis dynamic (repeatable).")
@click.option("--dynamic-batch", is_flag=True, help="Mark axis 0 of every input dynamic.")
@click.option("--sample-inputs", type=click.Path(), help=".npz of real inputs (validation, calibration).")
@click.option("-o", "--option", "options", multiple=True, metavar="[FORMAT.]KEY=VALUE", help="Format option (repeatable).")
@click.option("--config", "--export-config", "--export_config", "config", metavar="JSON", help="Options as a JSON object (or a .json file).")
@click.option("--checkpoint", "--checkpoint_path", "checkpoint", help="State dict to load (weights_only).")
@click.option("--checkpoint-prefix", help="Prefix to strip from checkpoint keys (e.g. 'model.').")
@click.option("--no-strict", is_flag=True, help="Allow missing/unexpected checkpoint keys.")
@click.option("--model-kwargs", metavar="JSON", help="Keyword arguments for the model factory.")
@click.option("--trust-code", "--trust-pickle", "trust_code", is_flag=True,
              help="Allow loading a MODEL that runs code: a pickled nn.Module, TorchScript, a .pt2 with pickled parts, "
                   "a Hugging Face model's custom code (trust_remote_code).")
@click.option("--input-text", metavar="TEXT", help="Real text a text model's example inputs are tokenized from (hf:).")
@click.option("--task", help="classification, detection, segmentation, pose, text-encoding, other...")
@click.option("--model-name", help="Name recorded in metadata.json and used to publish (default: the model class in snake_case; for a Sequential or an archive, the factory name or file stem).")
@click.option("--class-names", type=click.Path(), help="Text file (one per line) or JSON list of class names.")
@click.option("--preprocessing", metavar="JSON", help="Preprocessing block for metadata.json.")
@click.option("--postprocessing", metavar="JSON", help="Postprocessing block for metadata.json.")
@cli_options  # every flagged ExportSettings field: --output-dir ... --threads (modelport.engine.settings)
@click.option("--bench", "run_bench", is_flag=True, help="Benchmark each artifact after export.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress, no table.")
def export(model: str | None, **flags: Any) -> int:
    """Export MODEL to one or more formats, validate each artifact, and write metadata.json + export.json.

    MODEL is a .pt2, a TorchScript archive, package.module:factory or path/to/file.py:factory, or SOURCE:REF
    for an installed model source (hf:PATH_OR_ID with modelport-source-hf).
    """
    started = time.perf_counter()
    call = _prepare_export(model, flags)  # every flag checked, formats planned: no torch import, exit 3 fast
    progress = _Progress(flags["quiet"] or flags["as_json"])
    from modelport.engine import executors_local

    try:
        progress("loading the model")
        if call.settings.executor == "local":  # workers start while the model loads and the reference runs
            executors_local.prestart(call.settings.jobs, len(call.formats))
        result = _run_export(call, progress)
        bench_rows = _bench_after_export(result, call, progress) if flags["run_bench"] else None
    finally:
        executors_local.release_warm()
        progress.stop()
    if not flags["quiet"] and not flags["as_json"]:
        for line in result.notes:
            click.echo(line, err=True)
    _report_export(result, flags["as_json"], flags["quiet"], bench_rows, time.perf_counter() - started)
    return cast(int, result.exit_code)


@dataclass
class _ExportCall:
    """What ``modelport export``'s flags ask for, parsed and checked before the model is loaded."""

    model: str
    flags: dict[str, Any]
    settings: ExportSettings
    formats: list[str]
    host: Any
    spec_args: dict[str, Any]
    info: dict[str, Any]  # model_name, class_names, preprocessing, postprocessing (ModelInfo fields)
    spec: Any = None


def _prepare_export(model: str | None, flags: dict[str, Any]) -> _ExportCall:
    """Parse and check every flag of ``modelport export`` and plan its formats, in the order errors are reported."""
    from modelport.engine.inputs import load_sample_inputs
    from modelport.engine.limits import check_run_settings
    from modelport.engine.pipeline import plan
    from modelport.folder.metadata import parse_json_object, read_class_names
    from modelport.folder.store import safe_name
    from modelport.models.loading import parse_model_kwargs
    from modelport.plugins.host import get_plugin_manager

    model, flags["checkpoint"] = _model_reference(model, flags["checkpoint"])
    batches = parse_batches(flags["batch_text"]) if flags["batch_text"] else ()
    if len(batches) > 1 and not flags["dynamic_batch"]:
        raise ConfigError("--batch with several sizes needs --dynamic-batch (an artifact with a fixed batch runs one size)")
    cfg = parse_json_object(flags["config"], "--export-config")
    fmts = _formats_from(flags["formats"], cfg)
    flags["model_kwargs"] = parse_model_kwargs(flags["model_kwargs"])
    info: dict[str, Any] = {"preprocessing": parse_json_object(flags["preprocessing"], "--preprocessing") or None,
            "postprocessing": parse_json_object(flags["postprocessing"], "--postprocessing") or None,
            "class_names": read_class_names(flags["class_names"]) if flags["class_names"] else None}
    check_run_settings(threads=flags["threads"], atol=flags["atol"], rtol=flags["rtol"],
                       batch=batches[0] if batches else None)
    from modelport.engine.jobs import check_executor

    check_executor(flags["executor"])  # before the model loads: a missing Ray is one line, not a wasted load
    host = get_plugin_manager()
    the_plan = plan(host, fmts, flags["options"], cfg)  # formats and every option checked before torch is imported
    if not flags["quiet"] and not flags["as_json"]:
        for line in the_plan.skipped:
            click.echo(f"note: skipping {line}", err=True)
    samples = load_sample_inputs(flags["sample_inputs"]) if flags["sample_inputs"] else None
    spec_args: dict[str, Any] = {
        "inputs": flags["inputs"], "vision": flags["vision"], "text": flags["text"], "batch": batches[0] if batches else None,
        "dynamic": flags["dynamic"], "dynamic_batch": flags["dynamic_batch"], "sample_arrays": samples,
        "model_ref": model, "config": cfg, "trust_code": flags["trust_code"]}
    spec = None
    if flags["inputs"] or flags["vision"] or flags["text"] or cfg.get("input_shape") or samples is not None:
        spec = build_input_spec(**spec_args)  # fail fast, before loading
        if samples is not None:
            samples = {n: samples[n] for n in spec.names}
    info["model_name"] = safe_name(flags["model_name"], "--model-name") if flags["model_name"] else None
    settings = from_flags(flags, options=flags["options"], config=cfg, nms=the_plan.nms, sample_inputs=samples,
                          per_format_dirs=True if the_plan.per_format_dirs is True else None,
                          **({"extra_batches": batches[1:]} if len(batches) > 1 else {}))
    return _ExportCall(model, flags, settings, list(the_plan.specs), host, spec_args, info, spec)


def _model_reference(model: str | None, checkpoint: str | None) -> tuple[str, str | None]:
    """MODEL, or the convention's ``--checkpoint_path`` when it names a model archive (then no checkpoint)."""
    from modelport.models.loading import is_model_archive

    if model is not None:
        return model, checkpoint
    if checkpoint and (checkpoint.endswith((".pt2", ".ts", ".torchscript", ".jit")) or is_model_archive(checkpoint)):
        return checkpoint, None
    raise ConfigError("missing MODEL (a .pt2, TorchScript file, module:factory or file.py:factory)")


def _formats_from(formats: Sequence[str], cfg: dict[str, Any]) -> list[str]:
    """-f values split on commas, or the convention's ``export_format`` config key (taken out of ``cfg``)."""
    fmts = _split_formats(formats)
    if not fmts and isinstance(cfg.get("export_format"), str):
        fmts = _split_formats([cfg.pop("export_format")])
    cfg.pop("export_format", None)
    if not fmts:
        raise ConfigError("no format given; use -f onnx,pt2 (see `modelport formats`)")
    return fmts


def _run_export(call: _ExportCall, progress: Any) -> Any:
    """Load the model through its source and export it (each component, when it has several)."""
    from modelport.engine.pipeline import plan_targets
    from modelport.models.sources import export_resolved, resolve

    flags, settings = call.flags, call.settings
    if settings.output_dir is not None or settings.exports_root is not None:  # exit 3 before loading
        plan_targets(call.formats, call.info["model_name"] or "model", settings.output_dir, settings.exports_root,
                     settings.force, settings.per_format_dirs)
    resolved = resolve(call.model, host=call.host, task=flags["task"], trust_code=flags["trust_code"],
                       input_text=flags["input_text"], batch=call.spec_args["batch"], model_kwargs=flags["model_kwargs"],
                       checkpoint=flags["checkpoint"], checkpoint_prefix=flags["checkpoint_prefix"],
                       strict=not flags["no_strict"])
    spec = call.spec
    if spec is None and not resolved.components:
        spec = build_input_spec(**call.spec_args, source_spec=resolved.inputs)
    info = {**call.info, "model_name": call.info["model_name"] or resolved.model_name}
    return export_resolved(resolved, call.formats, spec, settings=settings, host=call.host, progress=progress, **info)


def _bench_after_export(result: Any, call: _ExportCall, progress: Any) -> Any:
    """``--bench``: benchmark every folder the export wrote, at batch 1."""
    from modelport.commands.bench import bench_dirs

    dirs = [r.path for r in result.values() if r.path is not None]
    if not dirs:
        return None
    progress("benchmarking")
    return bench_dirs(dirs, batches=(1,), threads=call.settings.threads, host=call.host, progress=progress)


def parse_batches(text: str, option: str = "--batch") -> tuple[int, ...]:
    """``"1,8"`` → (1, 8): the one syntax of --batch in export and bench; exit 3 on anything else."""
    try:
        out = tuple(int(b) for b in text.split(",") if b.strip())
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not like 1 or 1,8") from None
    if not out or any(b <= 0 for b in out):
        raise ConfigError(f"{option} needs positive integers, like 1 or 1,8")
    return tuple(dict.fromkeys(out))


def _report_export(result: Any, as_json: bool, quiet: bool, bench_rows: Any = None, elapsed_s: float | None = None) -> None:
    if as_json:
        out = {}
        for fmt, r in result.items():
            out[fmt] = {
                "status": r.status, "exit_code": r.exit_code, "path": str(r.path) if r.path else None,
                "artifact": str(r.artifact_path) if r.artifact_path else None, "error": r.error,
                "validation": r.record.get("validation") if r.path else None,
                "size_bytes": (r.record.get("sizes") or {}).get("total_bytes") if r.path else None,
            }
        payload: dict[str, Any] = {"exit_code": result.exit_code, "results": out}
        if getattr(result, "notes", None):
            payload["notes"] = list(result.notes)
        if bench_rows is not None:
            payload["bench"] = bench_rows
        click.echo(json.dumps(payload, indent=2, default=str))
    elif not quiet:
        from modelport.terminal.render import print_bench, print_export

        print_export(_stdout(), result, elapsed_s=elapsed_s)
        if bench_rows:
            print_bench(_stdout(), bench_rows)
    for r in result.values():
        if r.error:
            _err(r.error)
            if debug_enabled() and r.record.get("debug_traceback"):
                click.echo(redact(r.record.get("log") or ""), err=True)
                if r.record.get("error_detail"):
                    click.echo(redact(r.record["error_detail"]), err=True)
                click.echo(redact(r.record["debug_traceback"]), err=True)


# ----------------------------------------------------------------------------- validate / inspect


@main.command()
@click.argument("export_dir", type=click.Path())
@click.option("--atol", type=float, help="Override the absolute tolerance.")
@click.option("--rtol", type=float, help="Override the relative tolerance.")
@click.option("--threads", type=int, help="Thread count for the runtime.")
@click.option("--allow-inconclusive", is_flag=True, help="Exit 0 when validation is inconclusive.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.option("--debug-on-fail", is_flag=True, help="On failure, run `modelport debug` to name the first diverging module.")
@click.option("--model", "model_ref", help="With --debug-on-fail: the PyTorch model (as `export` takes it).")
@click.option("--trust-code", is_flag=True, help="Allow loading an artifact that runs code (TorchScript, pickled parts) "
              "that modelport did not write here; with --debug-on-fail, the model the record names.")
def validate(export_dir: str, **flags: Any) -> int:
    """Re-run an export's artifact on its recorded inputs and check it against the recorded outputs."""
    from modelport.engine.limits import check_run_settings
    from modelport.engine.pipeline import validate_export

    atol, rtol, threads, as_json = flags["atol"], flags["rtol"], flags["threads"], flags["as_json"]
    check_run_settings(threads=threads, atol=atol, rtol=rtol)
    with _Progress(as_json):
        r = validate_export(export_dir, atol=atol, rtol=rtol, threads=threads,
                            allow_inconclusive=flags["allow_inconclusive"], trust_code=flags["trust_code"])
    if flags["debug_on_fail"] and r.status == "failed":
        if r.error:
            _err(r.error)
        return _run_debug(export_dir, _DebugArgs(model_ref=flags["model_ref"], trust_code=flags["trust_code"],
                                                 atol=atol, rtol=rtol, threads=threads, as_json=as_json))
    _report_validate(r, as_json)
    if r.error:
        _err(r.error)
    return r.exit_code


def _report_validate(r: Any, as_json: bool) -> None:
    """Print one validation result: a JSON object, or one line with the largest difference (or why there is none)."""
    from modelport.plugins.types import to_jsonable

    if as_json:
        click.echo(json.dumps({"format": r.format, "status": r.status, "exit_code": r.exit_code, "note": r.validation_note,
                               "validation": to_jsonable(r.validation) if r.validation else None}, indent=2, default=str))
    else:
        comp = r.validation
        line = f"{r.format}: {r.status}"
        if comp:
            line += f" — max abs diff {comp.max_abs_diff:.2e} over {comp.input_sets} input sets ({comp.rule})"
        elif r.validation_note:
            line += f" — {r.validation_note}"
        click.echo(line)


@main.command()
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.option("--by-module", is_flag=True, help="Group nodes by PyTorch module path (formats that keep it).")
@click.option("--module", "module_prefix", help="Only the module subtree with this prefix.")
@click.option("--trust-code", is_flag=True, help="Allow reading an artifact that runs code when loaded (TorchScript, pickled parts).")
@click.option("--format", "view", type=click.Choice(["summary", "detailed", "json", "csv"]),
              help="The artifact's nodes by PyTorch module: a tree with counts (summary), every node (detailed), "
                   "json, or one CSV row per node (formats that keep module paths: onnx).")
@click.option("--check", "check_tree", is_flag=True,
              help="Check every compute node is tagged with a module and the tags form one module tree; exit 1 with the offending nodes otherwise.")
@click.option("--graphml", type=click.Path(dir_okay=False), help="Write the module hierarchy as GraphML (opens in yEd, Gephi).")
@click.option("--model", "model_ref", help="With --check: the PyTorch model (as `export` takes it); every tag must name "
              "one of its modules, with its class.")
def inspect(path: str, **flags: Any) -> int:
    """Show an artifact's or export folder's inputs, outputs, size, ops and metadata."""
    work = _Progress(True)  # readers print too (coremltools, openvino); stopped before our output
    p = Path(path)
    view, check_tree, graphml, model_ref = flags["view"], flags["check_tree"], flags["graphml"], flags["model_ref"]
    if model_ref and not check_tree:
        raise ConfigError("--model goes with --check")
    hierarchy = {"nodes": view in ("detailed", "csv", "json") or bool(model_ref), "check": check_tree, "tree": bool(graphml)}
    by_module = flags["by_module"] or bool(view or check_tree or graphml)
    if not p.exists():
        raise ConfigError(f"{p}: no such file or directory")
    options = {"by_module": by_module, "module": flags["module_prefix"], **hierarchy}
    info = _inspect_info(p, options, flags["trust_code"])
    work.stop()
    if flags["as_json"]:
        click.echo(json.dumps(info, indent=2, default=str))
        return 0
    if view or check_tree or graphml:
        return _inspect_hierarchy(p, info, view, check_tree, graphml, model_ref=model_ref, trust_code=flags["trust_code"])
    _print_inspect(info)
    return 0


def _inspect_info(p: Path, options: dict[str, Any], trust_code: bool) -> dict[str, Any]:
    """What the plugin reading ``p`` reports: a bare artifact folder, an export folder (with its record) or a file."""
    from modelport.engine.pipeline import call_hook
    from modelport.folder.exportdir import METADATA_FILE, RECORD_FILE
    from modelport.plugins.host import get_plugin_manager

    if p.is_dir() and not (p / RECORD_FILE).is_file() and not (p / METADATA_FILE).is_file():
        sub = call_hook(get_plugin_manager(), p.suffix.lstrip("."), "inspect_artifact", path=p, options=options)
        if sub is None:
            raise ConfigError(f"{p}: no metadata.json (is this a modelport export directory?)")
        return cast(dict[str, Any], sub)
    if p.is_dir():
        return _inspect_export_dir(p, options, trust_code)
    if p.stat().st_size == 0:
        raise ConfigError(f"{p}: the file is empty")
    from modelport.folder.trust import check_model_file

    check_model_file(p, trust_code=trust_code)
    info = _read_artifact(p, p.suffix.lstrip("."), options)
    if info is None:
        raise ConfigError(f"{p}: no installed plugin can inspect {p.suffix or 'this'} files (see `modelport formats`)")
    return info


def _inspect_export_dir(p: Path, options: dict[str, Any], trust_code: bool) -> dict[str, Any]:
    """An export folder's metadata, the record's summary fields and, when the artifact is there, what its plugin reads."""
    from modelport.folder.exportdir import open_export

    # the record, metadata.json and every file checked as validate, bench, compare and publish check them
    opened = open_export(p, trust_code=trust_code, need_plugin=False, run_factory=False)  # reads, runs nothing
    md, record, artifact = opened.metadata, opened.record, opened.artifact
    info = {"export_dir": str(p), "metadata": md, "record": {k: record.get(k) for k in ("id", "format", "status", "options", "timings", "sizes", "notes")}}
    art = artifact.path
    if art.exists():
        sub = _read_artifact(art, artifact.format, options)
        if sub:
            info["artifact"] = sub
    return info


def _read_artifact(path: Path, fmt: str, options: dict[str, Any]) -> Any:
    """The ``inspect_artifact`` hook's answer for ``path``; a reader's failure becomes one exit-3 line naming the file."""
    from modelport.engine.pipeline import call_hook
    from modelport.plugins.host import get_plugin_manager

    try:
        return call_hook(get_plugin_manager(), fmt, "inspect_artifact", path=path, options=options)
    except ModelportError as exc:
        raise ModelportError(f"{path}: cannot be read ({str(exc).split(': ', 2)[-1]})", exit_code=3) from exc


def _inspect_hierarchy(p: Path, info: dict[str, Any], view: str | None, check_tree: bool, graphml: str | None, *,
                       model_ref: str | None = None, trust_code: bool = False) -> int:
    """``inspect --format/--check/--graphml``: the artifact's nodes by module (modelport.commands.module_view renders them)."""
    from modelport.commands import module_view

    sub = info.get("artifact", info)
    if "modules" not in sub:
        raise ConfigError(f"{p}: the {sub.get('format') or 'artifact'} format records no PyTorch module paths "
                          "(module views need a format that keeps them, e.g. onnx)")
    if graphml:
        tree = sub.get("module_tree") or []
        if not tree:
            raise ConfigError(f"{p}: no module hierarchy to write (the artifact records no module paths)")
        count = module_view.write_graphml(tree, graphml)
        click.echo(f"wrote {graphml}: {count} modules", err=True)
    if view == "json":
        click.echo(json.dumps({k: sub.get(k) for k in ("path", "modules", "module_filter", "nodes", "hierarchy_check",
                                                         "module_tree") if k in sub}, indent=2, default=str))
    elif view == "csv":
        click.echo(module_view.render_csv(sub), nl=False)
    elif view is not None:
        click.echo(module_view.render_detailed(sub) if view == "detailed" else module_view.render_summary(sub))
    if check_tree:
        result = sub.get("hierarchy_check")
        if result is None:
            raise ConfigError(f"{p}: the {sub.get('format') or 'artifact'} format cannot check its module tags")
        if model_ref:
            from modelport.commands.debug import load_model_for_debug

            tree = module_view.model_tree(load_model_for_debug(model_ref, None, None, trust_code))
            result = module_view.check_against_model(result, sub.get("nodes") or [], tree)
        lines = module_view.render_check(result)
        if not result.get("ok"):
            for line in lines[1:]:
                click.echo(line)
            _err(lines[0])
            return 1
        click.echo(lines[0])
    return 0


def _print_inspect(info: dict[str, Any], indent: int = 0) -> None:
    pad = "  " * indent
    for key, value in info.items():
        if isinstance(value, dict) and value and indent < 2:
            click.echo(f"{pad}{key}:")
            _print_inspect(value, indent + 1)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            click.echo(f"{pad}{key}:")
            for item in value:
                click.echo(f"{pad}  - " + ", ".join(f"{k}={v}" for k, v in item.items()))
        else:
            click.echo(f"{pad}{key}: {value}")


# ----------------------------------------------------------------------------- publish / pull


# publisher flags after the target (also used by `list` / `info` in modelport.cli.zoo)
_extra_options = publisher_args


class _PublishCommand(click.Command):
    """``publish --help`` / ``pull --help`` also list every installed publisher's own options (after TARGET);
    ``pull`` shows those of publishers that can pull."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from modelport.plugins.host import get_plugin_manager
        from modelport.terminal.console import quiet_work

        with quiet_work():
            publishers = sorted(get_plugin_manager().publishers.items())
        rows = []
        for scheme, (spec, _owner) in publishers:
            if ctx.command.name == "pull" and not spec.can_pull:
                continue
            for o in spec.options:
                value = "" if o.type == "bool" else " " + ("|".join(o.choices) if o.choices else o.type.upper())
                rows.append((f"--{o.name.replace('_', '-')}{value}", f"{scheme}:// {o.help}".strip()))
        if rows:
            with formatter.section("Publisher options (after TARGET; also -o key=value)"):
                formatter.write_dl(rows)
        super().format_epilog(ctx, formatter)


@main.command(cls=_PublishCommand, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("paths", nargs=-1, required=True, metavar="EXPORT_DIR... TARGET")
@click.option("--dry-run", is_flag=True, help="Stage what would be uploaded into a folder and print it.")
@click.option("--stage-dir", type=click.Path(), help="Where --dry-run stages files (default: a temp folder).")
@click.option("--force", is_flag=True, help="Overwrite what already exists at the target.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.pass_context
def publish(ctx: click.Context, paths: tuple[str, ...], dry_run: bool, stage_dir: str | None, force: bool, as_json: bool) -> None:
    """Publish EXPORT_DIR... to TARGET (file://DIR, hf://OWNER/REPO[@REV], github://OWNER/REPO@TAG).

    Publisher options go after the target: --private, --endpoint URL, -o key=value.
    """
    from modelport.api import publish as do_publish

    args = [*paths, *ctx.args]
    at = next((i for i, a in enumerate(args) if "://" in a and not a.startswith("-")), None)
    if at is None:
        if len(args) >= 2 and not args[-1].startswith("-"):
            from modelport.plugins.types import Target

            Target.parse(args[-1])  # says what is wrong with the target
        raise ConfigError("publish needs EXPORT_DIR... TARGET (file://DIR, hf://OWNER/REPO, github://OWNER/REPO@TAG)")
    dirs, target = args[:at], args[at]
    if not dirs:
        raise ConfigError("publish needs at least one EXPORT_DIR before the target")
    flags = [a for a in dirs if a.startswith("-")]
    if flags:
        raise ConfigError(f"put publisher options after the target, not before: {' '.join(flags)}")
    opts = _extra_options(args[at + 1:])
    with _Progress(as_json):
        result = do_publish(dirs, target, dry_run=dry_run, stage_dir=stage_dir, force=force, options=opts)
    if as_json:
        from modelport.plugins.types import to_jsonable

        click.echo(json.dumps(to_jsonable(result), indent=2))
        return
    if dry_run:
        click.echo(f"dry run: would publish to {result.url}; staged in {stage_dir or 'a temporary folder'}:")
    else:
        click.echo(f"published to {result.url}" + (f" ({result.revision})" if result.revision else ""))
    for f in result.files:
        click.echo(f"  {f}")
    for f in result.skipped:
        click.echo(f"  {f} (unchanged, skipped)")
    if result.message:
        click.echo(result.message)


@main.command(cls=_PublishCommand, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("target")
@click.argument("dest", type=click.Path())
@click.option("--force", is_flag=True, help="Replace a non-empty DEST.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.pass_context
def pull(ctx: click.Context, target: str, dest: str, force: bool, as_json: bool) -> None:
    """Download a published export into DEST and verify every file's sha256 against its metadata.json."""
    from modelport.api import pull as do_pull

    with _Progress(as_json):
        result = do_pull(target, dest, force=force, options=_extra_options(ctx.args))
    if as_json:
        from modelport.plugins.types import to_jsonable

        click.echo(json.dumps({**to_jsonable(result), "dest": str(dest), "verified": "sha256"}, indent=2, default=str))
        return
    click.echo(f"pulled {len(result.files)} files from {result.source} into {dest} (sha256 verified)")


# ----------------------------------------------------------------------------- bench / compare


@main.command()
@click.argument("export_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--batch", "batches", default="1", metavar="N[,N...]", help="Batch sizes to measure, e.g. 1,8.")
@click.option("--threads", type=int, help="Threads for every runtime and PyTorch (default: all cores).")
@click.option("--max-seconds", type=float, default=10.0, show_default=True, help="Time bound per measurement.")
@click.option("--plot", type=click.Path(), help="Draw latency per format and batch size to this PNG.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.option("--trust-code", is_flag=True, help="Allow loading artifacts that run code and importing the model a record names.")
def bench(export_dirs: tuple[str, ...], batches: str, threads: int | None, max_seconds: float, plot: str | None,
          as_json: bool, trust_code: bool) -> None:
    """Latency and throughput of each artifact against PyTorch eager, on the same inputs and threads."""
    from modelport.commands.bench import bench_dirs, check_plot_dependencies, plot_rows

    bs = parse_batches(batches)
    from modelport.engine.limits import check_run_settings

    check_run_settings(threads=threads, max_seconds=max_seconds)
    for b in bs:
        check_run_settings(batch=b)
    if plot:
        check_plot_dependencies()  # before the work, not after 30 s of measuring
    progress = _Progress(as_json)
    try:
        rows = bench_dirs([Path(d) for d in export_dirs], batches=bs, threads=threads, max_seconds=max_seconds,
                          progress=progress, trust_code=trust_code)
        if plot:
            plot_rows(rows, Path(plot))
    finally:
        progress.stop()
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
    else:
        from modelport.terminal.render import print_bench

        print_bench(_stdout(), rows)
        if plot:
            from modelport.terminal.console import shown_path

            click.echo(f"plot: {shown_path(plot)}")


@main.command()
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option("--atol", type=float, help="Override the absolute tolerance.")
@click.option("--rtol", type=float, help="Override the relative tolerance.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.option("--trust-code", is_flag=True, help="Allow loading artifacts that run code (TorchScript, pickled parts).")
def compare(a: str, b: str, atol: float | None, rtol: float | None, as_json: bool, trust_code: bool) -> int:
    """Run the same inputs through two exports (or an export and its PyTorch source) and diff the outputs."""
    from modelport.commands.bench import compare_dirs
    from modelport.engine.limits import check_run_settings
    from modelport.plugins.types import to_jsonable

    check_run_settings(atol=atol, rtol=rtol)
    with _Progress(as_json):
        report = compare_dirs(Path(a), Path(b), atol=atol, rtol=rtol, trust_code=trust_code)
    if as_json:
        click.echo(json.dumps(to_jsonable(report), indent=2, default=str))
    else:
        from modelport.terminal.render import print_compare

        print_compare(_stdout(), a, b, report["comparison"])
        for key, diff in (report.get("structure") or {}).items():
            click.echo(f"{key}: {diff}")
    if not report["comparison"].passed:
        _err(f"outputs differ beyond tolerance ({report['comparison'].rule}): " + "; ".join(report["comparison"].failures))
        return EXIT_VALIDATION
    return EXIT_OK


# ----------------------------------------------------------------------------- debug


@main.command("debug")
@click.argument("export_dir", type=click.Path())
@click.option("--model", "model_ref", help="The PyTorch model (.pt2, TorchScript, module:factory, file.py:factory); "
              "default: the source the record names, with --trust-code.")
@click.option("--model-kwargs", metavar="JSON", help="Keyword arguments for the model factory.")
@click.option("--checkpoint", help="State dict to load into --model (weights_only).")
@click.option("--trust-code", is_flag=True, help="Load the model source the export's record names (runs its code).")
@click.option("--atol", type=float, help="Override the absolute tolerance.")
@click.option("--rtol", type=float, help="Override the relative tolerance.")
@click.option("--max-probes", type=int, default=64, show_default=True,
              help="At most this many module boundaries exposed per run (larger models bisect and descend).")
@click.option("--input-set", type=int, help="Which recorded input set to run (default: the one the artifact gets most wrong).")
@click.option("--threads", type=int, help="Thread count for PyTorch and the runtime.")
@click.option("--plot", type=click.Path(), help="Draw error against depth to FILE.html or FILE.png.")
@click.option("--only-exposed", is_flag=True, help="Leave modules the artifact cannot expose out of the table.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def debug_cmd(export_dir: str, **flags: Any) -> int:
    """Name the module where EXPORT_DIR's artifact starts to disagree with PyTorch (exit 2 when one does)."""
    return _run_debug(export_dir, _DebugArgs(**flags))


@dataclass(frozen=True)
class _DebugArgs:
    """``modelport debug``'s flags, grouped so ``validate --debug-on-fail`` can pass the ones it shares."""

    model_ref: str | None = None
    model_kwargs: str | None = None
    checkpoint: str | None = None
    trust_code: bool = False
    atol: float | None = None
    rtol: float | None = None
    max_probes: int = 64
    input_set: int | None = None
    threads: int | None = None
    plot: str | None = None
    only_exposed: bool = False
    as_json: bool = False


def _run_debug(export_dir: str, args: _DebugArgs) -> int:
    """Check the flags, load the model, expose module boundaries in the artifact and report where it diverges."""
    from modelport.commands.debug import debug_export, load_model_for_debug, write_plot
    from modelport.models.loading import parse_model_kwargs

    if args.threads is not None and args.threads <= 0:
        raise ConfigError("--threads must be a positive integer")
    kwargs = parse_model_kwargs(args.model_kwargs)
    if (kwargs or args.checkpoint) and not args.model_ref:
        raise ConfigError("--model-kwargs and --checkpoint go with --model")
    if args.plot and Path(args.plot).suffix.lower() not in (".html", ".htm", ".png"):
        raise ConfigError(f"--plot {args.plot}: write .html or .png")
    progress = _Progress(args.as_json)
    try:
        progress("loading the model")
        model = load_model_for_debug(args.model_ref, kwargs, args.checkpoint, args.trust_code) if args.model_ref else None
        progress("running PyTorch and the artifact with module boundaries exposed")
        report = debug_export(export_dir, model, trust_code=args.trust_code, atol=args.atol, rtol=args.rtol,
                              max_probes=args.max_probes, input_set=args.input_set, threads=args.threads)
    finally:
        progress.stop()
    if args.plot:
        write_plot(report, Path(args.plot))
    _report_debug(report, args.as_json, args.only_exposed)
    return report.exit_code


def _report_debug(report: Any, as_json: bool, only_exposed: bool) -> None:
    """Print a debug report: JSON on stdout, or the module table, the verdict and what the runs cost."""
    from modelport.commands.debug import render_table

    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
        return
    out = _stdout()
    out.print(render_table(report, all_rows=not only_exposed))
    click.echo(report.summary())
    if report.fastest_growth and report.fastest_growth != report.named_module:
        click.echo(f"error grows fastest at {report.fastest_growth}")
    click.echo(f"{report.rounds} run(s) with at most {report.max_probes} module boundaries exposed; peak memory "
               f"{human_size(report.peak_rss_bytes)} (exposed tensors at most "
               f"{human_size(report.probe_bytes_max)}); {report.seconds:.1f} s")
    for note in report.notes:
        click.echo(f"note: {note}", err=True)


@main.group("plugin", hidden=True)
def plugin_group() -> None:
    """The old spelling of `modelport plugins new` (kept so existing scripts keep working)."""


@plugins.command("new")
@click.argument("name")
@click.option("--output-dir", type=click.Path(), help="Where to write it (default: ./modelport-export-NAME).")
@click.option("--display-name", help="Human name of the format (default: NAME).")
@click.option("--force", is_flag=True, help="Write into an existing non-empty folder.")
def plugin_new(name: str, output_dir: str | None, display_name: str | None, force: bool) -> None:
    """Generate a plugin distribution for format NAME: pyproject with entry point, module, README, tests."""
    from modelport.plugins.template import new_plugin, next_steps

    target, files = new_plugin(name, output_dir, display_name=display_name, force=force)
    click.echo(f"wrote {target}:\n" + "\n".join(f"  {f}" for f in files) + "\n" + next_steps(target, name))


plugin_group.add_command(plugin_new)

# `modelport list` / `modelport info`: the zoo side (modelport.cli.zoo)
from modelport.cli.zoo import register as _register_zoo_commands  # noqa: E402


@main.command()
@click.argument("model")
@click.option("--sample-inputs", required=True, type=click.Path(), help=".npz of real inputs (scoring, calibration).")
@click.option("--labels", type=click.Path(), help=".npy of true class indices for a top1 budget (else PyTorch's).")
@click.option("--budget", required=True, metavar="METRIC", help="top1=-1.0 (points), cosine>=0.999 or max_abs<=1e-3.")
@click.option("--input", "inputs", multiple=True, metavar="NAME:SHAPE[:DTYPE[:LOW,HIGH]]", help="A model input (repeatable).")
@click.option("--vision", metavar="CxHxW", help="Image preset: one float32 input N x C x H x W.")
@click.option("-f", "--format", "formats", multiple=True, help="Only these formats (default: every available one).")
@click.option("--threads", "threads_text", metavar="N[,N...]", help="Thread counts to try (default 1 and all cores).")
@click.option("--output-dir", required=True, type=click.Path(), help="Where the winner's export folder goes.")
@click.option("--time-limit", type=float, help="Stop trying new candidates after this many seconds.")
@click.option("--calibration-items", type=int, metavar="N",
              help="Calibrate on the first N sample items, score on the rest (default: the largest size tried, at most half).")
@click.option("--every-calibration-size", is_flag=True,
              help="Try every calibration size (default: a larger one only when a smaller one came close).")
@click.option("--plot", type=click.Path(), help="Save latency vs metric as a PNG (needs modelport[plot]).")
@click.option("--trust-code", is_flag=True, help="Allow loading a model whose file runs code (pickle, TorchScript).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def optimize(model: str, **flags: Any) -> None:
    """Find the fastest artifact within an accuracy budget and write it as an export folder (docs/optimize.md)."""
    from modelport.commands.optimize import NO_FIT_EXIT, cli_run

    progress = _Progress(flags["as_json"])
    try:
        result = cli_run(model, flags["sample_inputs"], flags["budget"], labels=flags["labels"], inputs=flags["inputs"],
                         vision=flags["vision"], formats=_split_formats(flags["formats"]), threads=flags["threads_text"],
                         output_dir=flags["output_dir"], time_limit=flags["time_limit"], trust_code=flags["trust_code"],
                         calibration_items=flags["calibration_items"],
                         every_calibration_size=flags["every_calibration_size"], progress=progress)
    finally:
        progress.stop()
    if flags["plot"]:
        from modelport.commands.optimize import plot_result

        plot_result(result, Path(flags["plot"]))
    if flags["as_json"]:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        from modelport.commands.optimize import print_result

        print_result(_stdout(), result)
    if result.winner is None:
        _err(f"no candidate fits the budget {result.budget} (see the table; loosen --budget or add formats)")
        sys.exit(NO_FIT_EXIT)


_register_zoo_commands(main)


if __name__ == "__main__":  # pragma: no cover
    main()

"""The ``modelport`` command line. Every failure maps to one line on stderr and a documented exit code:
0 success · 1 export failed · 2 validation failed · 3 configuration error · 130 interrupted."""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, cast

import click

from modelport.console import debug_enabled, set_debug
from modelport.errors import ConfigError, ModelportError
from modelport.options import publisher_args
from modelport.strings import redact
from modelport.version import __version__

EXIT_OK, EXIT_EXPORT, EXIT_VALIDATION, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _err(message: str) -> None:
    click.echo(redact(f"error: {message}"), err=True)


class ModelportGroup(click.Group):
    """Maps exceptions to exit codes in one place; usage errors are configuration errors (3).

    Runs the same in a terminal and in-process (click's ``CliRunner``, :func:`modelport.testing.run_cli`):
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
        from modelport.plugins import get_plugin_manager

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
            from modelport.console import end_captures

            end_captures()

    def main(self, args: Sequence[str] | None = None, *rest: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        import signal

        from modelport import store

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
        from modelport import store

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


def _interrupted() -> NoReturn:
    import signal

    from modelport import store

    store.cleanup_live_staging()
    if store.SIGNAL == signal.SIGTERM:
        _err("terminated (SIGTERM); temporary files removed")
        sys.exit(128 + signal.SIGTERM)
    _err("interrupted; temporary files removed")
    sys.exit(EXIT_INTERRUPTED)


def _stdout() -> Any:
    from modelport.console import stdout_console

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
    from modelport.console import quiet_work
    from modelport.plugins import get_plugin_manager

    with quiet_work():  # importing a plugin or probing a runtime may print
        host = get_plugin_manager()
        if not (show_options or format_name):
            rows = host.format_statuses()
            pubs = host.publisher_statuses()
    if show_options or format_name:
        from modelport.option_help import print_format_options

        print_format_options(host, format_name, as_json)
        return
    if as_json:
        click.echo(json.dumps({
            "formats": [_row_json(r) for r in rows if r.kind != "plugin"],
            "publishers": [_row_json(r) for r in pubs],
            "broken_plugins": [_row_json(r) for r in rows if r.kind == "plugin"],
        }, indent=2))
        return
    from modelport.render import print_formats

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
    from modelport.console import quiet_work
    from modelport.plugins import get_plugin_manager

    with quiet_work():
        host = get_plugin_manager()
        host.formats  # noqa: B018 - registering formats can mark a plugin broken
        host.publishers  # noqa: B018
        cast(ModelportGroup, main)._add_plugin_commands()  # ... and so can registering commands
    if as_json:
        click.echo(json.dumps([p.__dict__ for p in host.plugins], indent=2))
        return
    from modelport.render import print_plugins

    print_plugins(_stdout(), host.plugins)


@main.command()
@click.option("--record", is_flag=True, help="Print the export.json record schema instead of metadata.json's.")
def schema(record: bool) -> None:
    """Print the metadata.json JSON Schema (or export.json's with --record)."""
    if record:
        from modelport.exportdir import record_schema

        click.echo(json.dumps(record_schema(), indent=2))
        return
    from modelport.metadata import schema as _schema

    click.echo(json.dumps(_schema(), indent=2))


# ----------------------------------------------------------------------------- export


def _split_formats(values: Sequence[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


def build_input_spec(
    *, inputs: Sequence[str], vision: str | None, text: str | None, batch: int | None, dynamic: Sequence[str],
    dynamic_batch: bool, sample_arrays: Any, model_ref: str | None, config: dict[str, Any], trust_code: bool = False,
    source_spec: Any = None,
) -> Any:
    """The input spec from --input / --vision / --text / --sample-inputs / what the model source knows."""
    from modelport.inputs import InputSpec, parse_input, parse_text, parse_vision, spec_from_samples

    given = sum(bool(x) for x in (inputs, vision, text))
    if given > 1:
        raise ConfigError("use one of --input, --vision or --text")
    b = batch or int(config.get("batch_size") or 1)
    if b <= 0:
        raise ConfigError("--batch must be a positive integer")
    if inputs:
        tensors = [parse_input(s) for s in inputs]
        if batch:
            for t in tensors:
                t.shape = (batch, *t.shape[1:])
        spec = InputSpec(tensors)
    elif vision:
        spec = parse_vision(vision, batch=b)
    elif text:
        spec = parse_text(text, batch=b)
    elif config.get("input_shape"):
        shape = config["input_shape"]
        if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
            raise ConfigError("--export-config input_shape must be a list of integers")
        from modelport.inputs import TensorSpec
        from modelport.limits import check_shape

        check_shape(shape, "--export-config input_shape")

        spec = InputSpec([TensorSpec("input", tuple(shape), "float32")])
    elif sample_arrays is not None:
        spec = spec_from_samples(sample_arrays, batch=b)
    elif source_spec is not None:
        spec = source_spec
        if batch:
            for t in spec.tensors:
                t.shape = (batch, *t.shape[1:])
    elif model_ref and model_ref.endswith(".pt2") and Path(model_ref).is_file():
        from modelport.loading import input_spec_from_pt2

        try:
            found = input_spec_from_pt2(model_ref, trust_code=trust_code)
        except ModelportError:
            raise
        except Exception:
            found = None
        if found is None:
            raise ConfigError("could not read the input shapes from the .pt2; give --input NAME:SHAPE[:DTYPE]")
        spec = found
    else:
        raise ConfigError("no input spec: give --input NAME:1x3x224x224[:float32], --vision 3x224x224 or --text SEQ_LEN[:VOCAB]")
    from modelport.limits import check_dynamic_axes

    check_dynamic_axes(config.get("dynamic_axes"))
    if dynamic_batch or config.get("dynamic_axes") is True or config.get("dynamic") is True:
        spec.with_dynamic_batch()
    elif isinstance(config.get("dynamic_axes"), dict):
        for name, axes in config["dynamic_axes"].items():
            items = axes.items() if isinstance(axes, dict) else [(a, None) for a in axes]
            for axis, label in items:
                spec.with_dynamic([f"{name}:{axis}" + (f"={label}" if label else "")])
    spec.with_dynamic(list(dynamic))
    if sample_arrays is not None:
        for t in spec.tensors:
            arr = sample_arrays.get(t.name)
            if arr is None:
                raise ConfigError(f"--sample-inputs has no array named {t.name!r}")
            if tuple(arr.shape[1:]) != t.shape[1:]:
                raise ConfigError(f"--sample-inputs {t.name}: sample shape {list(arr.shape[1:])} != input shape {list(t.shape[1:])}")
    return spec


def _Progress(quiet: bool) -> Any:
    """Progress on stderr (a spinner in a terminal) and third-party output captured until ``stop()``."""
    from modelport.console import CommandProgress

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
@click.option("--output-dir", "--output_dir", "output_dir", type=click.Path(), help="Where to write (one folder per format when several).")
@click.option("--exports-root", type=click.Path(), help="Write exports/<export-id>/ and keep exports/index.json.")
@click.option("--no-validate", is_flag=True, help="Skip running the artifact against PyTorch.")
@click.option("--allow-inconclusive", is_flag=True,
              help="Exit 0 when validation is inconclusive (empty, all-zero or constant reference outputs).")
@click.option("--force", is_flag=True, help="Replace an existing output.")
@click.option("--atol", type=float, help="Override the absolute tolerance.")
@click.option("--rtol", type=float, help="Override the relative tolerance.")
@click.option("--threads", type=int, help="Thread count for PyTorch and every runtime.")
@click.option("--jobs", "jobs_text", metavar="N",
              help="Formats exported at once, in worker processes: N or auto (the default: min(formats, cores)); "
                   "1: one after another in this process.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this machine; ray: each format a Ray task (RAY_ADDRESS or a local Ray; "
                   "pip install 'modelport[ray]').")
@click.option("--bench", "run_bench", is_flag=True, help="Benchmark each artifact after export.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress, no table.")
def export(model: str | None, formats: tuple[str, ...], inputs: tuple[str, ...], vision: str | None, text: str | None,
           batch_text: str | None, dynamic: tuple[str, ...], dynamic_batch: bool, sample_inputs: str | None,
           options: tuple[str, ...], config: str | None, checkpoint: str | None, checkpoint_prefix: str | None,
           no_strict: bool, model_kwargs: str | None, trust_code: bool, input_text: str | None, task: str | None,
           model_name: str | None,
           class_names: str | None, preprocessing: str | None, postprocessing: str | None, output_dir: str | None,
           exports_root: str | None, no_validate: bool, allow_inconclusive: bool, force: bool, atol: float | None,
           rtol: float | None, threads: int | None, jobs_text: str | None, executor: str, run_bench: bool,
           as_json: bool, quiet: bool) -> int:
    """Export MODEL to one or more formats, validate each artifact, and write metadata.json + export.json.

    MODEL is a .pt2, a TorchScript archive, package.module:factory or path/to/file.py:factory, or SOURCE:REF
    for an installed model source (hf:PATH_OR_ID with modelport-source-hf).
    """
    started = time.perf_counter()
    from modelport.inputs import load_sample_inputs
    from modelport.loading import is_model_archive, parse_model_kwargs
    from modelport.metadata import parse_json_object, read_class_names
    from modelport.plugins import get_plugin_manager

    if model is None:
        if checkpoint and (checkpoint.endswith((".pt2", ".ts", ".torchscript", ".jit")) or is_model_archive(checkpoint)):
            model, checkpoint = checkpoint, None
        else:
            raise ConfigError("missing MODEL (a .pt2, TorchScript file, module:factory or file.py:factory)")
    batches = parse_batches(batch_text) if batch_text else ()
    batch = batches[0] if batches else None
    if len(batches) > 1 and not dynamic_batch:
        raise ConfigError("--batch with several sizes needs --dynamic-batch (an artifact with a fixed batch runs one size)")
    cfg = parse_json_object(config, "--export-config")
    fmts = _split_formats(formats)
    if not fmts and isinstance(cfg.get("export_format"), str):
        fmts = _split_formats([cfg.pop("export_format")])
    cfg.pop("export_format", None)
    if not fmts:
        raise ConfigError("no format given; use -f onnx,pt2 (see `modelport formats`)")
    kwargs = parse_model_kwargs(model_kwargs)
    pre = parse_json_object(preprocessing, "--preprocessing")
    post = parse_json_object(postprocessing, "--postprocessing")
    names = read_class_names(class_names) if class_names else None
    from modelport.limits import check_run_settings

    check_run_settings(threads=threads, atol=atol, rtol=rtol, batch=batch)
    from modelport.jobs import check_executor, parse_jobs

    jobs = parse_jobs(jobs_text)
    check_executor(executor)  # before the model loads: a missing Ray is one line, not a wasted load
    host = get_plugin_manager()
    from modelport.pipeline import plan

    the_plan = plan(host, fmts, options, cfg)  # formats and every option checked before torch is imported
    if not quiet and not as_json:
        for line in the_plan.skipped:
            click.echo(f"note: skipping {line}", err=True)
    specs = the_plan.specs
    every = the_plan.per_format_dirs is True
    samples = None
    if sample_inputs:
        samples = load_sample_inputs(sample_inputs)
    spec_args: dict[str, Any] = {"inputs": inputs, "vision": vision, "text": text, "batch": batch, "dynamic": dynamic,
                                 "dynamic_batch": dynamic_batch, "sample_arrays": samples, "model_ref": model,
                                 "config": cfg, "trust_code": trust_code}
    spec = None
    if inputs or vision or text or cfg.get("input_shape") or samples is not None:  # fail fast, before loading
        spec = build_input_spec(**spec_args)
        if samples is not None:
            samples = {n: samples[n] for n in spec.names}
    from modelport.pipeline import plan_targets
    from modelport.store import safe_name

    mname = safe_name(model_name, "--model-name") if model_name else None
    progress = _Progress(quiet or as_json)
    try:
        progress("loading the model")
        if output_dir is not None or exports_root is not None:  # exit 3 before loading; the name is not needed yet
            plan_targets(list(specs), mname or "model", output_dir, exports_root, force, True if every else None)
        from modelport.sources import export_resolved, resolve

        if executor == "local":  # workers start while the model loads and the reference runs
            from modelport.executors_local import prestart

            prestart(jobs, len(specs))
        resolved = resolve(model, host=host, task=task, trust_code=trust_code, input_text=input_text, batch=batch,
                           model_kwargs=kwargs, checkpoint=checkpoint, checkpoint_prefix=checkpoint_prefix,
                           strict=not no_strict)
        if spec is None and not resolved.components:
            spec = build_input_spec(**spec_args, source_spec=resolved.inputs)
        extra: dict[str, Any] = {"extra_batches": batches[1:]} if len(batches) > 1 else {}
        result = export_resolved(
            resolved, list(specs), spec, output_dir=output_dir, exports_root=exports_root,
            model_name=mname or resolved.model_name, class_names=names,
            preprocessing=pre or None, postprocessing=post or None, options=options, config=cfg,
            validate=not no_validate, force=force, atol=atol, rtol=rtol, sample_inputs=samples, threads=threads,
            host=host, progress=progress, per_format_dirs=True if every else None,
            allow_inconclusive=allow_inconclusive, nms=the_plan.nms, jobs=jobs, executor=executor,
            **extra,
        )
        bench_rows = None
        if run_bench:
            from modelport.bench import bench_dirs

            dirs = [r.path for r in result.values() if r.path is not None]
            if dirs:
                progress("benchmarking")
                bench_rows = bench_dirs(dirs, batches=(1,), threads=threads, host=host, progress=progress)
    finally:
        if executor == "local":
            from modelport.executors_local import release_warm

            release_warm()
        progress.stop()
    if not quiet and not as_json:
        for line in getattr(result, "notes", ()):
            click.echo(line, err=True)
    _report_export(result, as_json, quiet, bench_rows, time.perf_counter() - started)
    return result.exit_code


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
        from modelport.render import print_bench, print_export

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
def validate(export_dir: str, atol: float | None, rtol: float | None, threads: int | None, allow_inconclusive: bool,
             as_json: bool, debug_on_fail: bool = False, model_ref: str | None = None, trust_code: bool = False) -> int:
    """Re-run an export's artifact on its recorded inputs and check it against the recorded outputs."""
    from modelport.limits import check_run_settings
    from modelport.pipeline import validate_export
    from modelport.types import to_jsonable

    check_run_settings(threads=threads, atol=atol, rtol=rtol)
    with _Progress(as_json):
        r = validate_export(export_dir, atol=atol, rtol=rtol, threads=threads, allow_inconclusive=allow_inconclusive,
                            trust_code=trust_code)
    if debug_on_fail and r.status == "failed":
        if r.error:
            _err(r.error)
        return _run_debug(export_dir, model_ref=model_ref, model_kwargs=None, checkpoint=None, trust_code=trust_code,
                          atol=atol, rtol=rtol, threads=threads, as_json=as_json)
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
    if r.error:
        _err(r.error)
    return r.exit_code


@main.command()
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.option("--by-module", is_flag=True, help="Group nodes by PyTorch module path (formats that keep it).")
@click.option("--module", "module_prefix", help="Only the module subtree with this prefix.")
@click.option("--trust-code", is_flag=True, help="Allow reading an artifact that runs code when loaded (TorchScript, pickled parts).")
def inspect(path: str, as_json: bool, by_module: bool, module_prefix: str | None, trust_code: bool) -> None:
    """Show an artifact's or export folder's inputs, outputs, size, ops and metadata."""
    from modelport.plugins import get_plugin_manager

    work = _Progress(True)  # readers print too (coremltools, openvino); stopped before our output
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no such file or directory")
    info: dict[str, Any]
    if p.is_dir() and not (p / "export.json").is_file() and not (p / "metadata.json").is_file():
        from modelport.pipeline import call_hook

        sub = call_hook(get_plugin_manager(), p.suffix.lstrip("."), "inspect_artifact", path=p,
                        options={"by_module": by_module, "module": module_prefix})
        if sub is None:
            raise ConfigError(f"{p}: no metadata.json (is this a modelport export directory?)")
        info = sub
    elif p.is_dir():
        from modelport.metadata import load_metadata
        from modelport.pipeline import artifact_from_dir, read_record
        from modelport.trust import check_export

        md = load_metadata(p / "metadata.json")
        record = read_record(p)
        info = {"export_dir": str(p), "metadata": md, "record": {k: record.get(k) for k in ("id", "format", "status", "options", "timings", "sizes", "notes")}}
        artifact = artifact_from_dir(p, record)  # names that leave the folder are refused
        check_export(p, record, artifact.files, trust_code=trust_code)
        art = artifact.path
        if art.exists():
            from modelport.pipeline import call_hook

            try:
                sub = call_hook(get_plugin_manager(), artifact.format, "inspect_artifact", path=art,
                                options={"by_module": by_module, "module": module_prefix})
            except ModelportError as exc:
                raise ModelportError(f"{art}: cannot be read ({str(exc).split(': ', 2)[-1]})", exit_code=3) from exc
            if sub:
                info["artifact"] = sub
    else:
        if p.stat().st_size == 0:
            raise ConfigError(f"{p}: the file is empty")
        from modelport.pipeline import call_hook
        from modelport.trust import check_model_file

        check_model_file(p, trust_code=trust_code)

        try:
            info = call_hook(get_plugin_manager(), p.suffix.lstrip("."), "inspect_artifact", path=p,
                             options={"by_module": by_module, "module": module_prefix})
        except ModelportError as exc:
            raise ModelportError(f"{p}: cannot be read ({str(exc).split(': ', 2)[-1]})", exit_code=3) from exc
        if info is None:
            raise ConfigError(f"{p}: no installed plugin can inspect {p.suffix or 'this'} files (see `modelport formats`)")
    work.stop()
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    _print_inspect(info)


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


# publisher flags after the target (also used by `list` / `info` in modelport.zoo_cli)
_extra_options = publisher_args


class _PublishCommand(click.Command):
    """``publish --help`` also lists every installed publisher's own options (they go after TARGET)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from modelport.console import quiet_work
        from modelport.plugins import get_plugin_manager

        with quiet_work():
            publishers = sorted(get_plugin_manager().publishers.items())
        rows = []
        for scheme, (spec, _owner) in publishers:
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
            from modelport.types import Target

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
        from modelport.types import to_jsonable

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


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
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
        from modelport.types import to_jsonable

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
    from modelport.bench import bench_dirs, check_plot_dependencies, plot_rows

    bs = parse_batches(batches)
    from modelport.limits import check_run_settings

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
        from modelport.render import print_bench

        print_bench(_stdout(), rows)
        if plot:
            from modelport.console import shown_path

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
    from modelport.bench import compare_dirs
    from modelport.limits import check_run_settings
    from modelport.types import to_jsonable

    check_run_settings(atol=atol, rtol=rtol)
    with _Progress(as_json):
        report = compare_dirs(Path(a), Path(b), atol=atol, rtol=rtol, trust_code=trust_code)
    if as_json:
        click.echo(json.dumps(to_jsonable(report), indent=2, default=str))
    else:
        from modelport.render import print_compare

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
def debug_cmd(export_dir: str, model_ref: str | None, model_kwargs: str | None, checkpoint: str | None,
              trust_code: bool, atol: float | None, rtol: float | None, max_probes: int, input_set: int | None,
              threads: int | None, plot: str | None, only_exposed: bool, as_json: bool) -> int:
    """Name the module where EXPORT_DIR's artifact starts to disagree with PyTorch (exit 2 when one does)."""
    return _run_debug(export_dir, model_ref=model_ref, model_kwargs=model_kwargs, checkpoint=checkpoint,
                      trust_code=trust_code, atol=atol, rtol=rtol, threads=threads, as_json=as_json,
                      max_probes=max_probes, input_set=input_set, plot=plot, only_exposed=only_exposed)


def _run_debug(export_dir: str, *, model_ref: str | None, model_kwargs: str | None, checkpoint: str | None,
               trust_code: bool, atol: float | None, rtol: float | None, threads: int | None, as_json: bool,
               max_probes: int = 64, input_set: int | None = None, plot: str | None = None,
               only_exposed: bool = False) -> int:
    from modelport.debug import debug_export, load_model_for_debug, render_table, write_plot
    from modelport.loading import parse_model_kwargs

    if threads is not None and threads <= 0:
        raise ConfigError("--threads must be a positive integer")
    kwargs = parse_model_kwargs(model_kwargs)
    if (kwargs or checkpoint) and not model_ref:
        raise ConfigError("--model-kwargs and --checkpoint go with --model")
    if plot and Path(plot).suffix.lower() not in (".html", ".htm", ".png"):
        raise ConfigError(f"--plot {plot}: write .html or .png")
    progress = _Progress(as_json)
    try:
        progress("loading the model")
        model = load_model_for_debug(model_ref, kwargs, checkpoint, trust_code) if model_ref else None
        progress("running PyTorch and the artifact with module boundaries exposed")
        report = debug_export(export_dir, model, trust_code=trust_code, atol=atol, rtol=rtol,
                              max_probes=max_probes, input_set=input_set, threads=threads)
    finally:
        progress.stop()
    if plot:
        write_plot(report, Path(plot))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        out = _stdout()
        out.print(render_table(report, all_rows=not only_exposed))
        click.echo(report.summary())
        if report.fastest_growth and report.fastest_growth != report.named_module:
            click.echo(f"error grows fastest at {report.fastest_growth}")
        click.echo(f"{report.rounds} run(s) with at most {report.max_probes} module boundaries exposed; peak memory "
                   f"{report.peak_rss_bytes / 2**20:.0f} MiB (exposed tensors at most "
                   f"{report.probe_bytes_max / 2**20:.1f} MiB); {report.seconds:.1f} s")
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
    return report.exit_code


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
    from modelport.plugin_template import new_plugin, next_steps

    target, files = new_plugin(name, output_dir, display_name=display_name, force=force)
    click.echo(f"wrote {target}:\n" + "\n".join(f"  {f}" for f in files) + "\n" + next_steps(target, name))


plugin_group.add_command(plugin_new)

# `modelport list` / `modelport info`: the zoo side (modelport.zoo_cli)
from modelport.zoo_cli import register as _register_zoo_commands  # noqa: E402


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
@click.option("--plot", type=click.Path(), help="Save latency vs metric as a PNG (needs modelport[plot]).")
@click.option("--trust-code", is_flag=True, help="Allow loading a model whose file runs code (pickle, TorchScript).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def optimize(model: str, sample_inputs: str, labels: str | None, budget: str, inputs: tuple[str, ...],
             vision: str | None, formats: tuple[str, ...], threads_text: str | None, output_dir: str,
             time_limit: float | None, plot: str | None, trust_code: bool, as_json: bool) -> None:
    """Find the fastest artifact within an accuracy budget and write it as an export folder (docs/optimize.md)."""
    from modelport.optimize import NO_FIT_EXIT, cli_run

    progress = _Progress(as_json)
    try:
        result = cli_run(model, sample_inputs, budget, labels=labels, inputs=inputs, vision=vision,
                         formats=_split_formats(formats), threads=threads_text, output_dir=output_dir,
                         time_limit=time_limit, trust_code=trust_code, progress=progress)
    finally:
        progress.stop()
    if plot:
        from modelport.optimize import plot_result

        plot_result(result, Path(plot))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        from modelport.optimize import print_result

        print_result(_stdout(), result)
    if result.winner is None:
        _err(f"no candidate fits the budget {result.budget} (see the table; loosen --budget or add formats)")
        sys.exit(NO_FIT_EXIT)


_register_zoo_commands(main)


if __name__ == "__main__":  # pragma: no cover
    main()

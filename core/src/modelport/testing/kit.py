"""The conformance kit: what a plugin author runs in their own tests to prove the plugin keeps the contract.

In a plugin's ``tests/test_conformance.py``::

    from modelport.testing.kit import PluginConformance

    class TestConformance(PluginConformance):
        plugin = "modelport_myfmt"            # import name (or distribution name) of the plugin
        format = "myfmt"
        heavy_modules = ("myruntime",)        # must not be imported by `modelport formats`

pytest then runs one test per check. Or call everything at once (from pytest or a script)::

    from modelport.testing.kit import check_plugin
    report = check_plugin("modelport_myfmt", "myfmt", heavy_modules=("myruntime",))  # raises on failure
    print(report.summary())

The checks, each also a function of its own:

* :func:`check_registration` — the plugin is installed through the ``modelport`` entry-point group, loads,
  and registers the format with a well-formed :class:`~modelport.FormatSpec`.
* :func:`check_import_is_light` — importing the plugin, registering its formats and calling their availability
  checks (what ``modelport formats`` does) imports neither torch, numpy nor the runtimes you list — checked in
  a fresh interpreter.
* :func:`check_availability` — the format is available, or says why not (a reason, ideally a fix).
* :func:`check_cli_lists_format` — the real ``modelport formats --json`` lists the format and its plugin.
* :func:`check_format_object` — each format's ``FormatSpec.implementation`` imports and has ``export`` and
  ``load_runner`` (plus callable optional methods); a hook-style plugin (no implementation) gets
  :func:`check_ignores_other_formats` instead — every first-result hook returns None for another format's request.
* :func:`export_reference_model` + :func:`check_export` — the reference models in
  :mod:`modelport.testing.models` export and validate (``passed``; or ``structure-only`` / ``skipped`` with a
  reason when the artifact cannot run here), or fail with one clear line when you declare them unsupported.
* :func:`check_output_convention` — model file(s) + metadata.json + export.json + reference.npz, every file
  declared in ``FormatSpec.files``, the sha256 table correct, nothing left behind.
* :func:`check_metadata` — metadata.json passes the JSON Schema and names the format and the plugin.
* :func:`check_validate_roundtrip` — ``modelport validate`` on the written folder gives the same status again
  (Python API, and once through the real CLI).
* :func:`check_runner` — ``load_runner`` returns a reusable runner with a ``runtime`` string that returns one
  numpy array per output, as ``modelport bench`` needs.

And small helpers for a plugin's own tests: :func:`run_cli` (the real CLI, in-process by default), :func:`load_module`
(a Python file imported from its path, e.g. a file of example models), :func:`read_record` and
:func:`read_metadata` (an export folder's export.json and metadata.json).

Importing this module is cheap (no torch); the reference models are built on first use.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

from modelport.folder.exportdir import KNOWN_FILES, METADATA_FILE, RECORD_FILE, REFERENCE_FILE
from modelport.plugins.types import Availability, FormatSpec

if TYPE_CHECKING:  # pragma: no cover
    from modelport.engine.pipeline import FormatResult
    from modelport.plugins.host import PluginHost, PluginInfo

__all__ = [
    "ALWAYS_HEAVY", "CONVENTION_FILES", "DEFAULT_MODELS", "CheckResult", "CliResult", "ConformanceError", "ConformanceReport",
    "PluginConformance", "check_availability", "check_cli_lists_format", "check_export",
    "check_format_object", "check_ignores_other_formats", "check_import_is_light", "check_metadata", "check_output_convention",
    "check_plugin", "check_registration", "check_runner", "check_unsupported", "check_validate_roundtrip",
    "export_reference_model",
    "find_plugin", "load_module", "read_metadata", "read_record", "reference_models", "run_cli",
]

DEFAULT_MODELS: tuple[str, ...] = ("cnn", "mlp", "attention", "wrapper", "decoder")
# Never imported by `modelport formats`, whatever the plugin: the core's own promise.
ALWAYS_HEAVY: tuple[str, ...] = ("torch", "numpy")
# Written by the core beside every artifact.
CONVENTION_FILES: tuple[str, ...] = (METADATA_FILE, RECORD_FILE, REFERENCE_FILE)
_CORE_SIDE_FILES = set(KNOWN_FILES)
_OTHER = "modelport-conformance-other"
_TMP_PREFIX = ".modelport-tmp-"


class ConformanceError(AssertionError):
    """A plugin breaks the modelport plugin contract; the message says which rule and how to fix it."""


def _fail(message: str) -> NoReturn:
    raise ConformanceError(message)


# ----------------------------------------------------------------------------- helpers for a plugin's own tests


class CliResult(subprocess.CompletedProcess[str]):
    """What one ``modelport`` run gave: ``returncode``, ``stdout``, ``stderr``, and its ``error:`` lines."""

    @property
    def error_lines(self) -> list[str]:
        """The lines of stderr that start with ``error:`` (after the last ``\r`` of a progress bar's line)."""
        return [part for line in self.stderr.splitlines() for part in line.split("\r") if part.startswith("error:")]


def run_cli(*args: str, env: Mapping[str, str] | None = None, add_env: Mapping[str, str] | None = None,
            cwd: str | Path | None = None, timeout: float = 300, in_process: bool = True) -> CliResult:
    """Run ``modelport ARGS`` as a user would, output captured; ``env`` replaces the environment, ``add_env``
    adds to it (to ``env``, else to this process's).

    By default the CLI runs inside this process (click's CliRunner, with the environment, working folder,
    import path and plugin host a fresh process would have: :mod:`modelport.testing.cli`) — fast, and a
    failure is debuggable. ``in_process=False`` runs ``python -m modelport`` with this interpreter in a
    subprocess, for what needs a real process: import weight, signals, crashes.
    """
    if add_env:
        env = {**(os.environ if env is None else env), **add_env}
    if in_process:
        from modelport.testing.cli import run_cli_in_process

        p = run_cli_in_process(args, env=env, cwd=cwd, timeout=timeout)
    else:
        p = subprocess.run([sys.executable, "-m", "modelport", *args], capture_output=True, text=True, cwd=cwd,
                           env=None if env is None else dict(env), timeout=timeout)
    return CliResult(p.args, p.returncode, p.stdout, p.stderr)


def load_module(path: str | Path, name: str | None = None) -> ModuleType:
    """Import the Python file at ``path`` as a module named ``name`` (default: the file's stem), not put in sys.modules."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_record(export_dir: str | Path) -> dict[str, Any]:
    """The export folder's export.json, parsed as it is (no checks)."""
    return json.loads((Path(export_dir) / RECORD_FILE).read_text(encoding="utf-8"))


def read_metadata(export_dir: str | Path) -> dict[str, Any]:
    """The export folder's metadata.json, parsed as it is (no schema check: see :func:`check_metadata`)."""
    return json.loads((Path(export_dir) / METADATA_FILE).read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- finding the plugin


def _host(host: PluginHost | None) -> PluginHost:
    from modelport.plugins.host import get_plugin_manager

    return host or get_plugin_manager()


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def find_plugin(plugin: str, format: str | None = None, *, host: PluginHost | None = None) -> PluginInfo:
    """The loaded plugin named by its import name, entry-point name or distribution name."""
    h = _host(host)
    candidates = [
        p for p in h.plugins
        if plugin in (p.module, p.module.split(":")[0], p.name)
        or (p.distribution and _norm(p.distribution) == _norm(plugin))
    ]
    if format is not None and len(candidates) > 1 and format in h.formats:
        owner = h.formats[format][1].removeprefix("builtin.")
        candidates = [p for p in candidates if p.name == owner] or candidates
    if not candidates:
        _fail(
            f"{plugin}: not found in the 'modelport' entry-point group. Declare it in pyproject.toml:\n"
            f"    [project.entry-points.modelport]\n    {format or 'NAME'} = \"{plugin}\"\n"
            "and install the distribution (pip install -e .)."
        )
    info = candidates[0]
    if info.status == "broken":
        _fail(f"{plugin}: the plugin is installed but broken: {info.error}")
    if info.status == "disabled":
        _fail(f"{plugin}: the plugin is disabled by MODELPORT_LOAD_PLUGINS / MODELPORT_DISABLE_PLUGINS in this environment")
    return info


def _plugin_object(info: PluginInfo, host: PluginHost) -> Any:
    return host.pm.get_plugin(f"builtin.{info.name}" if info.status == "builtin" else info.name)


def check_registration(plugin: str, format: str | None = None, *, host: PluginHost | None = None) -> FormatSpec | None:
    """The plugin loads from its entry point and registers ``format`` with a well-formed spec."""
    h = _host(host)
    info = find_plugin(plugin, format, host=h)
    formats = h.formats  # calls register_formats; a plugin that raises there is marked broken
    if info.status == "broken":
        _fail(f"{plugin}: register_formats failed: {info.error}")
    if format is None:
        return None
    if format not in formats:
        _fail(f"{plugin}: does not register format {format!r} (register_formats registered: "
              f"{', '.join(n for n, (_, o) in formats.items() if o.removeprefix('builtin.') == info.name) or 'nothing'})")
    spec, owner = formats[format]
    if owner.removeprefix("builtin.") != info.name:
        _fail(f"format {format!r} is registered by plugin {owner!r}, not by {plugin}")
    _check_spec(spec, format)
    return spec


def _check_spec(spec: FormatSpec, format: str) -> None:
    from modelport.errors import ModelportError
    from modelport.plugins.options import coerce

    if not isinstance(spec, FormatSpec):
        _fail(f"{format}: register() must receive a modelport.FormatSpec, got {type(spec).__name__}")
    if spec.name != format or not re.fullmatch(r"[a-z][a-z0-9_-]*", spec.name):
        _fail(f"{format}: format name {spec.name!r} must be lower-case letters, digits, '-' or '_'")
    if not spec.display_name.strip():
        _fail(f"{format}: FormatSpec.display_name is empty")
    if not spec.files:
        _fail(f"{format}: FormatSpec.files is empty; list what the export writes, e.g. ('model.{format}',)")
    for f in spec.files:
        rel = f.rstrip("?").rstrip("/")
        if not rel or rel.startswith("/") or ".." in Path(rel).parts or rel in CONVENTION_FILES:
            _fail(f"{format}: FormatSpec.files entry {f!r} must be a relative name inside the export folder "
                  f"(and not one of {', '.join(CONVENTION_FILES)}, which the core writes)")
    if not callable(spec.availability):
        _fail(f"{format}: FormatSpec.availability must be a callable returning modelport.Availability")
    names = [o.name for o in spec.options]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        _fail(f"{format}: option(s) declared twice: {', '.join(dupes)}")
    for opt in spec.options:
        if not opt.help.strip():
            _fail(f"{format}: option {opt.name!r} has no help text (users see it in `modelport formats` and the docs)")
        if opt.default is not None:
            try:
                value = coerce(opt, opt.default, f"{format} option default")
            except ModelportError as exc:
                _fail(f"{format}: the default of option {opt.name!r} is not a valid {opt.type}: {exc}")
            if opt.type != "json" and value != opt.default:
                _fail(f"{format}: the default of option {opt.name!r} is {opt.default!r}, which coerces to {value!r}; "
                      f"give the typed value")
    for key, target in spec.config_aliases.items():
        if spec.option(target) is None:
            _fail(f"{format}: config_aliases maps {key!r} to {target!r}, which is not an option")


# ----------------------------------------------------------------------------- availability and import weight


def _child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child interpreter that sees exactly this process's import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.update(extra or {})
    return env


_LIGHT_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
from modelport.plugins.host import PluginHost
host = PluginHost()
info = [p.__dict__ for p in host.plugins]
rows = [r.__dict__ for r in host.format_statuses()] + [r.__dict__ for r in host.publisher_statuses()]
elapsed = time.perf_counter() - t0
watch = json.loads(sys.argv[1])
print("MODELPORT-CONFORMANCE" + json.dumps({
    "heavy": [m for m in watch if m in sys.modules], "plugins": info, "rows": rows, "seconds": elapsed,
}))
"""


def check_import_is_light(
    plugin: str, heavy_modules: Sequence[str] = (), *, host: PluginHost | None = None, timeout: float = 180,
) -> dict[str, Any]:
    """Importing the plugin, registering its formats and running their availability checks imports nothing heavy.

    Runs in a fresh interpreter with only this plugin's entry point enabled (``MODELPORT_LOAD_PLUGINS``),
    then looks in ``sys.modules`` for torch, numpy and ``heavy_modules``. Returns what the child reported.
    """
    h = _host(host)
    info = find_plugin(plugin, host=h)
    watch = list(dict.fromkeys([*ALWAYS_HEAVY, *heavy_modules]))
    only = "" if info.status == "builtin" else info.name
    proc = subprocess.run(
        [sys.executable, "-c", _LIGHT_SCRIPT, json.dumps(watch)], capture_output=True, text=True, timeout=timeout,
        env=_child_env({"MODELPORT_LOAD_PLUGINS": only}),
    )
    marker = next((line for line in proc.stdout.splitlines() if line.startswith("MODELPORT-CONFORMANCE")), None)
    if proc.returncode != 0 or marker is None:
        _fail(f"{plugin}: listing formats in a fresh interpreter failed (exit {proc.returncode}): "
              f"{(proc.stderr or proc.stdout).strip()[-1500:]}")
    data = json.loads(marker.removeprefix("MODELPORT-CONFORMANCE"))
    mine = next((p for p in data["plugins"] if p["name"] == info.name), None)
    if mine is None or mine["status"] == "broken":
        _fail(f"{plugin}: broken in a fresh interpreter: {mine['error'] if mine else 'not loaded'}")
    if data["heavy"]:
        _fail(f"{plugin}: importing the plugin and checking availability imported {', '.join(data['heavy'])}; "
              "import heavy modules inside hook bodies and check availability with modelport.requires(...) "
              "(importlib.util.find_spec, no import)")
    return data


def check_availability(format: str, *, host: PluginHost | None = None) -> Availability:
    """The format's availability is an :class:`~modelport.Availability` that says why when it is not available."""
    h = _host(host)
    if format not in h.formats:
        _fail(f"format {format!r} is not registered by any installed plugin")
    spec, _ = h.formats[format]
    t0 = time.perf_counter()
    try:
        avail = spec.availability()
    except Exception as exc:
        _fail(f"{format}: the availability check raised {type(exc).__name__}: {exc}; it must return "
              "Availability.unavailable(reason) instead")
    elapsed = time.perf_counter() - t0
    if not isinstance(avail, Availability):
        _fail(f"{format}: the availability check returned {type(avail).__name__}, expected modelport.Availability")
    if not avail.export and not (avail.reason or "").strip():
        _fail(f"{format}: unavailable without a reason; use Availability.unavailable('why', fix='pip install ...')")
    if avail.export and not avail.validate and not (avail.validate_reason or "").strip():
        _fail(f"{format}: exportable but not validatable without a validate_reason; use Availability.export_only('why')")
    if elapsed > 2.0:
        _fail(f"{format}: the availability check took {elapsed:.1f} s; `modelport formats` calls it every time — "
              "use find_spec or cache a subprocess probe")
    return avail


_CLI_SCRIPT = r"""
import json, runpy, sys
watch = json.loads(sys.argv[1])
sys.argv = ["modelport", *sys.argv[2:]]
try:
    runpy.run_module("modelport", run_name="__main__", alter_sys=True)  # what `python -m modelport` does
finally:
    print("MODELPORT-CONFORMANCE" + json.dumps(sorted(m for m in watch if m in sys.modules)), file=sys.stderr)
"""


def check_cli_lists_format(format: str, *, plugin: str | None = None, heavy_modules: Sequence[str] | None = None,
                           host: PluginHost | None = None, timeout: float = 180) -> dict[str, Any]:
    """The real ``modelport formats --json`` lists the format with the same status as this process sees.

    With ``heavy_modules`` (even empty), that CLI run must also import neither torch, numpy nor any of them:
    the whole command, every installed plugin included. Returns the format's row.
    """
    watch = [] if heavy_modules is None else list(dict.fromkeys([*ALWAYS_HEAVY, *heavy_modules]))
    proc = subprocess.run([sys.executable, "-c", _CLI_SCRIPT, json.dumps(watch), "formats", "--json"],
                          capture_output=True, text=True, timeout=timeout, env=_child_env())
    lines = proc.stderr.splitlines()
    marker = next((line for line in reversed(lines) if line.startswith("MODELPORT-CONFORMANCE")), None)
    stderr = "\n".join(line for line in lines if not line.startswith("MODELPORT-CONFORMANCE"))
    if proc.returncode != 0:
        _fail(f"`modelport formats --json` exited {proc.returncode}: {stderr.strip()[-1000:]}")
    if marker is None:
        _fail(f"`modelport formats --json` did not finish normally: {stderr.strip()[-1000:]}")
    heavy = json.loads(marker.removeprefix("MODELPORT-CONFORMANCE"))
    if heavy:
        _fail(f"`modelport formats --json` imported {', '.join(heavy)}; import heavy modules inside hook bodies and "
              "check availability with modelport.requires(...) (importlib.util.find_spec, no import)")
    rows = {r["name"]: r for r in json.loads(proc.stdout)["formats"]}
    row = rows.get(format)
    if row is None:
        _fail(f"`modelport formats --json` does not list {format!r}")
    avail = check_availability(format, host=host)
    expected = "available" if avail.export else "unavailable"
    if row["status"] != expected:
        _fail(f"`modelport formats` shows {format} as {row['status']!r} ({row.get('reason')}), expected {expected!r}")
    if not avail.export and not row.get("reason"):
        _fail(f"`modelport formats` shows {format} unavailable without a reason")
    if plugin is not None:
        info = find_plugin(plugin, format, host=host)
        if info.distribution and row.get("plugin") != info.distribution:
            _fail(f"`modelport formats` names plugin {row.get('plugin')!r} for {format}, expected {info.distribution!r}")
    return row


_FIRST_RESULT_HOOKS = ("export", "load_runner", "validate", "inspect_artifact", "load_intermediates")


def check_ignores_other_formats(plugin: str, *, host: PluginHost | None = None, workdir: str | Path | None = None,
                                other_format: str = _OTHER) -> list[str]:
    """Every first-result hook of the plugin returns None for a request that is not its own.

    A hook that answers for every format would hijack other plugins' exports. The requests name ``other_format``
    (format, file suffix and target scheme): a made-up one by default, or a real one such as ``"onnx"`` to check
    that the plugin leaves that one alone. Returns the hooks checked.
    """
    from modelport.engine.inputs import InputSpec, TensorSpec
    from modelport.plugins.types import Artifact, ExportRequest, Target

    h = _host(host)
    info = find_plugin(plugin, host=h)
    obj = _plugin_object(info, h)
    own = {name for name, (_, owner) in h.formats.items() if owner.removeprefix("builtin.") == info.name}
    if other_format in own:
        raise ValueError(f"other_format {other_format!r} is a format of {plugin} itself; name another plugin's format")
    other = other_format
    with tempfile.TemporaryDirectory(prefix="modelport-conformance-", dir=workdir) as tmp:
        root = Path(tmp)
        foreign_artifact = Artifact(format=other, path=root / f"model.{other}", files=[f"model.{other}"])
        target = Target(scheme=other, location="nowhere", raw=f"{other}://nowhere")
        calls: dict[str, dict[str, Any]] = {
            "export": {"request": ExportRequest(
                format=other, model=None, inputs=InputSpec([TensorSpec("x", (1, 2))]), example_inputs=(),
                options={}, workdir=root, output_names=["output"])},
            "load_runner": {"artifact": foreign_artifact, "options": {"threads": 1}},
            "validate": {"artifact": foreign_artifact, "inputs": []},
            "describe_metadata": {"artifact": foreign_artifact, "request": None},
            "inspect_artifact": {"path": root / f"model.{other}", "options": {}},
            "publish": {"export_dir": root, "target": target, "options": {"dry_run": True, "stage_dir": root}},
            "pull": {"target": target, "dest": root, "options": {}},
        }
        checked = []
        for hook, kwargs in calls.items():
            for impl in getattr(h.pm.hook, hook).get_hookimpls():
                if impl.plugin is not obj or impl.hookwrapper or getattr(impl, "wrapper", False):
                    continue
                try:
                    value = impl.function(**{k: kwargs[k] for k in impl.argnames})
                except Exception as exc:
                    _fail(f"{plugin}: {hook} raised {type(exc).__name__} for another plugin's {_what(hook)}: {exc}; "
                          f"check the format first and return None")
                if value is not None:
                    _fail(f"{plugin}: {hook} returned {type(value).__name__} for another plugin's {_what(hook)}; "
                          "first-result hooks must return None for requests that are not theirs")
                checked.append(hook)
        leftovers = list(root.iterdir())
        if leftovers:
            _fail(f"{plugin}: wrote {', '.join(p.name for p in leftovers)} while answering another format's request")
    return checked


def check_format_object(plugin: str, *, host: PluginHost | None = None) -> list[str]:
    """Each of the plugin's formats with an ``implementation`` imports it and finds the format-object methods.

    Formats registered without one are hook-style: their hooks are checked with :func:`check_ignores_other_formats`.
    A format-object plugin needs no guards; only first-result hooks it still implements besides its objects (a
    leftover ``load_runner`` would answer for every format) get that check. Returns the names of the formats whose
    format object was checked.
    """
    from modelport.plugins.format_objects import OPTIONAL_METHODS, missing_methods, resolve

    h = _host(host)
    info = find_plugin(plugin, host=h)
    own = {name: spec for name, (spec, owner) in h.formats.items() if owner.removeprefix("builtin.") == info.name}
    if not any(spec.implementation is not None for spec in own.values()):
        check_ignores_other_formats(plugin, host=h)
        return []
    for name, spec in own.items():
        if spec.implementation is None:
            _fail(f"{plugin}: format {name!r} has no implementation while the plugin's other formats do; "
                  "give every format a format object")
        try:
            obj = resolve(spec.implementation)
        except Exception as exc:
            _fail(f"{plugin}: format {name!r}: implementation {spec.implementation!r} does not load: "
                  f"{type(exc).__name__}: {exc}")
        missing = missing_methods(obj)
        if missing:
            _fail(f"{plugin}: format {name!r}: the format object {type(obj).__name__} has no "
                  f"{', '.join(missing)} method")
        odd = [m for m in OPTIONAL_METHODS if hasattr(obj, m) and not callable(getattr(obj, m))]
        if odd:
            _fail(f"{plugin}: format {name!r}: {', '.join(odd)} on {type(obj).__name__} is not callable")
        if not all(str(x).startswith(".") for x in spec.suffixes):
            _fail(f"{plugin}: format {name!r}: suffixes must look like '.onnx', got {spec.suffixes!r}")
        if spec.suffixes and not callable(getattr(obj, "inspect", None)):
            _fail(f"{plugin}: format {name!r} claims suffixes {spec.suffixes!r} but has no inspect method")
    if _first_result_hooks(info, h):
        check_ignores_other_formats(plugin, host=h)
    return sorted(own)


def _first_result_hooks(info: PluginInfo, host: PluginHost) -> list[str]:
    """The first-result hooks (not wrappers) the plugin itself implements."""
    obj = _plugin_object(info, host)
    return [hook for hook in _FIRST_RESULT_HOOKS for impl in getattr(host.pm.hook, hook).get_hookimpls()
            if impl.plugin is obj and not impl.hookwrapper and not getattr(impl, "wrapper", False)]


def _what(hook: str) -> str:
    return {"publish": "target", "pull": "target", "inspect_artifact": "file"}.get(hook, "format")


# ----------------------------------------------------------------------------- exporting the reference models


def reference_models() -> dict[str, Any]:
    """The reference models by name (``cnn``, ``mlp``, ``attention``, ``wrapper``, ``decoder``); see
    :mod:`modelport.testing.models`."""
    from modelport.testing.models import REFERENCE_MODELS

    return dict(REFERENCE_MODELS)


def export_reference_model(
    format: str,
    model: str,
    output_dir: str | Path,
    *,
    options: Mapping[str, Any] | None = None,
    dynamic_batch: bool = True,
    host: PluginHost | None = None,
) -> FormatResult:
    """Export one reference model to ``format`` into ``output_dir`` through the public API (validation on)."""
    import modelport

    refs = reference_models()
    if model not in refs:
        raise ValueError(f"unknown reference model {model!r}; choose from {', '.join(refs)}")
    ref = refs[model]
    result = modelport.export(
        ref.build(), [format], ref.inputs(dynamic_batch), output_dir=output_dir, model_name=f"conformance_{model}",
        task=ref.task, config={format: dict(options)} if options else None, force=True, host=_host(host),
    )
    return result[format]


def _expected_statuses(expect_validate: bool) -> tuple[str, ...]:
    return ("passed",) if expect_validate else ("structure-only", "skipped")


def check_export(result: FormatResult, *, expect_validate: bool = True) -> None:
    """The export was written and validated as expected.

    ``expect_validate=True``: the artifact ran in its runtime and matched PyTorch (status ``passed``).
    ``False``: it cannot run here, and says so (``structure-only`` or ``skipped`` with a reason) — never ``failed``.
    """
    if result.status == "error" or result.path is None:
        _fail(f"{result.format}: export failed (exit {result.exit_code}): {result.error}")
    if result.status == "failed":
        _fail(f"{result.format}: the artifact does not match PyTorch: {result.error}")
    wanted = _expected_statuses(expect_validate)
    if result.status not in wanted:
        _fail(f"{result.format}: validation status {result.status!r} ({result.validation_note or 'no note'}), "
              f"expected {' or '.join(wanted)}" + ("; pass expect_validate=False if the artifact cannot run here"
                                                   if expect_validate else ""))
    if not expect_validate and not (result.validation_note or "").strip():
        _fail(f"{result.format}: validation was {result.status} without saying why; return "
              "ValidationRun(outputs=None, skipped='why it cannot run here')")
    if expect_validate and (result.validation is None or not result.validation.passed):
        _fail(f"{result.format}: status passed without a numeric comparison")
    if result.exit_code != 0:
        _fail(f"{result.format}: exit code {result.exit_code} for status {result.status}")


def check_unsupported(result: FormatResult, why: str) -> None:
    """A model the plugin declares unsupported fails with one clear line that contains ``why``."""
    if result.status != "error":
        _fail(f"{result.format}: expected the export to fail ({why!r}) but it ended {result.status!r}; "
              "remove it from `unsupported`")
    msg = result.error or ""
    if "\n" in msg.strip() or why.lower() not in msg.lower():
        _fail(f"{result.format}: the failure should be one line mentioning {why!r}, got: {msg!r}")
    if result.exit_code not in (1, 3):
        _fail(f"{result.format}: a refused model must exit 1 (ExportFailed) or 3 (ConfigError), got {result.exit_code}")


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    for pat in patterns:
        p = pat.rstrip("?")
        if p.endswith("/"):
            if rel.startswith(p):
                return True
        elif fnmatch.fnmatchcase(rel, p) or rel.startswith(p + "/"):
            return True
    return False


def check_output_convention(export_dir: str | Path, spec: FormatSpec | None = None, *,
                            host: PluginHost | None = None) -> dict[str, Any]:
    """The export folder follows the convention: model file(s) + metadata.json + export.json + reference.npz.

    Every file the plugin wrote is declared in ``FormatSpec.files`` (``?`` marks optional ones), every
    required declared file exists, and metadata.json's ``files`` table lists each artifact file with its
    correct size and sha256. Returns the export record.
    """
    from modelport.engine.pipeline import verify_files

    d = Path(export_dir)
    for name in CONVENTION_FILES:
        if not (d / name).is_file():
            _fail(f"{d}: {name} is missing")
    record = read_record(d)
    md = read_metadata(d)
    fmt = str(record.get("format"))
    if spec is None:
        spec = _host(host).formats[fmt][0]
    if not (d / str(record.get("artifact"))).exists():
        _fail(f"{d}: export.json names artifact {record.get('artifact')!r}, which is not there")
    table = md.get("files") or {}
    if not table:
        _fail(f"{d}: metadata.json has an empty files table")
    for core_file in CONVENTION_FILES:
        if core_file in table:
            _fail(f"{d}: metadata.json's files table lists {core_file}; it lists artifact files only")
    bad = verify_files(d, table)
    if bad:
        _fail(f"{d}: files table does not match the disk: {', '.join(bad)}")
    on_disk = sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file())
    written = [f for f in on_disk if f not in _CORE_SIDE_FILES]
    unlisted = [f for f in written if f not in table]
    if unlisted:
        _fail(f"{d}: file(s) on disk but not in metadata.json's files table: {', '.join(unlisted)}")
    undeclared = [f for f in written if not _matches(f, spec.files)]
    if undeclared:
        _fail(f"{fmt}: wrote {', '.join(undeclared)}, which FormatSpec.files {list(spec.files)} does not declare "
              "(add it, with '?' if it is optional)")
    for pat in spec.files:
        if pat.endswith("?") or any(ch in pat for ch in "*[]"):
            continue
        rel = pat.rstrip("/")
        if not (d / rel).exists():
            _fail(f"{fmt}: FormatSpec.files declares {pat!r} but the export did not write it (mark it optional with '?')")
    for rel in record.get("artifact_files") or []:
        if (d / rel).is_dir():
            if not any(k.startswith(rel.rstrip("/") + "/") for k in table):
                _fail(f"{d}: artifact folder {rel} has no files in the files table")
        elif rel not in table:
            _fail(f"{d}: artifact file {rel} is not in metadata.json's files table")
    stray = [p.name for p in d.parent.iterdir() if p.name.startswith(_TMP_PREFIX)]
    if stray:
        _fail(f"{d.parent}: temporary folder(s) left behind: {', '.join(stray)}")
    if record.get("files", {}).keys() != {*table.keys(), REFERENCE_FILE}:
        _fail(f"{d}: export.json's files table differs from metadata.json's (plus reference.npz)")
    return record


def check_metadata(export_dir: str | Path, format: str | None = None, *, plugin: str | None = None,
                   host: PluginHost | None = None) -> dict[str, Any]:
    """metadata.json passes the JSON Schema and names the right format, plugin and validation status."""
    from modelport.folder.metadata import validation_errors

    d = Path(export_dir)
    md = read_metadata(d)
    errors = validation_errors(md)
    if errors:
        _fail(f"{d}/metadata.json fails the schema: " + "; ".join(errors[:5]))
    record = read_record(d)
    if format is not None and md["export_format"] != format:
        _fail(f"{d}/metadata.json: export_format is {md['export_format']!r}, expected {format!r}")
    if plugin is not None:
        info = find_plugin(plugin, format, host=host)
        expected = info.distribution or info.name
        if (md.get("plugin") or {}).get("name") != expected:
            _fail(f"{d}/metadata.json: plugin.name is {(md.get('plugin') or {}).get('name')!r}, expected {expected!r}")
    status = (md.get("validation") or {}).get("status")
    if status != (record.get("validation") or {}).get("status"):
        _fail(f"{d}: metadata.json and export.json disagree on the validation status")
    if record.get("artifact_inputs") is None and sorted(md["input_shape"]) != sorted(t["name"] for t in record["inputs"]):
        _fail(f"{d}/metadata.json: input_shape names {sorted(md['input_shape'])} differ from the model's inputs")
    if len(md["output_shape"]) != len(record.get("outputs") or []):
        _fail(f"{d}/metadata.json: {len(md['output_shape'])} outputs described, the model has {len(record.get('outputs') or [])}")
    return md


def check_validate_roundtrip(export_dir: str | Path, *, expect_validate: bool = True, cli: bool = False,
                             host: PluginHost | None = None, timeout: float = 300) -> FormatResult:
    """Re-validating the written folder (``modelport validate``) gives the status the export recorded."""
    import modelport

    d = Path(export_dir)
    record = read_record(d)
    recorded = (record.get("validation") or {}).get("status")
    result = modelport.validate(d, host=_host(host))
    wanted = _expected_statuses(expect_validate)
    if result.status not in wanted or result.status != recorded:
        _fail(f"{d}: `modelport validate` says {result.status!r} ({result.error or result.validation_note}); "
              f"the export recorded {recorded!r}, expected {' or '.join(wanted)}")
    if cli:
        proc = run_cli("validate", str(d), "--json", timeout=timeout)
        if proc.returncode != 0:
            _fail(f"`modelport validate {d}` exited {proc.returncode}: {proc.stderr.strip()[-1000:]}")
        status = json.loads(proc.stdout)["status"]
        if status != recorded:
            _fail(f"`modelport validate {d}` says {status!r}, the export recorded {recorded!r}")
    return result


def check_runner(export_dir: str | Path, *, host: PluginHost | None = None, required: bool = True) -> Any:
    """``load_runner`` gives a reusable runner that ``modelport bench`` can time.

    It has a ``runtime`` string, takes ``{input name: ndarray}`` and returns one ndarray per model output with
    the reference shapes, twice in a row with the same values. Returns the runner (None when the plugin has
    none and ``required`` is False).
    """
    import numpy as np

    from modelport.engine.inputs import InputSpec
    from modelport.engine.pipeline import artifact_from_dir, call_hook, load_reference

    h = _host(host)
    d = Path(export_dir)
    record = read_record(d)
    artifact = artifact_from_dir(d, record)
    runner = call_hook(h, artifact.format, "load_runner", artifact=artifact, options={"threads": 1})
    if runner is None:
        if required:
            _fail(f"{artifact.format}: load_runner returned None for a validated artifact; `modelport bench` "
                  "cannot time it")
        return None
    if not callable(runner):
        _fail(f"{artifact.format}: load_runner returned a {type(runner).__name__}, which is not callable")
    if not isinstance(getattr(runner, "runtime", None), str) or not runner.runtime:
        _fail(f"{artifact.format}: the runner has no `runtime` string attribute (e.g. 'onnxruntime 1.20.1')")
    spec = InputSpec.from_dict(record["inputs"])
    ref = load_reference(d / REFERENCE_FILE, spec.names, len(record.get("outputs") or []))
    inputs = dict(ref.inputs[0])
    first = [np.asarray(o).copy() for o in runner(dict(inputs))]
    second = [np.asarray(o) for o in runner(dict(inputs))]
    if len(first) != len(ref.outputs[0]):
        _fail(f"{artifact.format}: the runner returned {len(first)} outputs, the model has {len(ref.outputs[0])} "
              "(flatten tuples and dicts in the model's output order)")
    for i, (got, want) in enumerate(zip(first, ref.outputs[0], strict=True)):
        if not isinstance(got, np.ndarray):
            _fail(f"{artifact.format}: runner output {i} is a {type(got).__name__}, expected numpy.ndarray")
        if tuple(got.shape) != tuple(np.asarray(want).shape):
            _fail(f"{artifact.format}: runner output {i} has shape {list(got.shape)}, the model's is "
                  f"{list(np.asarray(want).shape)}")
    for i, (a, b) in enumerate(zip(first, second, strict=True)):
        if a.shape != b.shape or not np.allclose(a, b, equal_nan=True):
            _fail(f"{artifact.format}: calling the runner twice on the same inputs gave different output {i}")
    return runner


def check_intermediates(export_dir: str | Path, model: Any, *, host: PluginHost | None = None,
                        probes: int = 2) -> Any:
    """``load_intermediates`` (``modelport debug``) exposes module outputs that match PyTorch's on a valid artifact.

    Skipped (returns None) when the format does not implement the hook. Otherwise the runner needs a ``mode``
    (``end-to-end`` or ``per-module``), ``taps`` naming modules of ``model``, and for ``probes`` of them (the first
    and last in execution order) it must return arrays of PyTorch's shapes, within the artifact's tolerance.
    """
    from modelport.commands.debug import compare_tensor, run_torch
    from modelport.engine.compare import profile_for
    from modelport.engine.inputs import InputSpec
    from modelport.engine.pipeline import artifact_from_dir, call_hook, load_reference

    h = _host(host)
    d = Path(export_dir)
    record = read_record(d)
    artifact = artifact_from_dir(d, record)
    spec = InputSpec.from_dict(record["inputs"])
    ref = load_reference(d / REFERENCE_FILE, spec.names, len(record.get("outputs") or []))
    args = spec.to_torch(ref.inputs[0])
    first = run_torch(model, args)
    options = {"threads": 1, "model": model, "modules": {c.module: c.cls for c in first.calls}}
    runner = call_hook(h, artifact.format, "load_intermediates", artifact=artifact, options=options)
    if runner is None:
        return None
    if getattr(runner, "mode", None) not in ("end-to-end", "per-module"):
        _fail(f"{artifact.format}: the intermediates runner's mode is {getattr(runner, 'mode', None)!r}, "
              "expected 'end-to-end' or 'per-module'")
    taps = dict(getattr(runner, "taps", {}) or {})
    known = {c.module for c in first.calls}
    strangers = sorted(set(taps) - known - {n for n, _ in model.named_modules()})
    if strangers:
        _fail(f"{artifact.format}: taps name modules the model does not have: {', '.join(strangers[:5])}")
    exposed = [c.module for c in first.calls if c.module in taps]
    if not exposed:
        _fail(f"{artifact.format}: load_intermediates exposes no module of the reference model")
    per_module = runner.mode == "per-module"
    # per-module formats may rebuild a sub-program per module (slow): one is enough to check the contract
    chosen = list(dict.fromkeys([exposed[-1]] if per_module else [exposed[0], exposed[-1]]))[:probes]
    torch_run = run_torch(model, args, keep=set(chosen), keep_inputs=set(chosen) if per_module else None)
    got = runner.run(dict(ref.inputs[0]), chosen, torch_run.inputs if per_module else None)
    tol = profile_for(artifact.precision)
    for m in chosen:
        if m not in got:
            _fail(f"{artifact.format}: the intermediates runner returned nothing for module {m!r}, which it taps")
        status, fields = compare_tensor(m, torch_run.outputs[m], got[m], tol, artifact.precision)
        if status != "ok":
            _fail(f"{artifact.format}: module {m!r}: the exposed tensor disagrees with PyTorch's output of it on a "
                  f"validated artifact ({fields.get('note') or fields})")
    return runner


# ----------------------------------------------------------------------------- everything at once


@dataclass
class CheckResult:
    """One check: its name, whether it passed, was skipped, and the detail."""

    name: str
    passed: bool
    detail: str = ""
    skipped: bool = False


@dataclass
class ConformanceReport:
    """Every check run by :func:`check_plugin`, plus the export results (model → FormatResult).

    The export folders outlive the call only when ``check_plugin`` was given an ``output_dir``.
    """

    plugin: str
    format: str | None
    checks: list[CheckResult] = field(default_factory=list)
    exports: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed and not c.skipped]

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        lines = [f"modelport conformance: {self.plugin}" + (f" ({self.format})" if self.format else "")]
        for c in self.checks:
            mark = "skip" if c.skipped else ("ok  " if c.passed else "FAIL")
            lines.append(f"  {mark} {c.name}" + (f": {c.detail}" if c.detail else ""))
        return "\n".join(lines)

    def raise_for_failures(self) -> None:
        if self.failures:
            raise ConformanceError(self.summary())


@dataclass
class _Suite:
    """The checks of one good export, shared by :func:`check_plugin` and :class:`PluginConformance` so both
    run the same checks with the same arguments."""

    plugin: str
    format: str
    spec: FormatSpec | None
    expect: bool  # the artifacts run here: validation passes, the runner contract applies
    host: PluginHost | None = None

    def export_checks(self, d: Path, *, cli: bool) -> dict[str, Callable[[], Any]]:
        """Check name → check, in the order they run; ``cli`` also drives ``modelport validate``."""
        h = self.host
        checks: dict[str, Callable[[], Any]] = {
            "output convention": partial(check_output_convention, d, self.spec, host=h),
            "metadata.json passes the schema": partial(check_metadata, d, self.format, plugin=self.plugin, host=h),
            "validate round-trips": partial(check_validate_roundtrip, d, expect_validate=self.expect, cli=cli, host=h),
        }
        if self.expect:
            checks["runner contract"] = partial(check_runner, d, host=h)
        return checks


def _export_references(format: str, models: Sequence[str], root: Path, *, options: Mapping[str, Any] | None,
                       dynamic_batch: bool, host: PluginHost | None = None) -> Iterator[tuple[str, FormatResult]]:
    """Export each reference model into ``root/<model>``, one at a time (a check may stop the run early)."""
    for model in models:
        yield model, export_reference_model(format, model, root / model, options=options, dynamic_batch=dynamic_batch,
                                            host=host)


def check_plugin(
    plugin: str,
    format: str | None = None,
    *,
    models: Sequence[str] = DEFAULT_MODELS,
    unsupported: Mapping[str, str] | None = None,
    heavy_modules: Sequence[str] = (),
    options: Mapping[str, Any] | None = None,
    expect_validate: bool | None = None,
    dynamic_batch: bool = True,
    output_dir: str | Path | None = None,
    cli: bool = True,
    host: PluginHost | None = None,
    raise_on_failure: bool = True,
) -> ConformanceReport:
    """Run every conformance check for ``plugin`` and its ``format`` and return the report.

    :param plugin: import name (``modelport_onnx``), entry-point name or distribution name of the plugin.
    :param format: the format it registers; None for plugins that only wrap or publish (registration and
        import weight are still checked).
    :param models: reference models to export (``cnn``, ``mlp``, ``attention``).
    :param unsupported: reference model → text its one-line export failure must contain.
    :param heavy_modules: your runtime's modules, which ``modelport formats`` must not import.
    :param options: format options for the exports (``{"opset": 18}``).
    :param expect_validate: True: every export validates ``passed``; False: the artifact cannot run here and
        validation says so. None (default): whatever the format's availability says for this machine.
    :param output_dir: where the exports go (a temporary folder, removed afterwards, by default).
    :param cli: also drive the real CLI: ``modelport formats`` in a subprocess (it checks import weight),
        ``modelport validate`` in-process (:func:`run_cli`).
    :param raise_on_failure: raise :class:`ConformanceError` with the summary when any check failed.
    """
    h = _host(host)
    report = ConformanceReport(plugin, format)
    unsupported = dict(unsupported or {})

    values: dict[str, Any] = {}

    def run(name: str, fn: Callable[[], Any]) -> bool:
        try:
            values[name] = fn()
        except ConformanceError as exc:
            report.checks.append(CheckResult(name, False, str(exc)))
            return False
        report.checks.append(CheckResult(name, True))
        return True

    registered = run("registers", lambda: check_registration(plugin, format, host=h))
    run("import and availability are light", lambda: check_import_is_light(plugin, heavy_modules, host=h))
    run("format object loads (or hooks return None for other formats)", lambda: check_format_object(plugin, host=h))
    if format is None or not registered:
        if raise_on_failure:
            report.raise_for_failures()
        return report
    spec = values["registers"]
    if not run("availability says why", lambda: check_availability(format, host=h)):
        if raise_on_failure:
            report.raise_for_failures()
        return report
    avail: Availability = values["availability says why"]
    if cli:
        run("`modelport formats --json` lists the format", lambda: check_cli_lists_format(format, plugin=plugin, host=h))
    if not avail.export:
        report.checks.append(CheckResult("exports the reference models", False, f"unavailable here: {avail.reason}",
                                         skipped=True))
        if raise_on_failure:
            report.raise_for_failures()
        return report
    expect = expect_validate if expect_validate is not None else avail.validate
    suite = _Suite(plugin, format, spec, expect, h)
    with _output_root(output_dir) as root:
        cli_done = False
        debug_done = False
        for model, result in _export_references(format, models, root, options=options, dynamic_batch=dynamic_batch,
                                                host=h):
            report.exports[model] = result
            if model in unsupported:
                run(f"{model}: refused with a clear reason", partial(check_unsupported, result, unsupported[model]))
                continue
            if not run(f"{model}: exports and validates", partial(check_export, result, expect_validate=expect)):
                continue
            d = result.path
            if d is None:  # check_export has failed already
                continue
            for name, check in suite.export_checks(d, cli=cli and not cli_done).items():
                run(f"{model}: {name}", check)
            cli_done = True
            if expect and not debug_done and getattr(h.pm.hook, "load_intermediates", None) is not None:
                debug_done = True

                def intermediates(d: Path = d, m: str = model) -> Any:  # builds the model inside the check
                    return check_intermediates(d, reference_models()[m].build(), host=h)

                run(f"{model}: debug intermediates (load_intermediates)", intermediates)
    if raise_on_failure:
        report.raise_for_failures()
    return report


@contextlib.contextmanager
def _output_root(output_dir: str | Path | None) -> Iterator[Path]:
    """The folder exports go to: the caller's, or a temporary one removed afterwards."""
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        yield Path(output_dir)
        return
    with tempfile.TemporaryDirectory(prefix="modelport-conformance-") as tmp:
        yield Path(tmp)


# ----------------------------------------------------------------------------- pytest base class


class PluginConformance:
    """Subclass as ``TestSomething`` in a plugin's tests: pytest runs one test per conformance check.

    Set the class attributes; the reference exports are made once per class (in pytest's temporary folder)
    and shared by the checks that read them. A format that is unavailable on this machine skips the export
    checks with its reason — after checking that it gives one.
    """

    plugin: str = ""
    format: str | None = None
    heavy_modules: tuple[str, ...] = ()
    models: tuple[str, ...] = DEFAULT_MODELS
    unsupported: Mapping[str, str] = {}
    options: Mapping[str, Any] = {}
    expect_validate: bool | None = None
    dynamic_batch: bool = True

    # -- helpers ---------------------------------------------------------------------------------------

    def _require_format(self) -> str:
        import pytest

        if not self.plugin:
            pytest.fail(f"{type(self).__name__}: set the `plugin` class attribute")
        if self.format is None:
            pytest.skip("this plugin registers no format")
        return self.format

    def _expect(self) -> bool:
        if self.expect_validate is not None:
            return self.expect_validate
        return check_availability(self._require_format()).validate

    def _exports(self, tmp_path_factory: Any) -> dict[str, FormatResult]:
        import pytest

        fmt = self._require_format()
        avail = check_availability(fmt)
        if not avail.export:
            pytest.skip(f"{fmt} is unavailable here: {avail.reason}")
        cls = type(self)
        cache = cls.__dict__.get("_conformance_exports")
        if cache is None:
            root = tmp_path_factory.mktemp(f"conformance-{fmt}")
            cache = dict(_export_references(fmt, self.models, root, options=self.options,
                                            dynamic_batch=self.dynamic_batch))
            cls._conformance_exports = cache  # type: ignore[attr-defined]
        return cache

    def _run_export_check(self, tmp_path_factory: Any, name: str) -> None:
        """Run the shared check ``name`` (see ``_Suite.export_checks``) on every good export; the CLI on the first."""
        suite = _Suite(self.plugin, self._require_format(), check_registration(self.plugin, self.format), self._expect())
        for i, (_, d) in enumerate(self._good_exports(tmp_path_factory)):
            suite.export_checks(d, cli=i == 0)[name]()

    def _good_exports(self, tmp_path_factory: Any) -> Iterator[tuple[str, Path]]:
        for model, result in self._exports(tmp_path_factory).items():
            if model in self.unsupported:
                continue
            check_export(result, expect_validate=self._expect())
            assert result.path is not None
            yield model, result.path

    # -- the checks ------------------------------------------------------------------------------------

    def test_registers_through_entry_point(self) -> None:
        check_registration(self.plugin, self.format)

    def test_import_and_availability_are_light(self) -> None:
        check_import_is_light(self.plugin, self.heavy_modules)

    def test_format_object_loads(self) -> None:
        check_format_object(self.plugin)

    def test_availability_says_why(self) -> None:
        check_availability(self._require_format())

    def test_cli_lists_format(self) -> None:
        check_cli_lists_format(self._require_format(), plugin=self.plugin)

    def test_exports_reference_models(self, tmp_path_factory: Any) -> None:
        failures = []
        for model, result in self._exports(tmp_path_factory).items():
            try:
                if model in self.unsupported:
                    check_unsupported(result, self.unsupported[model])
                else:
                    check_export(result, expect_validate=self._expect())
            except ConformanceError as exc:
                failures.append(f"{model}: {exc}")
        if failures:
            _fail("\n".join(failures))

    def test_output_convention(self, tmp_path_factory: Any) -> None:
        self._run_export_check(tmp_path_factory, "output convention")

    def test_metadata_passes_schema(self, tmp_path_factory: Any) -> None:
        self._run_export_check(tmp_path_factory, "metadata.json passes the schema")

    def test_validate_round_trips(self, tmp_path_factory: Any) -> None:
        self._run_export_check(tmp_path_factory, "validate round-trips")

    def test_runner_contract(self, tmp_path_factory: Any) -> None:
        import pytest

        if not self._expect():
            pytest.skip(f"{self.format} artifacts cannot run here")
        self._run_export_check(tmp_path_factory, "runner contract")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m modelport.testing PLUGIN [FORMAT]``: run every check and print the report."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m modelport.testing", description=main.__doc__)
    parser.add_argument("plugin", help="import, entry-point or distribution name of the plugin")
    parser.add_argument("format", nargs="?", help="the format it registers")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="reference models (default: all)")
    parser.add_argument("--heavy", default="", help="comma-separated runtime modules `modelport formats` must not import")
    parser.add_argument("--no-validate", action="store_true", help="the artifact cannot run here (structure-only)")
    parser.add_argument("--no-cli", action="store_true", help="skip the checks that run the modelport CLI")
    args = parser.parse_args(argv)
    report = check_plugin(
        args.plugin, args.format, models=[m for m in args.models.split(",") if m],
        heavy_modules=[m for m in args.heavy.split(",") if m], expect_validate=False if args.no_validate else None,
        cli=not args.no_cli, raise_on_failure=False,
    )
    print(report.summary())
    return 0 if report.passed else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Wave 1's flat module names, kept working: ``import modelport.pipeline`` gives ``modelport.engine.pipeline``.

Until wave 2 the core was one flat package; its modules now live in one folder per room (docs/architecture.md).
Code written against the old names keeps working: :func:`install` (run by ``import modelport``) puts a finder
on ``sys.meta_path`` that answers each old name with the SAME module object as the new one — so
``monkeypatch.setattr("modelport.pipeline.x", ...)`` patches the real module — and warns once per name with a
DeprecationWarning naming the new module. ``tools/rename_modules.py`` rewrites source files to the new names
from these tables. Standard library only: imported by ``import modelport``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

#: Old flat module (under ``modelport.``) → its new place (under ``modelport.``).
MOVED: dict[str, str] = {
    # the export engine: plan → reference run → per format export → validate → describe → write; where formats run
    "pipeline": "engine.pipeline",
    "settings": "engine.settings",
    "binding": "engine.binding",
    "verdicts": "engine.verdicts",
    "compare": "engine.compare",
    "nms": "engine.nms",
    "outputs": "engine.outputs",
    "inputs": "engine.inputs",
    "input_flags": "engine.input_flags",
    "limits": "engine.limits",
    "jobs": "engine.jobs",
    "executors": "engine.executors",
    "executors_local": "engine.executors_local",
    "executors_ray": "engine.executors_ray",
    # the export folder
    "exportdir": "folder.exportdir",
    "exportfiles": "folder.exportfiles",
    "store": "folder.store",
    "metadata": "folder.metadata",
    "trust": "folder.trust",
    # plugin hosting (the old ``modelport.plugins`` module is ``modelport.plugins.host``: see PACKAGES)
    "hookspecs": "plugins.hookspecs",
    "types": "plugins.types",
    "format_objects": "plugins.format_objects",
    "format_base": "plugins.format_base",
    "converter_errors": "plugins.converter_errors",
    "options": "plugins.options",
    "tracing": "plugins.tracing",
    "catalog": "plugins.catalog",
    "plugin_template": "plugins.template",
    # model references
    "sources": "models.sources",
    "loading": "models.loading",
    "checkpoints": "models.checkpoints",
    # commands built on the engine
    "bench": "commands.bench",
    "debug": "commands.debug",
    "optimize": "commands.optimize",
    "listing": "commands.listing",
    "module_view": "commands.module_view",
    # support for publishers
    "publishing": "publishers.publishing",
    "publisher_hooks": "publishers.hooks",
    "retry": "publishers.retry",
    # the CLI (the old ``modelport.cli`` module is ``modelport.cli.app``: see PACKAGES)
    "zoo_cli": "cli.zoo",
    "option_help": "cli.option_help",
    # what a command shows in a terminal, used by every layer
    "console": "terminal.console",
    "strings": "terminal.strings",
    "redaction": "terminal.redaction",
    "render": "terminal.render",
    # the testing kit (the old ``modelport.testing`` module is ``modelport.testing.kit``: see PACKAGES)
    "testing_cli": "testing.cli",
    "testing_http": "testing.http",
    "testing_models": "testing.models",
    "testing_debug": "testing.debug",
}

#: Old modules whose name is now a package: the package forwards every name of the module it became (lazily,
#: so importing ``modelport.plugins.types`` does not load the plugin host, nor ``modelport.cli.zoo`` the CLI). Public names are the ones plugins and users import
#: from the package; in-repo core code imports the module itself.
PACKAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "plugins": ("host", ("PluginHost", "PluginInfo", "FormatStatus", "get_plugin_manager")),
    "cli": ("app", ("main",)),
    "testing": ("kit", (
        "ALWAYS_HEAVY", "CONVENTION_FILES", "DEFAULT_MODELS", "CheckResult", "CliResult", "ConformanceError",
        "ConformanceReport", "PluginConformance", "check_availability", "check_cli_lists_format", "check_export",
        "check_format_object", "check_ignores_other_formats", "check_import_is_light", "check_intermediates",
        "check_metadata", "check_output_convention", "check_plugin", "check_registration", "check_runner",
        "check_unsupported", "check_validate_roundtrip", "export_reference_model", "find_plugin", "load_module",
        "main", "read_metadata", "read_record", "reference_models", "run_cli",
    )),
}


def forward(package: str, name: str) -> object:
    """A name of the module the package ``modelport.<package>`` used to be (a module-level ``__getattr__``)."""
    module_name, _ = PACKAGES[package]
    if name.startswith("__"):
        raise AttributeError(name)
    full = f"modelport.{package}.{module_name}"
    module = sys.modules.get(full)
    if module is None:
        module = importlib.import_module(full)
    try:
        return getattr(module, name)
    except AttributeError:  # a submodule being imported, or a name the module does not have
        raise AttributeError(f"module 'modelport.{package}' has no attribute {name!r}") from None


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers ``modelport.<old>`` with the module object of ``modelport.<new>``."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        prefix, _, old = fullname.partition(".")
        if prefix != "modelport" or old not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = "modelport." + MOVED[spec.name.partition(".")[2]]
        warnings.warn(f"{spec.name} is now {new}; import it from there (the old name will be removed)",
                      DeprecationWarning, stacklevel=2)
        module = importlib.import_module(new)
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system gave the real module the alias's spec: give it back its own
        alias = module.__spec__
        if alias is not None and alias.loader is self:
            module.__spec__ = alias.loader_state


_FINDER = _Alias()


def install() -> None:
    """Answer the old flat names (idempotent)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)

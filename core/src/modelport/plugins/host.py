"""The plugin manager: built-ins and entry points, loaded one by one, failures recorded not fatal.

Nothing loads at import time: call :func:`get_plugin_manager` (or build a :class:`PluginHost`).

Environment switches:

* ``MODELPORT_LOAD_PLUGINS`` — comma-separated allow-list of entry-point names; set but empty = none.
* ``MODELPORT_DISABLE_PLUGINS`` — comma-separated entry-point names to skip.
* ``MODELPORT_TRACE_PLUGINS=1`` — print every hook call, its plugins and its result on stderr
  (:mod:`modelport.plugins.tracing`).
"""

from __future__ import annotations

import importlib.metadata as im
import os
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any

import pluggy

from modelport.errors import ConfigError, PluginContractError
from modelport.plugins import hookspecs, tracing
from modelport.plugins.catalog import CATALOG, catalog_entry
from modelport.plugins.hookspecs import NAME
from modelport.plugins.types import Availability, FormatSpec, PublisherSpec

#: The core plugin that calls format objects (:mod:`modelport.plugins.format_objects`).
FORMAT_DISPATCH = "modelport.plugins.format_objects"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "modelport.builtin.pt2",
    "modelport.builtin.file_publisher",
    "modelport.builtin.sources",
)


@dataclass
class PluginInfo:
    """One plugin as ``modelport plugins`` shows it."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    status: str  # "loaded", "broken", "conflict" (claims a name another plugin holds), "disabled", "builtin"
    error: str | None = None
    hooks: list[str] = field(default_factory=list)


@dataclass
class FormatStatus:
    """A format's status row: available / unavailable / not installed / broken."""

    name: str
    display_name: str
    status: str  # "available", "unavailable", "not installed", "broken"
    can_export: bool
    can_validate: bool
    reason: str | None
    fix: str | None
    plugin: str | None
    version: str | None
    kind: str = "format"

    def describe(self) -> str:
        if self.status == "available" and not self.can_validate:
            return f"export: yes, validate: {self.reason or 'no'}"
        if self.status == "available":
            return "available"
        text = self.status
        if self.reason:
            text += f": {self.reason}"
        if self.fix:
            text += f" — {self.fix}"
        return text


class _Manager(pluggy.PluginManager):
    """A pluggy manager that tells its host when plugins come or go after loading, so the format and
    publisher registries are collected again (tests and embedding applications register plugins directly)."""

    def __init__(self, project_name: str, on_change: Any) -> None:
        super().__init__(project_name)
        self._on_change = on_change

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        registered = super().register(plugin, name)
        self._on_change()
        return registered

    def unregister(self, plugin: Any = None, name: str | None = None) -> Any:
        removed = super().unregister(plugin, name)
        self._on_change()
        return removed


class PluginHost:
    """Owns the pluggy manager plus what was learnt while loading: broken plugins, formats, publishers."""

    def __init__(self, *, load_entry_points: bool = True, builtins: Iterable[str] = DEFAULT_PLUGINS) -> None:
        self.pm: pluggy.PluginManager = _Manager(NAME, self._forget_registries)
        self.pm.add_hookspecs(hookspecs)
        self.tracer: tracing.Tracer | None = tracing.install(self.pm) if tracing.enabled() else None
        self.plugins: list[PluginInfo] = []
        self._formats: dict[str, tuple[FormatSpec, str]] | None = None
        self._publishers: dict[str, tuple[PublisherSpec, str]] | None = None
        self._sources: dict[str, tuple[Any, str]] | None = None
        self._objects: dict[str, Any] = {}
        from modelport.plugins.format_objects import FormatDispatch

        self.pm.register(FormatDispatch(self), name=FORMAT_DISPATCH)
        for module_name in builtins:
            self._register_builtin(module_name)
        if load_entry_points:
            self._load_entry_points()
        self._check_pending()
        # Registering runs now, not on first use, so a plugin that fails or conflicts there is out before
        # any other hook is called (cheap: registration imports nothing heavy).
        self.formats  # noqa: B018
        self.publishers  # noqa: B018

    # ------------------------------------------------------------------ loading

    def _register_builtin(self, module_name: str) -> None:
        import importlib

        from modelport.version import __version__

        module = importlib.import_module(module_name)
        short = module_name.rsplit(".", 1)[-1]
        self.pm.register(module, name=f"builtin.{short}")
        self.plugins.append(
            PluginInfo(short, module_name, "modelport", __version__, "builtin", hooks=self._hooks_of(module))
        )

    def _load_entry_points(self) -> None:
        allow_env = os.environ.get("MODELPORT_LOAD_PLUGINS")
        allow = None if allow_env is None else {n.strip() for n in allow_env.split(",") if n.strip()}
        deny = {n.strip() for n in os.environ.get("MODELPORT_DISABLE_PLUGINS", "").split(",") if n.strip()}
        seen: set[str] = set()
        for ep in sorted(im.entry_points(group=NAME), key=lambda e: e.name):
            if ep.name in seen:
                continue
            seen.add(ep.name)
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            version = dist.version if dist is not None else None
            info = PluginInfo(ep.name, ep.value, dist_name, version, "loaded")
            if (allow is not None and ep.name not in allow) or ep.name in deny:
                info.status = "disabled"
                self.plugins.append(info)
                continue
            try:
                plugin = _as_first_loaded(ep.load())
                if self.pm.is_registered(plugin):
                    raise PluginContractError(f"module {ep.value} is already registered under another name")
                self.pm.register(plugin, name=ep.name)
                info.hooks = self._hooks_of(plugin)
            except Exception as exc:  # one broken plugin must never stop the rest
                info.status = "broken"
                info.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            self.plugins.append(info)

    def _check_pending(self) -> None:
        """A hookimpl with no matching spec is a plugin bug: mark that plugin broken and unregister it."""
        known = {name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "modelport_spec")}
        for info in self.plugins:
            if info.status not in ("loaded", "builtin"):
                continue
            unknown = [h for h in info.hooks if h not in known]
            if unknown:
                plugin = self.pm.get_plugin(info.name if info.status == "loaded" else f"builtin.{info.name}")
                if plugin is not None:
                    self.pm.unregister(plugin)
                info.status = "broken"
                info.error = f"implements hooks with no spec: {', '.join(unknown)}"
        self.pm.check_pending()

    @staticmethod
    def _hooks_of(plugin: Any) -> list[str]:
        hooks = []
        for attr in dir(plugin):
            fn = getattr(plugin, attr, None)
            if fn is not None and hasattr(fn, "modelport_impl"):
                hooks.append(attr)
        return hooks

    def plugin_of(self, plugin_name: str) -> PluginInfo | None:
        key = plugin_name.removeprefix("builtin.")
        for info in self.plugins:
            if info.name == key:
                return info
        return None

    def label(self, plugin_name: str) -> str:
        info = self.plugin_of(plugin_name)
        if info is None:
            return plugin_name
        if info.distribution:
            return f"{info.distribution} {info.version}"
        return info.name

    # ------------------------------------------------------------------ registries

    def _collect(self, hook_name: str, key: str) -> dict[str, tuple[Any, str]]:
        """Call every ``register_*`` hook in registration order; the first plugin to claim a name keeps it.

        A plugin whose registration raises is marked broken and unregistered, and one that claims a name
        another plugin already holds is marked ``conflict`` and unregistered: neither answers any hook
        afterwards (a half-registered plugin could otherwise still win ``export`` dispatch), and every
        other plugin and command keeps working.
        """
        found: dict[str, tuple[Any, str]] = {}
        hook = getattr(self.pm.hook, hook_name)
        for impl in hook.get_hookimpls():  # registration order (pluggy calls them in reverse)
            owner = impl.plugin_name
            if self.pm.get_plugin(owner) is None:  # dropped while collecting the other registry
                continue
            mine: dict[str, Any] = {}
            clash: list[str] = []

            def register(spec: Any, _mine: dict[str, Any] = mine, _clash: list[str] = clash) -> None:
                name = getattr(spec, key)
                if name in found:
                    what = "format" if key == "name" else "publish scheme"
                    _clash.append(f"{what} {name!r} is already registered by {self.label(found[name][1])}")
                else:
                    _mine[name] = spec

            try:
                self.call_impl(hook_name, impl, register=register)
            except Exception as exc:
                self._drop(owner, "broken", f"{hook_name} raised {type(exc).__name__}: {exc}")
                continue
            if clash:
                self._drop(owner, "conflict", f"{clash[0]}; this plugin is not loaded (uninstall one of them or "
                                              f"disable one with MODELPORT_DISABLE_PLUGINS)")
                continue
            found.update({name: (spec, owner) for name, spec in mine.items()})
        return found

    def _forget_registries(self) -> None:
        """Plugins changed: collect the registries again on next use."""
        self._formats = None
        self._publishers = None
        self._objects = {}

    def format_object(self, fmt: str) -> Any:
        """The format object of ``fmt`` (imported and built on first use), or None for hook-style formats."""
        if fmt not in self._objects:
            from modelport.plugins.format_objects import resolve

            spec = (self.formats.get(fmt) or (None, None))[0]
            impl = getattr(spec, "implementation", None)
            self._objects[fmt] = resolve(impl) if impl is not None else None
        return self._objects[fmt]

    def call_impl(self, hook_name: str, impl: Any, **kwargs: Any) -> Any:
        """Call one hook implementation directly (registration, metadata), traced like a hook call."""
        if self.tracer is not None:
            return self.tracer.call(hook_name, impl, **kwargs)
        return impl.function(**kwargs)

    def _drop(self, owner: str, status: str, error: str) -> None:
        """Record why a plugin is out, unregister it, and forget whatever it registered already."""
        info = self.plugin_of(owner)
        if info is not None:
            info.status = status
            info.error = error.splitlines()[0] if error.strip() else error
        plugin = self.pm.get_plugin(owner)
        if plugin is not None:
            self.pm.unregister(plugin)
        for registry in (self._formats, self._publishers):
            if registry is not None:
                for name in [n for n, (_, o) in registry.items() if o == owner]:
                    del registry[name]

    @property
    def formats(self) -> dict[str, tuple[FormatSpec, str]]:
        """Format name → (spec, owning plugin name)."""
        if self._formats is None:
            self._formats = self._collect("register_formats", "name")
        return self._formats

    @property
    def publishers(self) -> dict[str, tuple[PublisherSpec, str]]:
        """URL scheme → (spec, owning plugin name)."""
        if self._publishers is None:
            from modelport.terminal.redaction import register_token_env

            self._publishers = self._collect("register_publishers", "scheme")
            for spec, _owner in self._publishers.values():  # their tokens are redacted from all output
                register_token_env(spec.token_env)
        return self._publishers

    @property
    def sources(self) -> dict[str, tuple[Any, str]]:
        """Model source name → (SourceSpec, owning plugin name); see :mod:`modelport.models.sources`."""
        if self._sources is None:
            self._sources = self._collect("register_sources", "name")
        return self._sources

    # ------------------------------------------------------------------ status

    def availability_of(self, check: Any) -> Availability:
        """Run a cheap availability check; one that raises or returns the wrong type is 'unavailable'."""
        return self._availability(check)[0]

    def _availability(self, check: Any) -> tuple[Availability, str | None]:
        try:
            result = check()
            if not isinstance(result, Availability):
                return Availability.unavailable(f"availability check returned {type(result).__name__}"), None
            return result, None
        except Exception as exc:
            return Availability.unavailable(f"availability check raised {type(exc).__name__}: {exc}"), None

    def format_statuses(self) -> list[FormatStatus]:
        """Every known format — registered, in the catalog, or from a broken plugin — with its status."""
        rows: list[FormatStatus] = []
        for name, (spec, owner) in sorted(self.formats.items()):
            avail, _ = self._availability(spec.availability)
            info = self.plugin_of(owner)
            rows.append(self._status_row(name, spec.display_name, avail, info))
        rows.extend(self._missing_rows("format", set(self.formats)))
        return sorted(rows, key=_row_order)

    def publisher_statuses(self) -> list[FormatStatus]:
        rows: list[FormatStatus] = []
        for scheme, (spec, owner) in sorted(self.publishers.items()):
            avail, _ = self._availability(spec.availability)
            row = self._status_row(scheme, spec.display_name, avail, self.plugin_of(owner))
            row.kind = "publisher"
            rows.append(row)
        rows.extend(self._missing_rows("publisher", set(self.publishers)))
        return sorted(rows, key=_row_order)

    @staticmethod
    def _status_row(name: str, display: str, avail: Availability, info: PluginInfo | None) -> FormatStatus:
        if avail.export:
            return FormatStatus(
                name, display, "available", True, avail.validate,
                None if avail.validate else avail.validate_reason, None,
                info.distribution if info else None, info.version if info else None,
            )
        return FormatStatus(
            name, display, "unavailable", False, False, avail.reason, avail.fix,
            info.distribution if info else None, info.version if info else None,
        )

    def _missing_rows(self, kind: str, registered: set[str]) -> list[FormatStatus]:
        rows = []
        for entry in CATALOG:
            if entry.kind != kind or entry.name in registered:
                continue
            broken = next(
                (p for p in self.plugins if p.status == "broken" and (p.name == entry.name or p.distribution == entry.distribution)),
                None,
            )
            disabled = next(
                (p for p in self.plugins if p.status == "disabled" and (p.name == entry.name or p.distribution == entry.distribution)),
                None,
            )
            if broken is not None:
                rows.append(FormatStatus(entry.name, entry.display_name, "broken", False, False, broken.error, None,
                                         broken.distribution, broken.version, kind))
            elif disabled is not None:
                rows.append(FormatStatus(entry.name, entry.display_name, "unavailable", False, False,
                                         "plugin disabled by MODELPORT_LOAD_PLUGINS / MODELPORT_DISABLE_PLUGINS",
                                         None, disabled.distribution, disabled.version, kind))
            else:
                rows.append(FormatStatus(entry.name, entry.display_name, "not installed", False, False, None,
                                         entry.install, None, None, kind))
        # broken or conflicting third-party plugins that are not in the catalog still show up
        for p in self.plugins:
            if p.status in ("broken", "conflict") and catalog_entry(p.name) is None and kind == "format":
                rows.append(FormatStatus(p.name, p.name, p.status, False, False, p.error, None, p.distribution,
                                         p.version, "plugin"))
        return rows

    # ------------------------------------------------------------------ lookups that fail with exit 3

    def require_format(self, name: str) -> FormatSpec:
        """The spec of an exportable format, or a ConfigError saying why not and how to fix it."""
        if name in self.formats:
            spec, _ = self.formats[name]
            avail, _ = self._availability(spec.availability)
            if not avail.export:
                fix = f" ({avail.fix})" if avail.fix else ""
                raise ConfigError(f"format {name!r} is unavailable: {avail.reason}{fix}")
            return spec
        for row in self._missing_rows("format", set(self.formats)):
            if row.name == name:
                if row.status == "broken":
                    raise ConfigError(f"format {name!r} is broken: {row.reason} ({row.plugin} {row.version})")
                if row.status == "unavailable":
                    raise ConfigError(f"format {name!r} is unavailable: {row.reason}")
                raise ConfigError(f"format {name!r} is not installed: {row.fix}")
        known = ", ".join(sorted(set(self.formats) | {e.name for e in CATALOG if e.kind == 'format'}))
        raise ConfigError(f"unknown format {name!r}; known formats: {known}")

    def require_publisher(self, scheme: str) -> PublisherSpec:
        if scheme in self.publishers:
            spec, _ = self.publishers[scheme]
            avail, _ = self._availability(spec.availability)
            if not avail.export:
                raise ConfigError(f"publish target {scheme}:// is unavailable: {avail.reason}")
            return spec
        for row in self._missing_rows("publisher", set(self.publishers)):
            if row.name == scheme:
                if row.status == "broken":
                    raise ConfigError(f"publish target {scheme}:// is broken: {row.reason}")
                if row.status == "unavailable":  # installed, but disabled by MODELPORT_LOAD_PLUGINS / _DISABLE_PLUGINS
                    raise ConfigError(f"publish target {scheme}:// is unavailable: {row.reason}")
                raise ConfigError(f"publish target {scheme}:// is not installed: {row.fix}")
        known = ", ".join(f"{s}://" for s in sorted(set(self.publishers) | {e.name for e in CATALOG if e.kind == 'publisher'}))
        raise ConfigError(f"unknown publish scheme {scheme}://; known: {known}")


def _row_order(row: FormatStatus) -> tuple[bool, str]:
    """One order in every install: by name, whatever is installed; broken third-party plugins last."""
    return (row.kind == "plugin", row.name)


# Each plugin module's hook functions as first registered in this process. Importing a submodule named like
# a hook (``modelport_onnx.export`` beside the ``export`` hook) replaces that attribute of the package, so a
# second PluginHost in the same process (get_plugin_manager(reload=True), an in-process CLI run) would
# register the module without that hook.
_FIRST_LOADED: weakref.WeakKeyDictionary[ModuleType, dict[str, Any]] = weakref.WeakKeyDictionary()


def _as_first_loaded(plugin: Any) -> Any:
    """The plugin to register: the module itself, or its hooks as first seen when a submodule shadowed one."""
    if not isinstance(plugin, ModuleType):
        return plugin
    hooks = {a: getattr(plugin, a) for a in dir(plugin) if hasattr(getattr(plugin, a, None), "modelport_impl")}
    first = _FIRST_LOADED.setdefault(plugin, hooks)
    if set(first) <= set(hooks):
        return plugin
    restored = SimpleNamespace(**{**first, **hooks})
    restored.__name__ = plugin.__name__
    return restored


_HOST: PluginHost | None = None


def get_plugin_manager(*, reload: bool = False) -> PluginHost:
    """The process-wide plugin host, built on first use (entry points load here, never at import)."""
    global _HOST
    if _HOST is None or reload:
        _HOST = PluginHost()
    return _HOST

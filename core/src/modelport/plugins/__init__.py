"""Plugin hosting: the host (loading, isolation, conflicts), hookspecs, the records that cross the plugin boundary
(types), format objects and their building blocks, options, tracing, the catalog and ``modelport plugin new``.

``from modelport.plugins import get_plugin_manager`` (and the rest of :mod:`modelport.plugins.host`) keeps
working; names load on first use, so importing :mod:`modelport.plugins.types` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelport import aliases

if TYPE_CHECKING:  # pragma: no cover
    from modelport.plugins.host import FormatStatus, PluginHost, PluginInfo, get_plugin_manager

__all__ = ["FormatStatus", "PluginHost", "PluginInfo", "get_plugin_manager"]


def __getattr__(name: str) -> Any:
    return aliases.forward("plugins", name)

"""``publisher_hooks``: the three pluggy hooks of a publisher whose client library loads on its first publish
or pull, so importing the plugin stays cheap (:func:`modelport.commands.listing.listing_hook` is its twin for ``list``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.plugins.hookspecs import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    from modelport.plugins.types import PublisherSpec, PublishResult, PullResult, Target


def publisher_hooks(spec: PublisherSpec, module: str) -> tuple[Callable[..., None], Callable[..., PublishResult | None],
                                                              Callable[..., PullResult | None]]:
    """The ``register_publishers``, ``publish`` and ``pull`` hooks of a publisher whose work lives in ``module``.

    ``module`` defines ``publish(export_dir, target, options)`` and, when ``spec.can_pull``,
    ``pull(target, dest, options)``; it is imported on the first publish or pull of ``spec.scheme``, so importing
    the plugin stays cheap. Both hooks return None for other schemes. In the plugin's ``__init__.py``::

        register_publishers, publish, pull = publisher_hooks(PublisherSpec(scheme="s3", ...), "modelport_s3.upload")
    """
    scheme = spec.scheme

    @hookimpl
    def register_publishers(register: Callable[[PublisherSpec], None]) -> None:
        register(spec)

    @hookimpl
    def publish(export_dir: Path, target: Target, options: Mapping[str, Any]) -> PublishResult | None:
        if target.scheme != scheme:
            return None
        result: PublishResult = importlib.import_module(module).publish(Path(export_dir), target, options)
        return result

    @hookimpl
    def pull(target: Target, dest: Path, options: Mapping[str, Any]) -> PullResult | None:
        if target.scheme != scheme:
            return None
        result: PullResult = importlib.import_module(module).pull(target, Path(dest), options)
        return result

    register_publishers.__doc__ = f"Declare the {scheme}:// target ({spec.display_name})."
    publish.__doc__ = f"Upload export folder(s) to a {scheme}:// target with {module}.publish; None for other schemes."
    pull.__doc__ = f"Download one export of a {scheme}:// target into ``dest`` with {module}.pull; None for other schemes."
    return register_publishers, publish, pull

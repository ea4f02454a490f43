"""A third-party modelport plugin that wraps another plugin's hook: stamp provenance into every ONNX export.

It registers no format. Its ``export`` hook is a pluggy *wrapper* (``@hookimpl(wrapper=True)``): it runs around
whichever plugin exports the request — for ``-f onnx``, modelport-export-onnx — receives that plugin's
``Artifact`` from ``yield``, adds ``metadata_props`` to the written ``model.onnx`` and returns the artifact. It
runs before the core validates the artifact and hashes its files, so the stamped file is the one that is
validated, listed in metadata.json with its sha256, and published. Neither the core nor the ONNX plugin knows
about it; uninstall it (or ``MODELPORT_DISABLE_PLUGINS=onnx-stamp``) and exports are unstamped again.

Stamped keys (``metadata_props``, prefix ``stamp.``): ``stamp.exported_by`` (modelport version),
``stamp.model_name``, ``stamp.stamped_at`` (UTC), plus one ``stamp.<key>`` per ``MODELPORT_STAMP_<KEY>``
environment variable (``MODELPORT_STAMP_GIT_COMMIT=abc123`` → ``stamp.git_commit = abc123``).
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Generator
from typing import Any

import modelport
from modelport import Artifact, ExportRequest, hookimpl

__version__ = "0.1.0"

PREFIX = "stamp."
ENV_PREFIX = "MODELPORT_STAMP_"


def stamp_values(request: ExportRequest) -> dict[str, str]:
    """The key/value pairs to stamp for this request."""
    values = {
        f"{PREFIX}exported_by": f"modelport {modelport.__version__}",
        f"{PREFIX}model_name": request.model_name,
        f"{PREFIX}stamped_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    }
    for key, value in sorted(os.environ.items()):
        if key.startswith(ENV_PREFIX) and key != ENV_PREFIX:
            values[PREFIX + key[len(ENV_PREFIX):].lower()] = value
    return values


@hookimpl(wrapper=True)
def export(request: ExportRequest) -> Generator[None, Artifact | None, Artifact | None]:
    """Let the owning plugin export, then stamp its ONNX file; other formats pass through untouched."""
    artifact = yield  # the ONNX plugin runs here; its exceptions propagate through this line unchanged
    if artifact is None or artifact.format != "onnx":
        return artifact
    import onnx

    values = stamp_values(request)
    # the graph only: weights in model.onnx.data (external data) stay where they are
    model = onnx.load(str(artifact.path), load_external_data=False)
    kept = [p for p in model.metadata_props if p.key not in values]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in values.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(artifact.path))
    artifact.details["stamp"] = values
    return artifact


@hookimpl
def describe_metadata(artifact: Artifact, request: ExportRequest | None) -> dict[str, Any] | None:
    """Repeat the stamp in metadata.json (under extra_metadata.stamp) so it is visible without opening the model."""
    if artifact.format != "onnx" or "stamp" not in artifact.details:
        return None
    return {"extra_metadata": {"stamp": artifact.details["stamp"]}}

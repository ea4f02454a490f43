"""The modelport plugin of modelport-serve: adds ``modelport serve`` through the ``register_commands`` hook.

Importing this module is cheap (click only); FastAPI, uvicorn and torch load when the command runs.
"""

from __future__ import annotations

from typing import Any

import click
from modelport import hookimpl


@hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(serve)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind. Anything but loopback needs MODELPORT_SERVE_TOKEN.")
@click.option("--port", type=int, default=8000, show_default=True, help="TCP port.")
@click.option("--exports-root", type=click.Path(), default="exports", show_default=True,
              help="The exports store: one folder per export, index.json, and .serve/ (jobs database, uploads).")
@click.option("--models-dir", type=click.Path(),
              help="Folder of models the server may load (one sub-folder each with modelport.toml). "
                   "Default: the bundled example (tiny-cnn).")
@click.option("--workers", type=int, default=2, show_default=True,
              help="Jobs run at once, each in its own worker process.")
@click.option("--job-timeout", type=float, default=1800, show_default=True, help="Seconds before a job is killed.")
@click.option("--max-upload-mb", type=float, default=512, show_default=True, help="Cap on an uploaded checkpoint.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: warm worker processes here; ray: each format a Ray task (pip install 'modelport-serve[ray]').")
@click.option("--ray-address", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray instance).")
@click.option("--threads", type=int, help="Threads per job for PyTorch and the runtimes.")
@click.option("--no-warm", is_flag=True, help="Do not pre-import torch and the plugins in the workers.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True, help="Server log level (requests are logged without headers: tokens never appear).")
def serve(host: str, port: int, exports_root: str, models_dir: str | None, workers: int, job_timeout: float,
          max_upload_mb: float, executor: str, ray_address: str | None, threads: int | None, no_warm: bool,
          log_level: str) -> None:
    """Run the export service: HTTP API (OpenAPI docs at /docs), job queue and web page.

    Models come from --models-dir only, never from a request. Set MODELPORT_SERVE_TOKEN to require
    'Authorization: Bearer TOKEN' on every API call; without it the server binds to 127.0.0.1 only.
    """
    from pathlib import Path

    from modelport_serve.catalog import bundled_models
    from modelport_serve.config import ServeConfig

    config = ServeConfig(
        exports_root=Path(exports_root).resolve(), models_dir=Path(models_dir).resolve() if models_dir else bundled_models(),
        host=host, port=port, workers=workers, job_timeout_s=job_timeout,
        max_upload_bytes=int(max_upload_mb * 1024 * 1024), executor=executor, ray_address=ray_address,
        warm=not no_warm, threads=threads, token=ServeConfig.token_from_env(),
    )
    config.check()
    from modelport_serve.server import run

    run(config, log_level=log_level)

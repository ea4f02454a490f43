"""Start the service under uvicorn."""

from __future__ import annotations

import logging

from modelport_serve.config import ServeConfig


def run(config: ServeConfig, log_level: str = "info") -> None:
    """Serve until interrupted; Ctrl-C / SIGTERM stop the workers and fail the jobs they were running."""
    import uvicorn

    from modelport_serve.app import create_app
    from modelport_serve.service import ExportService

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if config.executor == "ray":
        from modelport_serve.ray_executor import check_ray

        check_ray()
        from modelport.engine.executors_ray import ray_init

        # join the cluster before uvicorn starts, so a refused connection is one line and exit 3, not a
        # traceback from the app's startup (the app's start then finds Ray initialised)
        ray_init(config.ray_address)
    service = ExportService(config)
    app = create_app(service)
    auth = "bearer token required" if config.token else "no token: loopback only"
    logging.getLogger("modelport.serve").info(
        "modelport serve on http://%s:%d (%s; executor %s, %d worker(s); models from %s; exports in %s)",
        config.host, config.port, auth, config.executor, config.workers, config.models_dir, config.exports_root)
    # event streams of running jobs never end on their own: give open requests 5 s, then stop
    uvicorn.run(app, host=config.host, port=config.port, log_level=log_level, access_log=True,
                timeout_graceful_shutdown=5)

"""modelport-serve: the export service an ML platform embeds.

``modelport serve`` starts an HTTP API (FastAPI + uvicorn) with OpenAPI docs, a job queue persisted in SQLite
beside the exports store, isolated warm worker processes that run modelport's own export pipeline, and a web page.
``--executor ray`` runs each format of a job as a Ray task. See docs/serve.md and docs/scale-out.md.

The command is added to the ``modelport`` CLI through the ``register_commands`` hook (``modelport_serve.plugin``);
nothing heavy is imported until the command runs.
"""

__version__ = "0.1.0"

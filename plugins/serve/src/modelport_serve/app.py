"""The HTTP API (FastAPI) and the web page: every route, auth, error mapping and upload limits.

Every ``/api`` route needs ``Authorization: Bearer <MODELPORT_SERVE_TOKEN>`` when a token is configured.
Errors are JSON ``{"error": "...", "status": N}``: 400 bad request, 401 no/wrong token, 404 unknown job or file,
409 not ready, 413 upload too large, 415 neither JSON nor multipart, 422 malformed body. A 500 means a bug,
never bad input.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from modelport.errors import ConfigError
from modelport.folder.exportdir import METADATA_FILE, RECORD_FILE
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.background import BackgroundTask

from modelport_serve import __version__
from modelport_serve.jobs import STATES, TERMINAL
from modelport_serve.service import ExportService

log = logging.getLogger("modelport.serve")
STATIC = Path(__file__).resolve().parent / "static"
SIDE_FILES = (METADATA_FILE, RECORD_FILE)  # served besides the recorded file table, which does not list them


class ExportBody(BaseModel):
    """The body of ``POST /api/exports`` (as JSON, or as the ``request`` field of a multipart upload)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model: str = Field(description="A model configured on the server (GET /api/models).", max_length=64)
    checkpoint: str | None = Field(None, description="A checkpoint of that model: best, last... Omit for the factory's "
                                   "own weights, or upload a file instead.", max_length=64)
    formats: list[str] = Field(description="Formats to export (GET /api/formats).", min_length=1, max_length=16)
    inputs: list[str] | None = Field(None, description="Override the model's inputs: NAME:1x3x224x224[:DTYPE].",
                                     max_length=16)
    batch: int | None = Field(None, ge=1, le=4096, description="Example batch size.")
    dynamic_batch: bool | None = Field(None, description="Mark axis 0 of every input dynamic (default: the model's).")
    options: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                               description='Per-format options, e.g. {"onnx": {"opset": 17}}.')
    run_validation: bool = Field(True, alias="validate", description="Run each artifact against PyTorch.")


class JobLinks(BaseModel):
    self: str
    events: str


class JobCreated(BaseModel):
    id: str
    state: str
    links: JobLinks


class ErrorBody(BaseModel):
    error: str
    status: int


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
        (400, "Bad request"), (401, "Missing or wrong bearer token"), (404, "Not found"), (409, "Not ready"),
        (413, "Upload too large"), (422, "Malformed request"))
}


_DRAIN_BYTES = 16 * 1024 * 1024


class _TooLarge(Exception):
    pass


class UploadLimit:
    """Pure ASGI middleware: refuse request bodies past the cap by Content-Length, or while they stream in."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT"):
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes + 64 * 1024  # room for the multipart envelope and the JSON request field
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                if int(value) <= limit + _DRAIN_BYTES:  # read it away, so the client gets to read our answer
                    while (await receive()).get("more_body"):
                        pass
                await _send_json(send, 413, f"request body is {int(value)} bytes; uploads are capped at "
                                 f"{self.max_bytes} bytes (--max-upload-mb)")
                return
        seen = 0
        started = False

        async def counting_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_json(send, 413, f"uploads are capped at {self.max_bytes} bytes (--max-upload-mb)")


async def _send_json(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message, "status": status}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _error(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def create_app(service: ExportService) -> FastAPI:
    """The ASGI app over ``service``; starting the app starts the service's dispatch loop and workers."""
    config = service.config

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.start)
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    app = FastAPI(
        title="modelport serve", version=__version__, lifespan=lifespan,
        description="Export PyTorch models to deployable formats, each validated against PyTorch. Jobs run in "
                    "isolated worker processes; see docs/serve.md.",
    )

    async def require_token(request: Request) -> None:
        if config.token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), config.token.encode()):
            raise HTTPException(401, "missing or wrong bearer token (Authorization: Bearer <MODELPORT_SERVE_TOKEN>)")

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def _starlette_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid request: " + _describe_errors(exc.errors()))

    @app.exception_handler(ConfigError)
    async def _config_error(request: Request, exc: ConfigError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); see the server log")

    auth = [Depends(require_token)]

    # ------------------------------------------------------------------ catalog

    @app.get("/api/health", dependencies=auth, tags=["service"])
    def health() -> dict[str, Any]:
        """Liveness, the executor in use and the job counts per state."""
        return {"status": "ok", "version": __version__, "executor": service.executor.name,
                "workers": config.workers, "executor_status": service.executor.status(),
                "jobs": service.store.counts()}

    @app.get("/api/formats", dependencies=auth, tags=["catalog"])
    def formats() -> dict[str, Any]:
        """Every format with its status here (as `modelport formats`) and its options (name, type, default, help)."""
        from modelport.plugins import get_plugin_manager

        host = get_plugin_manager()
        rows = []
        for r in host.format_statuses():
            if r.kind != "format":
                continue
            spec = host.formats.get(r.name, (None, None))[0]
            rows.append({
                "name": r.name, "display_name": r.display_name, "status": r.status, "can_export": r.can_export,
                "can_validate": r.can_validate, "reason": r.reason, "fix": r.fix, "plugin": r.plugin,
                "version": r.version, "summary": r.describe(),
                "options": [o.describe() for o in spec.options] if spec is not None else [],
            })
        return {"formats": rows}

    @app.get("/api/models", dependencies=auth, tags=["catalog"])
    def models() -> dict[str, Any]:
        """The models this server may load (its models folder), with their checkpoints and default inputs."""
        return {"models": [e.public() for e in service.catalog.entries()]}

    # ------------------------------------------------------------------ jobs

    @app.post("/api/exports", dependencies=auth, status_code=202, response_model=JobCreated, tags=["exports"],
              responses=_ERRORS, openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"$ref": "#/components/schemas/ExportBody"}},
                  "multipart/form-data": {"schema": {"type": "object", "required": ["request", "checkpoint"],
                                                     "properties": {
                                                         "request": {"type": "string",
                                                                     "description": "ExportBody as JSON"},
                                                         "checkpoint": {"type": "string", "format": "binary",
                                                                        "description": "a state dict (weights only)"}}}},
              }}})
    async def create_export(request: Request) -> JSONResponse:
        """Queue an export job and return its id at once; follow it with GET …/{id} or …/{id}/events.

        Send JSON, or multipart/form-data with a `request` field (the same JSON) and a `checkpoint` file: a
        state dict loaded weights-only into the named model (never unpickled as code), size-capped.
        """
        ctype = request.headers.get("content-type", "")
        upload_path, upload_name = None, None
        if ctype.startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=4)
            raw = form.get("request")
            if not isinstance(raw, str):
                raise HTTPException(400, "multipart upload needs a 'request' field holding the JSON request")
            body = _parse_body(raw)
            file = form.get("checkpoint")
            if file is None or isinstance(file, str):
                raise HTTPException(400, "multipart upload needs a 'checkpoint' file field")
            upload_path, upload_name = await _save_upload(file, config.state_dir / "uploads", config.max_upload_bytes)
        elif ctype.startswith("application/json") or not ctype:
            body = _parse_body(await request.body())
        else:
            raise HTTPException(415, "send application/json, or multipart/form-data with a checkpoint upload")
        try:
            checked = await run_in_threadpool(service.check_request, body, upload=upload_path is not None)
            job = await run_in_threadpool(service.submit, checked, upload_path, upload_name)
        except BaseException:
            if upload_path is not None:
                upload_path.unlink(missing_ok=True)
            raise
        return JSONResponse({"id": job.id, "state": job.state, "links": _links(job.id)}, status_code=202)

    @app.get("/api/exports", dependencies=auth, tags=["exports"])
    def list_exports(state: Literal[STATES] | None = None, model: str | None = Query(None, max_length=64),  # type: ignore[valid-type]
                     format: str | None = Query(None, max_length=32),
                     limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        """Past and current jobs, newest first; filter by state, model or format."""
        jobs = service.store.jobs(state=state, model=model, fmt=format, limit=limit)
        return {"exports": [{**j.public(), "links": _links(j.id)} for j in jobs]}

    @app.get("/api/store", dependencies=auth, tags=["exports"])
    def store_index(format: str | None = Query(None, max_length=32), model: str | None = Query(None, max_length=64),
                    status: str | None = Query(None, max_length=32)) -> dict[str, Any]:
        """The exports store's own index.json (every export folder under the exports root), filterable."""
        from modelport.folder.store import read_index

        entries = read_index(config.exports_root).get("exports", [])
        for key, value in (("format", format), ("model_name", model), ("status", status)):
            if value:
                entries = [e for e in entries if e.get(key) == value]
        return {"exports": entries}

    @app.get("/api/exports/{job_id}", dependencies=auth, tags=["exports"], responses=_ERRORS)
    def get_export(job_id: str) -> dict[str, Any]:
        """One job: state, phase, and per format its validation result, files with sha256 and download links."""
        job = _job_or_404(service, job_id)
        out = {**job.public(), "links": _links(job.id)}
        for fmt, r in out["formats"].items():
            if r.get("export_id"):
                r["download"] = f"/api/exports/{job.id}/download?format={fmt}"
        return out

    @app.get("/api/exports/{job_id}/events", dependencies=auth, tags=["exports"], responses=_ERRORS,
             response_class=StreamingResponse)
    async def events(job_id: str, request: Request) -> StreamingResponse:
        """Server-sent events: `state` and `phase` changes as they happen; ends after the final state.

        Reconnecting with a `Last-Event-ID` header replays only what was missed.
        """
        _job_or_404(service, job_id)
        try:
            last = int(request.headers.get("last-event-id", "0") or 0)
        except ValueError:
            last = 0

        async def stream() -> AsyncIterator[str]:
            nonlocal last
            idle = 0.0
            while True:
                batch = await run_in_threadpool(service.store.events_after, job_id, last)
                for seq, data in batch:
                    last = seq
                    yield f"id: {seq}\nevent: {data.get('type', 'message')}\ndata: {json.dumps(data)}\n\n"
                job = await run_in_threadpool(service.store.get, job_id)
                if job is None or (job.state in TERMINAL and not batch):
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.2)
                idle = 0.0 if batch else idle + 0.2
                if idle >= 15:
                    idle = 0.0
                    yield ": keep-alive\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/api/exports/{job_id}/download", dependencies=auth, tags=["exports"], responses=_ERRORS,
             response_class=FileResponse)
    def download(job_id: str, format: str | None = Query(None, max_length=32)) -> FileResponse:
        """One format's export folder as a zip (artifact, metadata.json, export.json, reference.npz).

        Every file is checked against the sha256 recorded at export time before it goes into the zip.
        """
        job = _job_or_404(service, job_id)
        _fmt, folder, result = _export_or_error(service, job, format)
        table = _file_table(folder, result)
        fd, name = tempfile.mkstemp(prefix="modelport-serve-", suffix=".zip")
        os.close(fd)
        zip_path = Path(name)
        try:
            with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
                for rel, meta in table.items():
                    path = _checked_file(folder, rel, meta)
                    zf.write(path, f"{folder.name}/{rel}")
        except BaseException:
            zip_path.unlink(missing_ok=True)
            raise
        from modelport.folder.store import sha256_file

        return FileResponse(zip_path, media_type="application/zip", filename=f"{folder.name}.zip",
                            headers=_digest_headers(sha256_file(zip_path)),
                            background=BackgroundTask(zip_path.unlink, True))

    @app.get("/api/exports/{job_id}/files/{name:path}", dependencies=auth, tags=["exports"], responses=_ERRORS,
             response_class=FileResponse)
    def download_file(job_id: str, name: str, format: str | None = Query(None, max_length=32)) -> FileResponse:
        """One file of one format's export, streamed, with its sha256 in `X-Content-SHA256` and `Digest`.

        Only names listed in the export's file table are served; anything else (`../`, absolute paths) is 404.
        """
        job = _job_or_404(service, job_id)
        fmt, folder, result = _export_or_error(service, job, format)
        table = _file_table(folder, result)
        if name not in table:
            raise HTTPException(404, f"the {fmt} export of job {job_id} has no file {name!r}; it has: "
                                f"{', '.join(table)}")
        path = _checked_file(folder, name, table[name])
        return FileResponse(path, filename=Path(name).name, headers=_digest_headers(table[name]["sha256"]))

    @app.delete("/api/exports/{job_id}", dependencies=auth, tags=["exports"], responses=_ERRORS)
    def delete_export(job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job (its worker is stopped, partial output removed), or delete a finished
        one with the export folders it wrote."""
        try:
            return service.cancel_or_delete(job_id)
        except KeyError:
            raise HTTPException(404, f"no job {job_id!r}") from None

    # ------------------------------------------------------------------ page

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(UploadLimit, max_bytes=config.max_upload_bytes)
    return app


# ----------------------------------------------------------------------------- helpers


def _describe_errors(errors: Any) -> str:
    parts = []
    for e in list(errors)[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{loc or 'body'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)


def _parse_body(raw: str | bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise HTTPException(400, "the request body must be a JSON object")
    try:
        body = ExportBody.model_validate(data)
    except ValidationError as exc:
        raise HTTPException(422, "invalid request: " + _describe_errors(exc.errors())) from None
    out = body.model_dump()
    out["validate"] = out.pop("run_validation")
    return out


async def _save_upload(file: Any, folder: Path, cap: int) -> tuple[Path, str]:
    """Copy an uploaded checkpoint to the server's uploads folder, enforcing the cap; the name is kept only as a label."""
    import re

    folder.mkdir(parents=True, exist_ok=True)
    label = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(file.filename or "checkpoint")).name)[:64] or "checkpoint"
    fd, tmp = tempfile.mkstemp(prefix=".upload-", suffix=".pt", dir=folder)
    size = 0
    try:
        with open(fd, "wb") as out:
            while chunk := await file.read(1 << 20):
                size += len(chunk)
                if size > cap:
                    raise HTTPException(413, f"the checkpoint upload exceeds {cap} bytes (--max-upload-mb)")
                out.write(chunk)
        if size == 0:
            raise HTTPException(400, "the uploaded checkpoint is empty")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp), label


def _links(job_id: str) -> dict[str, str]:
    return {"self": f"/api/exports/{job_id}", "events": f"/api/exports/{job_id}/events"}


def _job_or_404(service: ExportService, job_id: str) -> Any:
    job = service.store.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return job


def _export_or_error(service: ExportService, job: Any, fmt: str | None) -> tuple[str, Path, dict[str, Any]]:
    if job.state not in TERMINAL:
        raise HTTPException(409, f"job {job.id} is {job.state}; download it when it has finished")
    try:
        return service.export_dir(job, fmt)
    except LookupError as exc:
        raise HTTPException(404, str(exc).strip("'\"")) from None


def _file_table(folder: Path, result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The files of an export folder that may be served: its recorded file table plus metadata.json/export.json."""
    from modelport.folder.store import sha256_file

    table = dict(result.get("files") or {})
    for side in SIDE_FILES:
        p = folder / side
        if p.is_file() and not p.is_symlink():
            table[side] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
    return table


def _checked_file(folder: Path, rel: str, meta: dict[str, Any]) -> Path:
    from modelport.folder.store import safe_relpath, sha256_file

    try:
        safe_relpath(rel)
    except ConfigError:
        raise HTTPException(404, f"no file {rel!r}") from None
    path = folder / rel
    if path.is_symlink() or not path.is_file() or folder.resolve() not in path.resolve().parents:
        raise HTTPException(404, f"file {rel!r} is missing from the export")
    if path.stat().st_size != meta.get("bytes") or sha256_file(path) != meta.get("sha256"):
        raise HTTPException(409, f"file {rel!r} changed since it was exported (sha256 mismatch); not serving it")
    return path


def _digest_headers(sha256_hex: str) -> dict[str, str]:
    b64 = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
    return {"X-Content-SHA256": sha256_hex, "Digest": f"sha-256={b64}", "ETag": f'"{sha256_hex}"'}



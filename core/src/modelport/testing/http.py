"""A recording fake HTTP server for testing a publisher with its real client library, and helpers for such suites.

A publisher's tests drive its real client (huggingface_hub, httpx, boto3...) against a small server on 127.0.0.1
that answers the endpoints the client calls and records every request, so that assertions are on what arrived::

    from modelport.testing.http import RecordingServer, Request, Response

    class FakeStore(RecordingServer):
        name = "fake store"

        def __init__(self, token: str) -> None:
            super().__init__()
            self.token = token
            self.objects: dict[str, bytes] = {}
            self.route("PUT", r"/objects/([^/]+)", self.put_object)

        def check(self, req: Request) -> Response | None:  # runs before every route that is not public
            if req.headers.get("authorization") != f"Bearer {self.token}":
                return self.error(401, "bad token")
            return None

        def put_object(self, req: Request, m: re.Match[str]) -> Response:
            self.objects[m[1]] = req.body
            return self.json(201, {"name": m[1]})

    with FakeStore("t0ken") as server:          # point the client at server.url
        ...
        assert server.calls("PUT", r"^/objects/") and server.objects

Route patterns match the path as sent (still percent-encoded, without the query); :attr:`Request.path` is decoded.
A route that raises :class:`Abort` answers with its response; any other exception becomes a 500 the test sees.
Faults (a status with headers, or a dropped connection) are injected per method + path pattern with
:meth:`RecordingServer.add_fault`. Serving is bounded in requests and time and stops by itself.

For suites that run the real ``modelport`` CLI: :func:`run_cli`, :func:`export_models` / :func:`export_pair`, :func:`local_env`,
:func:`scan_for` (a secret written anywhere), :func:`folder_files` and :func:`unused_port`.
Standard library only: importing this module is cheap.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "Abort", "ExportPair", "Fault", "RecordingServer", "Request", "Response", "Route", "export_models",
    "export_pair", "folder_files", "local_env", "scan_for", "unused_port",
]

LOCALHOST = "127.0.0.1"
_S = TypeVar("_S", bound="RecordingServer")


# ----------------------------------------------------------------------------- requests and answers


@dataclass
class Request:
    """One request as it arrived: listener, method, decoded path, path as sent, query, lower-case headers, body, time."""

    server: str
    method: str
    path: str
    raw_path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float
    fault: str | None = None  # "drop", or the status of the injected fault that answered it


@dataclass
class Response:
    """What a route answers: a status, a body and headers (Content-Length is added when sent)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Abort(Exception):
    """Raised anywhere inside a route to answer with ``response`` at once (a lookup helper's 404, say)."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"HTTP {response.status}")
        self.response = response


@dataclass
class Fault:
    """An injected failure: the next ``times`` requests matching method + path pattern get it, after ``after`` pass."""

    method: str
    pattern: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    drop: bool = False  # close the connection without an answer
    times: int = 1
    after: int = 0  # let this many matching requests through first


Handler = Callable[[Request, "re.Match[str]"], Response]  # (request, the route's match) -> answer


@dataclass(frozen=True)
class Route:
    """One endpoint: methods (None: any), the pattern the raw path must fully match, the handler, which listener."""

    methods: frozenset[str] | None
    pattern: re.Pattern[str]
    handler: Handler
    server: str | None = None
    public: bool = False  # answered without calling RecordingServer.check


# ----------------------------------------------------------------------------- the server


class RecordingServer:
    """A threaded HTTP server on 127.0.0.1 (one ephemeral port per listener) that records requests and routes them.

    Subclass it (or call :meth:`route` on an instance) to add endpoints; override :meth:`check` for
    authentication and :meth:`error` for the service's error body. Use it as a context manager, or
    :meth:`start` / :meth:`stop`.
    """

    name = "fake server"
    json_type = "application/json"

    def __init__(self, *, listeners: Sequence[str] = ("main",), max_requests: int = 3000, lifetime_s: float = 170.0,
                 redact_headers: Iterable[str] = ()) -> None:
        if not listeners:
            raise ValueError("a RecordingServer needs at least one listener")
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.routes: list[Route] = []
        self.lock = threading.RLock()
        self.max_requests = max_requests
        self.lifetime_s = lifetime_s
        self.redact_headers = frozenset(h.lower() for h in redact_headers)
        self._stop = threading.Event()
        self._servers: dict[str, ThreadingHTTPServer] = {}
        for listener in listeners:
            handler = type("_BoundHandler", (_Handler,), {"fake": self, "listener": listener})
            srv = ThreadingHTTPServer((LOCALHOST, 0), handler)
            srv.daemon_threads = True
            srv.timeout = 0.1
            self._servers[listener] = srv
        self._threads = {listener: threading.Thread(target=self._serve, args=(srv,), daemon=True,
                                                    name=f"{self.name} ({listener})")
                         for listener, srv in self._servers.items()}

    # -- lifecycle
    @property
    def url(self) -> str:
        """The base URL of the first listener."""
        return self.url_of(next(iter(self._servers)))

    def url_of(self, listener: str) -> str:
        """The base URL of one listener."""
        return f"http://{LOCALHOST}:{self._servers[listener].server_address[1]}"

    @property
    def running(self) -> bool:
        """Whether any listener is still serving."""
        return any(t.is_alive() for t in self._threads.values())

    def _serve(self, srv: ThreadingHTTPServer) -> None:
        deadline = time.monotonic() + self.lifetime_s
        try:
            while not self._stop.is_set() and len(self.requests) < self.max_requests and time.monotonic() < deadline:
                srv.handle_request()
        finally:
            srv.server_close()

    def start(self: _S) -> _S:
        """Start serving on every listener."""
        for t in self._threads.values():
            t.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the listening sockets."""
        self._stop.set()
        for listener, t in self._threads.items():
            if t.ident is None:  # never started: its loop will not close the socket
                self._servers[listener].server_close()
            else:
                t.join(timeout=timeout)

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- endpoints
    def route(self, methods: str | Iterable[str] | None, pattern: str, handler: Handler, *, server: str | None = None,
              public: bool = False) -> Route:
        """Answer requests with a method in ``methods`` (None: any) whose raw path fully matches ``pattern``."""
        wanted = None if methods is None else frozenset([methods] if isinstance(methods, str) else methods)
        r = Route(wanted, re.compile(pattern), handler, server, public)
        self.routes.append(r)
        return r

    def check(self, req: Request) -> Response | None:
        """Called before every route that is not public (and before a 404): an answer refuses the request."""
        return None

    def json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
        """A JSON answer."""
        return Response(status, json.dumps(payload).encode(), {"Content-Type": self.json_type, **(headers or {})})

    def error(self, status: int, message: str) -> Response:
        """An error answer in the service's own shape (override it): here ``{"error": message}``."""
        return self.json(status, {"error": message})

    def not_found(self, req: Request) -> Response:
        """The answer when no route matches."""
        return self.error(404, f"{self.name}: no route for {req.method} {req.path}")

    def respond(self, req: Request) -> Response:
        """The answer to one request that no fault took: the first matching route, after :meth:`check`."""
        route, match = self._find(req)
        try:
            if route is None or not route.public:
                refused = self.check(req)
                if refused is not None:
                    return refused
            if route is None or match is None:
                return self.not_found(req)
            return route.handler(req, match)
        except Abort as exc:
            return exc.response
        except Exception as exc:  # a bug in the fake shows up as a 500 the test will see
            return self.error(500, f"{self.name} error: {type(exc).__name__}: {exc}")

    def _find(self, req: Request) -> tuple[Route | None, re.Match[str] | None]:
        for r in self.routes:
            if r.server is not None and r.server != req.server:
                continue
            if r.methods is not None and req.method not in r.methods:
                continue
            m = r.pattern.fullmatch(req.raw_path)
            if m:
                return r, m
        return None, None

    # -- helpers for tests
    def add_fault(self, method: str, pattern: str, **kw: Any) -> Fault:
        """Inject a fault for requests whose method is ``method`` and whose decoded path matches ``pattern`` (re.search)."""
        f = Fault(method, pattern, **kw)
        with self.lock:
            self.faults.append(f)
        return f

    def calls(self, method: str, pattern: str) -> list[Request]:
        """The recorded requests with this method whose decoded path matches ``pattern`` (re.search) and no fault took."""
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path) and r.fault is None]

    # -- plumbing
    def _take_fault(self, req: Request) -> Fault | None:
        fault = next((f for f in self.faults if f.times > 0 and f.method == req.method and re.search(f.pattern, req.path)),
                     None)
        if fault is not None and fault.after > 0:
            fault.after -= 1
            return None
        if fault is not None:
            fault.times -= 1
        return fault

    def _answer(self, h: _Handler, body: bytes) -> None:
        split = urllib.parse.urlsplit(h.path)
        req = Request(h.listener, h.command, urllib.parse.unquote(split.path), split.path,
                      urllib.parse.parse_qs(split.query), {k.lower(): v for k, v in h.headers.items()}, body,
                      time.monotonic())
        kept = req
        if self.redact_headers:
            kept = dataclasses.replace(req, headers={k: "***" if k in self.redact_headers else v
                                                     for k, v in req.headers.items()})
        with self.lock:
            self.requests.append(kept)
            fault = self._take_fault(req)
            if fault is not None:
                kept.fault = "drop" if fault.drop else str(fault.status)
        if fault is not None and fault.drop:
            h.close_connection = True
            return
        if fault is not None:
            response = Response(fault.status or 500, fault.body, dict(fault.headers))
        else:
            response = self.respond(req)
        h.send_response(response.status)
        for k, v in response.headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(response.body)))
        h.end_headers()
        if req.method != "HEAD":
            h.wfile.write(response.body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    fake: RecordingServer
    listener: str

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            return self.rfile.read(n)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _handle(self) -> None:
        self.fake._answer(self, self._body())

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


# ----------------------------------------------------------------------------- helpers for suites that run the CLI


def export_models(root: Path, model: str, jobs: Mapping[str, Sequence[str]], *args: str,
                  timeout: float = 300) -> dict[str, Path]:
    """Run ``modelport export MODEL ARGS... JOB_ARGS... --output-dir ROOT/JOB`` for every job at once; their folders."""
    procs = {
        name: subprocess.Popen([sys.executable, "-m", "modelport", "export", model, *args, *extra,
                                "--output-dir", str(Path(root) / name)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, extra in jobs.items()
    }
    for name, p in procs.items():
        out, _ = p.communicate(timeout=timeout)
        if p.returncode != 0:
            raise AssertionError(f"export {name} failed:\n{out}")
    return {name: Path(root) / name for name in jobs}


@dataclass
class ExportPair:
    """Two pt2 exports of one model, in folders ``pt2-dynamic`` and ``pt2-strict``: what a publisher sends together."""

    dynamic: Path  # dynamic batch (default options)
    strict: Path  # static batch with strict=true


def export_pair(root: Path, model: str, *args: str) -> ExportPair:
    """Export ``model`` twice with the pt2 format the core ships (dynamic batch; strict=true), in parallel.

    With only the core and one publisher installed, pt2 is the one format: two option sets of one model
    stand in for "several formats of one model", which a publisher puts in one target.
    """
    dirs = export_models(root, model, {"pt2-dynamic": ["--dynamic-batch"], "pt2-strict": ["-o", "strict=true"]},
                         *args, "-f", "pt2")
    return ExportPair(dirs["pt2-dynamic"], dirs["pt2-strict"])


def local_env(drop_prefixes: Sequence[str] = (), **extra: str) -> dict[str, str]:
    """This process's environment without the variables starting with ``drop_prefixes``, 127.0.0.1 off any proxy, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(tuple(drop_prefixes))}
    env.update(NO_PROXY=f"{LOCALHOST},localhost", no_proxy=f"{LOCALHOST},localhost")
    env.update(extra)
    return env


def scan_for(secret: str, *roots: Path) -> list[str]:
    """Every file under ``roots`` whose bytes contain ``secret``."""
    hits = []
    for root in roots:
        for p in Path(root).rglob("*"):
            if p.is_file() and not p.is_symlink() and secret.encode() in p.read_bytes():
                hits.append(str(p))
    return hits


def folder_files(folder: Path) -> dict[str, bytes]:
    """The plain files directly in ``folder``, name to bytes."""
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}


def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (a connection to it is refused)."""
    with socket.socket() as s:
        s.bind((LOCALHOST, 0))
        return int(s.getsockname()[1])

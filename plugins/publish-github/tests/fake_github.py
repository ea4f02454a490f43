"""A small GitHub REST API on 127.0.0.1 for tests: the release endpoints the plugin calls, as GitHub documents them.

Two listening sockets: the API (with the uploads host under ``/uploads``) and a separate "storage" origin that
asset downloads redirect to, so a test can see that the token never goes there. Every request is recorded;
faults (a status with headers, or a dropped connection) are injected per method + path pattern. The serving
loops are bounded in requests and time and stop by themselves.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    server: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float
    fault: str | None = None


@dataclass
class Fault:
    method: str
    pattern: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    drop: bool = False
    times: int = 1
    after: int = 0  # let this many matching requests through first


class FakeGitHub:
    """Repos, releases and asset bytes, plus what arrived."""

    def __init__(self, token: str, *, max_requests: int = 3000, lifetime_s: float = 170.0) -> None:
        self.token = token
        self.repos: dict[str, list[dict[str, Any]]] = {}
        self.blobs: dict[int, bytes] = {}
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.digests = True  # GitHub reports asset sha256 as "digest"; GitHub Enterprise may not
        self.page_size = 100
        self.lock = threading.RLock()
        self._ids = 1000
        self._stop = threading.Event()
        self.max_requests = max_requests
        self.lifetime_s = lifetime_s
        gh = self

        class Api(_Handler):
            fake = gh
            role = "api"

        class Storage(_Handler):
            fake = gh
            role = "storage"

        self.api_server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
        self.storage_server = ThreadingHTTPServer(("127.0.0.1", 0), Storage)
        self.threads = []
        for srv in (self.api_server, self.storage_server):
            srv.daemon_threads = True
            srv.timeout = 0.1
            self.threads.append(threading.Thread(target=self._serve, args=(srv,), daemon=True))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_server.server_address[1]}"

    @property
    def storage_url(self) -> str:
        return f"http://127.0.0.1:{self.storage_server.server_address[1]}"

    def _serve(self, srv: ThreadingHTTPServer) -> None:
        deadline = time.monotonic() + self.lifetime_s
        while not self._stop.is_set() and len(self.requests) < self.max_requests and time.monotonic() < deadline:
            srv.handle_request()
        srv.server_close()

    def __enter__(self) -> FakeGitHub:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self.threads:
            t.join(timeout=5)

    # -- helpers for tests
    def next_id(self) -> int:
        with self.lock:
            self._ids += 1
            return self._ids

    def add_repo(self, full: str) -> None:
        self.repos.setdefault(full, [])

    def add_fault(self, method: str, pattern: str, **kw: Any) -> Fault:
        f = Fault(method, pattern, **kw)
        with self.lock:
            self.faults.append(f)
        return f

    def calls(self, method: str, pattern: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path) and r.fault is None]

    def release(self, full: str, tag: str) -> dict[str, Any]:
        return next(r for r in self.repos[full] if r["tag_name"] == tag)

    def asset_bytes(self, full: str, tag: str) -> dict[str, bytes]:
        return {a["name"]: self.blobs[a["id"]] for a in self.release(full, tag)["assets"]}

    def add_release(self, full: str, tag: str, assets: dict[str, bytes], draft: bool = False) -> dict[str, Any]:
        """A release made by someone else (for pull tests)."""
        rel = self._new_release(full, {"tag_name": tag, "name": tag, "body": "", "draft": draft})
        for name, data in assets.items():
            self._new_asset(full, rel, name, data, "application/octet-stream")
        return rel

    def _new_release(self, full: str, data: dict[str, Any]) -> dict[str, Any]:
        rid = self.next_id()
        rel = {"id": rid, "tag_name": data["tag_name"], "name": data.get("name"), "body": data.get("body") or "",
               "draft": bool(data.get("draft")), "prerelease": bool(data.get("prerelease")),
               "target_commitish": data.get("target_commitish") or "main",
               "html_url": f"https://github.example/{full}/releases/tag/{data['tag_name']}",
               "upload_url": f"{self.url}/uploads/repos/{full}/releases/{rid}/assets{{?name,label}}", "assets": []}
        self.repos[full].append(rel)
        return rel

    def _new_asset(self, full: str, rel: dict[str, Any], name: str, data: bytes, ctype: str) -> dict[str, Any]:
        aid = self.next_id()
        self.blobs[aid] = data
        asset = {"id": aid, "name": name, "size": len(data), "state": "uploaded", "content_type": ctype,
                 "url": f"{self.url}/repos/{full}/releases/assets/{aid}",
                 "browser_download_url": f"https://github.example/{full}/releases/download/{rel['tag_name']}/{name}"}
        if self.digests:
            asset["digest"] = "sha256:" + hashlib.sha256(data).hexdigest()
        rel["assets"].append(asset)
        return asset


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    fake: FakeGitHub
    role: str

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        body = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        self.send_response(status)
        if raw is None and payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, method: str) -> None:
        gh = self.fake
        parsed = urllib.parse.urlsplit(self.path)
        body = self._body()
        rec = Recorded(self.role, method, urllib.parse.unquote(parsed.path), urllib.parse.parse_qs(parsed.query),
                       {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
        with gh.lock:
            gh.requests.append(rec)
            fault = next((f for f in gh.faults if f.times > 0 and f.method == method and re.search(f.pattern, rec.path)), None)
            if fault is not None and fault.after > 0:
                fault.after -= 1
                fault = None
            if fault is not None:
                fault.times -= 1
                rec.fault = "drop" if fault.drop else str(fault.status)
        if fault is not None:
            if fault.drop:
                self.close_connection = True
                return
            self._send(fault.status or 500, raw=fault.body, headers=fault.headers)
            return
        try:
            if self.role == "storage":
                self._storage(method, rec)
            else:
                self._api(method, parsed, rec)
        except Exception as exc:
            self._send(500, {"message": f"fake github error: {type(exc).__name__}: {exc}"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _storage(self, method: str, rec: Recorded) -> None:
        m = re.fullmatch(r"/dl/(\d+)", rec.path)
        if method != "GET" or not m or int(m.group(1)) not in self.fake.blobs:
            self._send(404, raw=b"<Error>NoSuchKey</Error>")
            return
        self._send(200, raw=self.fake.blobs[int(m.group(1))], headers={"Content-Type": "application/octet-stream"})

    def _page(self, items: list[dict[str, Any]], rec: Recorded, path: str) -> None:
        per = min(int((rec.query.get("per_page") or ["30"])[0]), self.fake.page_size)
        page = int((rec.query.get("page") or ["1"])[0])
        chunk = items[(page - 1) * per: page * per]
        headers = {}
        if page * per < len(items):
            headers["Link"] = f'<{self.fake.url}{path}?per_page={per}&page={page + 1}>; rel="next"'
        self._send(200, chunk, headers)

    def _api(self, method: str, parsed: urllib.parse.SplitResult, rec: Recorded) -> None:
        gh = self.fake
        auth = rec.headers.get("authorization")
        if auth is not None and auth != f"Bearer {gh.token}":
            self._send(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
            return
        if method != "GET" and auth is None:
            self._send(401, {"message": "Requires authentication"})
            return
        path = rec.path
        m = re.fullmatch(r"(?:/uploads)?/repos/([^/]+/[^/]+)(/.*)?", path)
        if not m or m.group(1) not in gh.repos:
            self._send(404, {"message": "Not Found"})
            return
        full, rest = m.group(1), m.group(2) or ""
        releases = gh.repos[full]
        if path.startswith("/uploads/"):
            mm = re.fullmatch(r"/releases/(\d+)/assets", rest)
            rel = next((r for r in releases if mm and r["id"] == int(mm.group(1))), None)
            if method != "POST" or rel is None:
                self._send(404, {"message": "Not Found"})
                return
            if "content-length" not in rec.headers:
                self._send(411, {"message": "Length Required"})
                return
            name = rec.query["name"][0]
            if any(a["name"] == name for a in rel["assets"]):
                self._send(422, {"message": "Validation Failed", "errors": [{"resource": "ReleaseAsset", "code": "already_exists",
                                                                             "field": "name"}]})
                return
            with gh.lock:
                asset = gh._new_asset(full, rel, name, rec.body, rec.headers.get("content-type", ""))
            self._send(201, asset)
            return
        if rest == "" and method == "GET":
            self._send(200, {"full_name": full, "private": False})
            return
        mm = re.fullmatch(r"/releases/tags/(.+)", rest)
        if mm and method == "GET":
            rel = next((r for r in releases if r["tag_name"] == mm.group(1) and not r["draft"]), None)
            self._send(200, rel) if rel else self._send(404, {"message": "Not Found"})
            return
        if rest == "/releases" and method == "GET":
            visible = [r for r in releases if not r["draft"] or auth is not None]
            self._page(list(reversed(visible)), rec, path)
            return
        if rest == "/releases" and method == "POST":
            data = json.loads(rec.body)
            if any(r["tag_name"] == data["tag_name"] for r in releases):
                self._send(422, {"message": "Validation Failed", "errors": [{"resource": "Release", "code": "already_exists",
                                                                             "field": "tag_name"}]})
                return
            with gh.lock:
                rel = gh._new_release(full, data)
            self._send(201, rel)
            return
        mm = re.fullmatch(r"/releases/(\d+)(/assets)?", rest)
        if mm:
            rel = next((r for r in releases if r["id"] == int(mm.group(1))), None)
            if rel is None:
                self._send(404, {"message": "Not Found"})
            elif mm.group(2) and method == "GET":
                self._page(rel["assets"], rec, path)
            elif not mm.group(2) and method == "PATCH":
                data = json.loads(rec.body)
                for k in ("body", "name", "draft", "prerelease"):
                    if k in data:
                        rel[k] = data[k]
                self._send(200, rel)
            else:
                self._send(405, {"message": "Method Not Allowed"})
            return
        mm = re.fullmatch(r"/releases/assets/(\d+)", rest)
        if mm:
            aid = int(mm.group(1))
            rel = next((r for r in releases if any(a["id"] == aid for a in r["assets"])), None)
            if rel is None:
                self._send(404, {"message": "Not Found"})
                return
            asset = next(a for a in rel["assets"] if a["id"] == aid)
            if method == "DELETE":
                rel["assets"].remove(asset)
                self._send(204, raw=b"")
            elif method == "GET" and rec.headers.get("accept") == "application/octet-stream":
                self._send(302, raw=b"", headers={"Location": f"{gh.storage_url}/dl/{aid}?X-Amz-Signature=abc"})
            elif method == "GET":
                self._send(200, asset)
            else:
                self._send(405, {"message": "Method Not Allowed"})
            return
        self._send(404, {"message": f"fake github: no route for {method} {path}"})

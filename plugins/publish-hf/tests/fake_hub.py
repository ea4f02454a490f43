"""A small Hugging Face Hub on 127.0.0.1 for tests: the endpoints huggingface_hub's HfApi really calls.

Implemented from huggingface_hub's source (hf_api.py, _commit_api.py, lfs.py, file_download.py):
``POST /api/repos/create``, ``POST /api/models/{repo}/branch/{b}``, ``POST /api/validate-yaml``,
``POST /api/models/{repo}/preupload/{rev}``, ``POST /{repo}.git/info/lfs/objects/batch`` + ``PUT`` of the
LFS object, ``POST /api/models/{repo}/commit/{rev}`` (ndjson), ``POST /api/models/{repo}/paths-info/{rev}``,
``GET /api/models/{repo}/tree/{rev}[/path]``, ``GET /api/models/{repo}/revision/{rev}`` and
``HEAD``/``GET /{repo}/resolve/{rev}/{path}``. Every request is recorded; faults (a status with headers, or a
dropped connection) are injected per method + path pattern. The serving loop is bounded in requests and
time and stops by itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {size}\n".encode()


@dataclass
class Recorded:
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


@dataclass
class Blob:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def entry(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "file", "path": path, "size": len(self.data)}
        if self.lfs:
            ptr = lfs_pointer(self.sha256, len(self.data))
            out["oid"] = git_oid(ptr)
            out["lfs"] = {"oid": self.sha256, "size": len(self.data), "pointerSize": len(ptr)}
        else:
            out["oid"] = git_oid(self.data)
        return out


@dataclass
class Repo:
    repo_id: str
    private: bool
    branches: dict[str, dict[str, Blob]] = field(default_factory=dict)
    heads: dict[str, str] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)


class FakeHub:
    """The server, its state (repos, LFS store) and what it received."""

    def __init__(self, token: str, *, max_requests: int = 3000, lifetime_s: float = 170.0) -> None:
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.validated_yaml: list[str] = []
        self.lock = threading.RLock()
        self.max_requests = max_requests
        self.lifetime_s = lifetime_s
        self._stop = threading.Event()
        hub = self

        class Handler(_Handler):
            server_hub = hub

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.timeout = 0.1
        self.thread = threading.Thread(target=self._serve, daemon=True)

    # -- lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def _serve(self) -> None:
        deadline = time.monotonic() + self.lifetime_s
        handled = 0
        while not self._stop.is_set() and handled < self.max_requests and time.monotonic() < deadline:
            self.httpd.handle_request()
            handled = len(self.requests)
        self.httpd.server_close()

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(timeout=5)

    # -- helpers for tests
    def add_fault(self, method: str, pattern: str, **kw: Any) -> Fault:
        f = Fault(method, pattern, **kw)
        with self.lock:
            self.faults.append(f)
        return f

    def calls(self, method: str, pattern: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path) and r.fault is None]

    def file(self, repo_id: str, path: str, branch: str = "main") -> bytes:
        return self.repos[repo_id].branches[branch][path].data

    def seed(self, repo_id: str, files: dict[str, bytes], private: bool = False) -> None:
        """Create a repo holding ``files`` directly (for pull tests of repos we did not publish)."""
        repo = self._create(repo_id, private)
        for path, data in files.items():
            lfs = not path.endswith((".json", ".md"))
            repo.branches["main"][path] = Blob(data, lfs)
            if lfs:
                self.lfs[hashlib.sha256(data).hexdigest()] = data

    def _create(self, repo_id: str, private: bool) -> Repo:
        repo = Repo(repo_id, private)
        attrs = Blob(b"*.pt2 filter=lfs diff=lfs merge=lfs -text\n", False)
        repo.branches["main"] = {".gitattributes": attrs}
        repo.heads["main"] = hashlib.sha1(repo_id.encode()).hexdigest()
        self.repos[repo_id] = repo
        return repo


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    server_hub: FakeHub

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing
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

    def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None,
              head: bool = False) -> None:
        body = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        self.send_response(status)
        if raw is None and payload is not None:
            self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, {"error": message}, headers)

    def _handle(self, method: str) -> None:
        hub = self.server_hub
        parsed = urllib.parse.urlsplit(self.path)
        body = self._body()
        rec = Recorded(method, urllib.parse.unquote(parsed.path), urllib.parse.parse_qs(parsed.query),
                       {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
        with hub.lock:
            hub.requests.append(rec)
            fault = next((f for f in hub.faults if f.times > 0 and f.method == method and re.search(f.pattern, rec.path)), None)
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
            self._route(method, parsed, rec)
        except Exception as exc:  # a bug in the fake shows up as a 500 the test will see
            self._error(500, f"fake hub error: {type(exc).__name__}: {exc}")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    # -- auth
    def _auth(self, rec: Recorded) -> str | None:
        """'ok', 'anonymous', or None after answering 401."""
        header = rec.headers.get("authorization")
        if header is None:
            return "anonymous"
        if header == f"Bearer {self.server_hub.token}":
            return "ok"
        self._error(401, "Invalid credentials in Authorization header")
        return None

    def _repo(self, repo_id: str, who: str, write: bool = False) -> Repo | None:
        repo = self.server_hub.repos.get(repo_id)
        if repo is None or (repo.private and who != "ok"):
            self._error(404, "Repository not found", "RepoNotFound")
            return None
        if write and who != "ok":
            self._error(401, "You must be authenticated to write")
            return None
        return repo

    def _branch(self, repo: Repo, rev: str) -> dict[str, Blob] | None:
        rev = urllib.parse.unquote(rev)
        if rev not in repo.branches:
            self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            return None
        return repo.branches[rev]

    # -- routes
    def _route(self, method: str, parsed: urllib.parse.SplitResult, rec: Recorded) -> None:
        hub = self.server_hub
        path = parsed.path
        m = re.fullmatch(r"/lfs-upload/([0-9a-f]{64})", path)
        if method == "PUT" and m:  # the storage side: pre-signed, no token
            if hashlib.sha256(rec.body).hexdigest() != m.group(1):
                self._error(400, "sha256 mismatch")
                return
            with hub.lock:
                hub.lfs[m.group(1)] = rec.body
            self._send(200, raw=b"")
            return
        who = self._auth(rec)
        if who is None:
            return
        if method == "POST" and path == "/api/repos/create":
            data = json.loads(rec.body)
            if who != "ok":
                self._error(401, "You must be authenticated")
                return
            repo_id = f"{data['organization']}/{data['name']}" if data.get("organization") else f"user/{data['name']}"
            with hub.lock:
                if repo_id in hub.repos:
                    self._send(409, {"error": "You already created this model repo", "url": f"{hub.url}/{repo_id}"})
                    return
                hub._create(repo_id, data.get("visibility") == "private" or bool(data.get("private")))
            self._send(200, {"url": f"{hub.url}/{repo_id}", "name": repo_id})
            return
        if method == "POST" and path == "/api/validate-yaml":
            data = json.loads(rec.body)
            hub.validated_yaml.append(data["content"])
            self._send(200, {"errors": [], "warnings": []})
            return
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/(branch|preupload|commit|paths-info|revision)/(.+)", path)
        if m:
            repo_id, op, rev = m.groups()
            repo = self._repo(repo_id, who, write=op in ("branch", "preupload", "commit"))
            if repo is None:
                return
            ops = {"branch": self._branch_create, "preupload": self._preupload, "commit": self._commit,
                   "paths-info": self._paths_info, "revision": self._revision}
            ops[op](repo, rev, rec)
            return
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
        if m and method == "GET":
            repo = self._repo(m.group(1), who)
            branch = self._branch(repo, m.group(2)) if repo else None
            if branch is None:
                return
            prefix = (m.group(3) or "").strip("/")
            entries = [b.entry(p) for p, b in sorted(branch.items()) if not prefix or p.startswith(prefix + "/")]
            folders = sorted({"/".join(p.split("/")[:i]) for p in branch for i in range(1, p.count("/") + 1)})
            entries += [{"type": "directory", "path": f, "oid": hashlib.sha1(f.encode()).hexdigest(), "size": 0}
                        for f in folders if not prefix or f.startswith(prefix + "/")]
            self._send(200, entries)
            return
        m = re.fullmatch(r"/([^/]+/[^/]+)\.git/info/lfs/objects/batch", path)
        if m and method == "POST":
            repo = self._repo(m.group(1), who, write=True)
            if repo is None:
                return
            data = json.loads(rec.body)
            objects = []
            for obj in data["objects"]:
                item = {"oid": obj["oid"], "size": obj["size"]}
                if obj["oid"] not in hub.lfs:
                    item["actions"] = {"upload": {"href": f"{hub.url}/lfs-upload/{obj['oid']}"}}
                objects.append(item)
            self._send(200, {"transfer": "basic", "objects": objects})
            return
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m and method in ("GET", "HEAD"):
            repo = self._repo(m.group(1), who)
            branch = self._branch(repo, m.group(2)) if repo else None
            if branch is None:
                return
            rev = urllib.parse.unquote(m.group(2))
            blob = branch.get(m.group(3))
            headers = {"X-Repo-Commit": repo.heads[rev]}
            if blob is None:
                self._send(404, {"error": "Entry not found"}, {**headers, "X-Error-Code": "EntryNotFound"}, head=method == "HEAD")
                return
            headers["ETag"] = f'"{blob.entry(m.group(3))["oid"]}"'
            if blob.lfs:
                headers["X-Linked-Etag"] = f'"{blob.sha256}"'
                headers["X-Linked-Size"] = str(len(blob.data))
            self._send(200, raw=blob.data, headers=headers, head=method == "HEAD")
            return
        self._error(404, f"fake hub: no route for {method} {path}")

    def _preupload(self, repo: Repo, rev: str, rec: Recorded) -> None:
        branch = self._branch(repo, rev)
        if branch is None:
            return
        files = []
        for f in json.loads(rec.body)["files"]:
            lfs = not f["path"].endswith((".json", ".md")) and f["size"] > 0
            cur = branch.get(f["path"])
            oid = None
            if cur is not None:
                oid = cur.sha256 if cur.lfs else git_oid(cur.data)
            files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        self._send(200, {"files": files, "commitOid": repo.heads.get(urllib.parse.unquote(rev))})

    def _commit(self, repo: Repo, rev: str, rec: Recorded) -> None:
        hub = self.server_hub
        branch = self._branch(repo, rev)
        if branch is None:
            return
        lines = [json.loads(line) for line in rec.body.decode().splitlines() if line.strip()]
        header = next(x["value"] for x in lines if x["key"] == "header")
        new = dict(branch)
        for item in lines:
            v = item["value"]
            if item["key"] == "file":
                new[v["path"]] = Blob(base64.b64decode(v["content"]), False)
            elif item["key"] == "lfsFile":
                if v["oid"] not in hub.lfs:
                    self._error(400, f"LFS object {v['oid']} was never uploaded")
                    return
                new[v["path"]] = Blob(hub.lfs[v["oid"]], True)
            elif item["key"] == "deletedFile":
                new.pop(v["path"], None)
        name = urllib.parse.unquote(rev)
        oid = hashlib.sha1((repo.heads[name] + json.dumps(lines)).encode()).hexdigest()
        with hub.lock:
            repo.branches[name] = new
            repo.heads[name] = oid
            repo.commits.append({"oid": oid, "branch": name, "summary": header["summary"],
                                 "description": header.get("description", ""),
                                 "paths": [x["value"]["path"] for x in lines if x["key"] != "header"]})
        self._send(200, {"commitUrl": f"{hub.url}/{repo.repo_id}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None})

    def _paths_info(self, repo: Repo, rev: str, rec: Recorded) -> None:
        branch = self._branch(repo, rev)
        if branch is None:
            return
        form = urllib.parse.parse_qs(rec.body.decode())
        self._send(200, [branch[p].entry(p) for p in form.get("paths", []) if p in branch])

    def _revision(self, repo: Repo, rev: str, rec: Recorded) -> None:
        branch = self._branch(repo, rev)
        if branch is None:
            return
        name = urllib.parse.unquote(rev)
        self._send(200, {"id": repo.repo_id, "modelId": repo.repo_id, "sha": repo.heads[name], "private": repo.private,
                         "siblings": [{"rfilename": p} for p in sorted(branch)]})

    def _branch_create(self, repo: Repo, rev: str, rec: Recorded) -> None:
        name = urllib.parse.unquote(rev)
        if name in repo.branches:
            self._send(409, {"error": "Reference already exists"})
            return
        repo.branches[name] = dict(repo.branches["main"])
        repo.heads[name] = repo.heads["main"]
        self._send(200, {})

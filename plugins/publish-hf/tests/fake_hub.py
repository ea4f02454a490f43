"""A small Hugging Face Hub on 127.0.0.1 for tests: the endpoints huggingface_hub's HfApi really calls.

Implemented from huggingface_hub's source (hf_api.py, _commit_api.py, lfs.py, file_download.py):
``POST /api/repos/create``, ``POST /api/models/{repo}/branch/{b}``, ``POST /api/validate-yaml``,
``POST /api/models/{repo}/preupload/{rev}``, ``POST /{repo}.git/info/lfs/objects/batch`` + ``PUT`` of the
LFS object, ``POST /api/models/{repo}/commit/{rev}`` (ndjson), ``POST /api/models/{repo}/paths-info/{rev}``,
``GET /api/models/{repo}/tree/{rev}[/path]``, ``GET /api/models/{repo}/revision/{rev}``, ``GET /api/models/{repo}``,
``GET /api/models?author=&filter=`` (tags from the model card's front matter, as the Hub derives them) and
``HEAD``/``GET /{repo}/resolve/{rev}/{path}``. Recording, fault injection and the bounded serving loop come
from :class:`modelport.testing.http.RecordingServer`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from modelport.testing.http import Abort, RecordingServer, Request, Response


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {size}\n".encode()


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
    modified: str = "2026-01-01T00:00:00.000Z"


REPO = r"([^/]+/[^/]+)"


class FakeHub(RecordingServer):
    """The server, its state (repos, LFS store) and what it received."""

    name = "fake hub"

    def __init__(self, token: str, *, max_requests: int = 3000, lifetime_s: float = 170.0) -> None:
        super().__init__(max_requests=max_requests, lifetime_s=lifetime_s)
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.validated_yaml: list[str] = []
        self.collections: dict[str, list[dict[str, Any]]] = {}  # slug -> items, made by the test
        self.route("PUT", r"/lfs-upload/([0-9a-f]{64})", self._lfs_upload, public=True)  # pre-signed storage, no token
        self.route("POST", r"/api/repos/create", self._create_repo)
        self.route("POST", r"/api/validate-yaml", self._validate_yaml)
        self.route(None, rf"/api/models/{REPO}/branch/(.+)", self._branch_create)
        self.route(None, rf"/api/models/{REPO}/preupload/(.+)", self._preupload)
        self.route(None, rf"/api/models/{REPO}/commit/(.+)", self._commit)
        self.route(None, rf"/api/models/{REPO}/paths-info/(.+)", self._paths_info)
        self.route(None, rf"/api/models/{REPO}/revision/(.+)", self._revision)
        self.route("GET", rf"/api/models/{REPO}", self._model_info)
        self.route("GET", r"/api/models", self._list_models)
        self.route("POST", r"/api/collections/([^/]+/[^/]+)/items", self._collection_add)
        self.route("GET", r"/api/collections/([^/]+/[^/]+)", self._collection_get)
        self.route("GET", rf"/api/models/{REPO}/tree/([^/]+)(?:/(.*))?", self._tree)
        self.route("POST", rf"/{REPO}\.git/info/lfs/objects/batch", self._lfs_batch)
        self.route(("GET", "HEAD"), rf"/{REPO}/resolve/([^/]+)/(.+)", self._resolve)

    # -- helpers for tests
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

    # -- the Hub's conventions: errors, auth, lookups
    def error(self, status: int, message: str, code: str | None = None) -> Response:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        return self.json(status, {"error": message}, headers)

    def check(self, req: Request) -> Response | None:
        header = req.headers.get("authorization")
        if header is not None and header != f"Bearer {self.token}":
            return self.error(401, "Invalid credentials in Authorization header")
        return None

    @staticmethod
    def _who(req: Request) -> str:
        """'ok' or 'anonymous' (a wrong token never gets past check)."""
        return "anonymous" if req.headers.get("authorization") is None else "ok"

    def _repo(self, repo_id: str, req: Request, write: bool = False) -> Repo:
        repo = self.repos.get(repo_id)
        who = self._who(req)
        if repo is None or (repo.private and who != "ok"):
            raise Abort(self.error(404, "Repository not found", "RepoNotFound"))
        if write and who != "ok":
            raise Abort(self.error(401, "You must be authenticated to write"))
        return repo

    def _branch(self, repo: Repo, rev: str) -> dict[str, Blob]:
        rev = urllib.parse.unquote(rev)
        if rev not in repo.branches:
            raise Abort(self.error(404, f"Invalid rev id: {rev}", "RevisionNotFound"))
        return repo.branches[rev]

    # -- routes
    def _lfs_upload(self, req: Request, m: re.Match[str]) -> Response:
        if hashlib.sha256(req.body).hexdigest() != m[1]:
            return self.error(400, "sha256 mismatch")
        with self.lock:
            self.lfs[m[1]] = req.body
        return Response(200)

    def _create_repo(self, req: Request, m: re.Match[str]) -> Response:
        data = json.loads(req.body)
        if self._who(req) != "ok":
            return self.error(401, "You must be authenticated")
        repo_id = f"{data['organization']}/{data['name']}" if data.get("organization") else f"user/{data['name']}"
        with self.lock:
            if repo_id in self.repos:
                return self.json(409, {"error": "You already created this model repo", "url": f"{self.url}/{repo_id}"})
            self._create(repo_id, data.get("visibility") == "private" or bool(data.get("private")))
        return self.json(200, {"url": f"{self.url}/{repo_id}", "name": repo_id})

    def _validate_yaml(self, req: Request, m: re.Match[str]) -> Response:
        self.validated_yaml.append(json.loads(req.body)["content"])
        return self.json(200, {"errors": [], "warnings": []})

    def _tree(self, req: Request, m: re.Match[str]) -> Response:
        branch = self._branch(self._repo(m[1], req), m[2])
        prefix = (m[3] or "").strip("/")
        entries = [b.entry(p) for p, b in sorted(branch.items()) if not prefix or p.startswith(prefix + "/")]
        folders = sorted({"/".join(p.split("/")[:i]) for p in branch for i in range(1, p.count("/") + 1)})
        entries += [{"type": "directory", "path": f, "oid": hashlib.sha1(f.encode()).hexdigest(), "size": 0}
                    for f in folders if not prefix or f.startswith(prefix + "/")]
        return self.json(200, entries)

    def _lfs_batch(self, req: Request, m: re.Match[str]) -> Response:
        self._repo(m[1], req, write=True)
        objects = []
        for obj in json.loads(req.body)["objects"]:
            item = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.lfs:
                item["actions"] = {"upload": {"href": f"{self.url}/lfs-upload/{obj['oid']}"}}
            objects.append(item)
        return self.json(200, {"transfer": "basic", "objects": objects})

    def _resolve(self, req: Request, m: re.Match[str]) -> Response:
        repo = self._repo(m[1], req)
        branch = self._branch(repo, m[2])
        blob = branch.get(m[3])
        headers = {"X-Repo-Commit": repo.heads[urllib.parse.unquote(m[2])]}
        if blob is None:
            return self.json(404, {"error": "Entry not found"}, {**headers, "X-Error-Code": "EntryNotFound"})
        headers["ETag"] = f'"{blob.entry(m[3])["oid"]}"'
        if blob.lfs:
            headers["X-Linked-Etag"] = f'"{blob.sha256}"'
            headers["X-Linked-Size"] = str(len(blob.data))
        return Response(200, blob.data, headers)

    def _preupload(self, req: Request, m: re.Match[str]) -> Response:
        repo = self._repo(m[1], req, write=True)
        branch = self._branch(repo, m[2])
        files = []
        for f in json.loads(req.body)["files"]:
            lfs = not f["path"].endswith((".json", ".md")) and f["size"] > 0
            cur = branch.get(f["path"])
            oid = None
            if cur is not None:
                oid = cur.sha256 if cur.lfs else git_oid(cur.data)
            files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        return self.json(200, {"files": files, "commitOid": repo.heads.get(urllib.parse.unquote(m[2]))})

    def _commit(self, req: Request, m: re.Match[str]) -> Response:
        repo = self._repo(m[1], req, write=True)
        branch = self._branch(repo, m[2])
        lines = [json.loads(line) for line in req.body.decode().splitlines() if line.strip()]
        header = next(x["value"] for x in lines if x["key"] == "header")
        new = dict(branch)
        for item in lines:
            v = item["value"]
            if item["key"] == "file":
                new[v["path"]] = Blob(base64.b64decode(v["content"]), False)
            elif item["key"] == "lfsFile":
                if v["oid"] not in self.lfs:
                    return self.error(400, f"LFS object {v['oid']} was never uploaded")
                new[v["path"]] = Blob(self.lfs[v["oid"]], True)
            elif item["key"] == "deletedFile":
                new.pop(v["path"], None)
        name = urllib.parse.unquote(m[2])
        oid = hashlib.sha1((repo.heads[name] + json.dumps(lines)).encode()).hexdigest()
        with self.lock:
            repo.branches[name] = new
            repo.heads[name] = oid
            repo.modified = f"2026-01-01T00:00:{len(repo.commits) % 60:02d}.000Z"
            repo.commits.append({"oid": oid, "branch": name, "summary": header["summary"],
                                 "description": header.get("description", ""),
                                 "paths": [x["value"]["path"] for x in lines if x["key"] != "header"]})
        return self.json(200, {"commitUrl": f"{self.url}/{repo.repo_id}/commit/{oid}", "commitOid": oid,
                               "pullRequestUrl": None})

    def _paths_info(self, req: Request, m: re.Match[str]) -> Response:
        branch = self._branch(self._repo(m[1], req), m[2])
        form = urllib.parse.parse_qs(req.body.decode())
        return self.json(200, [branch[p].entry(p) for p in form.get("paths", []) if p in branch])

    def _revision(self, req: Request, m: re.Match[str]) -> Response:
        repo = self._repo(m[1], req)
        branch = self._branch(repo, m[2])
        name = urllib.parse.unquote(m[2])
        return self.json(200, {"id": repo.repo_id, "modelId": repo.repo_id, "sha": repo.heads[name],
                               "private": repo.private, "lastModified": repo.modified, "siblings": [{"rfilename": p} for p in sorted(branch)]})

    def _model_info(self, req: Request, m: re.Match[str]) -> Response:
        return self._revision(req, re.fullmatch(rf"{REPO}/(main)", f"{m[1]}/main"))  # type: ignore[arg-type]

    @staticmethod
    def card_tags(branch: dict[str, Blob]) -> list[str]:
        """The tags in README.md's YAML front matter (the Hub lists a repo under them)."""
        card = branch.get("README.md")
        if card is None or not card.data.startswith(b"---\n"):
            return []
        front = card.data.decode().split("\n---", 1)[0]
        return [t.strip().strip('"') for t in re.findall(r"^- (.+)$", front, re.M)]

    def _list_models(self, req: Request, m: re.Match[str]) -> Response:
        author = (req.query.get("author") or [None])[0]
        wanted = set(req.query.get("filter") or [])
        who = self._who(req)
        out = []
        for repo in self.repos.values():
            if (repo.private and who != "ok") or (author and not repo.repo_id.startswith(f"{author}/")):
                continue
            tags = self.card_tags(repo.branches["main"])
            if wanted <= set(tags):
                out.append({"id": repo.repo_id, "modelId": repo.repo_id, "private": repo.private, "tags": tags,
                            "lastModified": repo.modified, "sha": repo.heads["main"]})
        return self.json(200, out)

    def _collection_add(self, req: Request, m: re.Match[str]) -> Response:
        slug = urllib.parse.unquote(m[1])
        if self._who(req) != "ok":
            return self.error(401, "You must be authenticated")
        if slug not in self.collections:
            return self.error(404, "Collection not found")
        item = json.loads(req.body)["item"]
        items = self.collections[slug]
        if any(i["id"] == item["id"] for i in items):
            return self.error(409, "Item already in the collection")
        with self.lock:
            items.append({"_id": hashlib.sha1(item["id"].encode()).hexdigest()[:24], "id": item["id"],
                          "type": item["type"], "position": len(items)})
        return self._collection_get(req, m)

    def _collection_get(self, req: Request, m: re.Match[str]) -> Response:
        slug = urllib.parse.unquote(m[1])
        if slug not in self.collections:
            return self.error(404, "Collection not found")
        items = self.collections[slug]
        return self.json(200, {"slug": slug, "title": slug.split("/")[1], "owner": slug.split("/")[0], "items": items,
                               "lastUpdated": "2026-01-01T00:00:00.000Z", "position": 0, "private": False,
                               "theme": "blue", "upvotes": 0})

    def _branch_create(self, req: Request, m: re.Match[str]) -> Response:
        repo = self._repo(m[1], req, write=True)
        name = urllib.parse.unquote(m[2])
        if name in repo.branches:
            return self.json(409, {"error": "Reference already exists"})
        repo.branches[name] = dict(repo.branches["main"])
        repo.heads[name] = repo.heads["main"]
        return self.json(200, {})

"""A small GitHub REST API on 127.0.0.1 for tests: the release endpoints the plugin calls, as GitHub documents them.

Two listeners: the API (with the uploads host under ``/uploads``) and a separate "storage" origin that asset
downloads redirect to, so a test can see that the token never goes there. Recording, fault injection and the
bounded serving loops come from :class:`modelport.testing.http.RecordingServer`.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from typing import Any

from modelport.testing.http import Abort, RecordingServer, Request, Response

REPO = r"/repos/([^/]+/[^/]+)"


class FakeGitHub(RecordingServer):
    """Repos, releases and asset bytes, plus what arrived."""

    name = "fake github"
    json_type = "application/json; charset=utf-8"

    def __init__(self, token: str, *, max_requests: int = 3000, lifetime_s: float = 170.0) -> None:
        super().__init__(listeners=("api", "storage"), max_requests=max_requests, lifetime_s=lifetime_s)
        self.token = token
        self.repos: dict[str, list[dict[str, Any]]] = {}
        self.blobs: dict[int, bytes] = {}
        self.digests = True  # GitHub reports asset sha256 as "digest"; GitHub Enterprise may not
        self.page_size = 100
        self._ids = 1000
        self.route(None, r".*", self._storage, server="storage", public=True)
        self.route("POST", rf"/uploads{REPO}/releases/(\d+)/assets", self._upload, server="api")
        self.route("GET", REPO, self._repo_info, server="api")
        self.route("GET", rf"{REPO}/releases/tags/(.+)", self._release_by_tag, server="api")
        self.route("GET", rf"{REPO}/releases", self._list_releases, server="api")
        self.route("POST", rf"{REPO}/releases", self._create_release, server="api")
        self.route(None, rf"{REPO}/releases/(\d+)(/assets)?", self._release, server="api")
        self.route(None, rf"{REPO}/releases/assets/(\d+)", self._asset, server="api")

    @property
    def storage_url(self) -> str:
        return self.url_of("storage")

    # -- helpers for tests
    def next_id(self) -> int:
        with self.lock:
            self._ids += 1
            return self._ids

    def add_repo(self, full: str) -> None:
        self.repos.setdefault(full, [])

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
               "created_at": f"2026-01-01T00:{rid // 60 % 60:02d}:{rid % 60:02d}Z",
               "published_at": None if data.get("draft") else f"2026-01-01T00:{rid // 60 % 60:02d}:{rid % 60:02d}Z",
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

    # -- GitHub's conventions: errors, auth, lookups
    def error(self, status: int, message: str) -> Response:
        return self.json(status, {"message": message})

    def check(self, req: Request) -> Response | None:
        auth = req.headers.get("authorization")
        if auth is not None and auth != f"Bearer {self.token}":
            return self.json(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        if req.method != "GET" and auth is None:
            return self.error(401, "Requires authentication")
        return None

    def _releases(self, full: str) -> list[dict[str, Any]]:
        if full not in self.repos:
            raise Abort(self.error(404, "Not Found"))
        return self.repos[full]

    def _page(self, items: list[dict[str, Any]], req: Request) -> Response:
        per = min(int((req.query.get("per_page") or ["30"])[0]), self.page_size)
        page = int((req.query.get("page") or ["1"])[0])
        chunk = items[(page - 1) * per: page * per]
        headers = {}
        if page * per < len(items):
            headers["Link"] = f'<{self.url}{req.path}?per_page={per}&page={page + 1}>; rel="next"'
        return self.json(200, chunk, headers)

    # -- routes
    def _storage(self, req: Request, m: re.Match[str]) -> Response:
        mm = re.fullmatch(r"/dl/(\d+)", req.path)
        if req.method != "GET" or not mm or int(mm[1]) not in self.blobs:
            return Response(404, b"<Error>NoSuchKey</Error>")
        return Response(200, self.blobs[int(mm[1])], {"Content-Type": "application/octet-stream"})

    def _upload(self, req: Request, m: re.Match[str]) -> Response:
        rel = next((r for r in self._releases(m[1]) if r["id"] == int(m[2])), None)
        if rel is None:
            return self.error(404, "Not Found")
        if "content-length" not in req.headers:
            return self.error(411, "Length Required")
        name = req.query["name"][0]
        if any(a["name"] == name for a in rel["assets"]):
            return self.json(422, {"message": "Validation Failed", "errors": [{"resource": "ReleaseAsset",
                                                                              "code": "already_exists", "field": "name"}]})
        with self.lock:
            asset = self._new_asset(m[1], rel, name, req.body, req.headers.get("content-type", ""))
        return self.json(201, asset)

    def _repo_info(self, req: Request, m: re.Match[str]) -> Response:
        self._releases(m[1])
        return self.json(200, {"full_name": m[1], "private": False})

    def _release_by_tag(self, req: Request, m: re.Match[str]) -> Response:
        tag = urllib.parse.unquote(m[2])
        rel = next((r for r in self._releases(m[1]) if r["tag_name"] == tag and not r["draft"]), None)
        return self.json(200, rel) if rel else self.error(404, "Not Found")

    def _list_releases(self, req: Request, m: re.Match[str]) -> Response:
        authed = req.headers.get("authorization") is not None
        visible = [r for r in self._releases(m[1]) if not r["draft"] or authed]
        return self._page(list(reversed(visible)), req)

    def _create_release(self, req: Request, m: re.Match[str]) -> Response:
        releases = self._releases(m[1])
        data = json.loads(req.body)
        if any(r["tag_name"] == data["tag_name"] for r in releases):
            return self.json(422, {"message": "Validation Failed", "errors": [{"resource": "Release",
                                                                              "code": "already_exists", "field": "tag_name"}]})
        with self.lock:
            rel = self._new_release(m[1], data)
        return self.json(201, rel)

    def _release(self, req: Request, m: re.Match[str]) -> Response:
        rel = next((r for r in self._releases(m[1]) if r["id"] == int(m[2])), None)
        if rel is None:
            return self.error(404, "Not Found")
        if m[3] and req.method == "GET":
            return self._page(rel["assets"], req)
        if not m[3] and req.method == "PATCH":
            data = json.loads(req.body)
            for k in ("body", "name", "draft", "prerelease"):
                if k in data:
                    rel[k] = data[k]
            return self.json(200, rel)
        return self.error(405, "Method Not Allowed")

    def _asset(self, req: Request, m: re.Match[str]) -> Response:
        aid = int(m[2])
        rel = next((r for r in self._releases(m[1]) if any(a["id"] == aid for a in r["assets"])), None)
        if rel is None:
            return self.error(404, "Not Found")
        asset = next(a for a in rel["assets"] if a["id"] == aid)
        if req.method == "DELETE":
            rel["assets"].remove(asset)
            return Response(204)
        if req.method == "GET" and req.headers.get("accept") == "application/octet-stream":
            return Response(302, headers={"Location": f"{self.storage_url}/dl/{aid}?X-Amz-Signature=abc"})
        if req.method == "GET":
            return self.json(200, asset)
        return self.error(405, "Method Not Allowed")

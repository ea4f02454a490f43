"""modelport.testing.http: the recording fake server publishers test against, driven with urllib and http.client."""

from __future__ import annotations

import http.client
import json
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from modelport.testing import CliResult, run_cli
from modelport.testing.http import (
    Abort,
    RecordingServer,
    Request,
    Response,
    export_models,
    folder_files,
    local_env,
    scan_for,
    unused_port,
)

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy


def fetch(url: str, *, method: str = "GET", data: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with OPENER.open(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers), e.read()


class Store(RecordingServer):
    """A tiny service: a token-checked object store with a public health check."""

    name = "fake store"

    def __init__(self, token: str = "t0ken", **kw) -> None:
        super().__init__(**kw)
        self.token = token
        self.objects: dict[str, bytes] = {}
        self.route("GET", r"/health", lambda req, m: Response(200, b"ok"), public=True)
        self.route("PUT", r"/objects/([^/]+)", self.put)
        self.route(("GET", "HEAD"), r"/objects/([^/]+)", self.get)
        self.route("POST", r"/boom", self.boom)

    def check(self, req: Request) -> Response | None:
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return self.error(401, "bad token")
        return None

    def lookup(self, key: str) -> bytes:
        if key not in self.objects:
            raise Abort(self.error(404, f"no object {key}"))
        return self.objects[key]

    def put(self, req: Request, m: re.Match[str]) -> Response:
        self.objects[m[1]] = req.body
        return self.json(201, {"key": m[1], "size": len(req.body)}, {"X-Stored": "yes"})

    def get(self, req: Request, m: re.Match[str]) -> Response:
        return Response(200, self.lookup(m[1]), {"Content-Type": "application/octet-stream"})

    def boom(self, req: Request, m: re.Match[str]) -> Response:
        raise RuntimeError("a bug in the fake")


AUTH = {"Authorization": "Bearer t0ken"}


def test_records_every_request_with_decoded_path_query_headers_and_body() -> None:
    with Store() as s:
        status, headers, body = fetch(f"{s.url}/objects/a%20b?x=1&x=2&y=z", method="PUT", data=b"payload",
                                      headers={**AUTH, "X-Custom": "v"})
        assert status == 201 and json.loads(body) == {"key": "a%20b", "size": 7}
        assert headers["Content-Type"] == "application/json" and headers["X-Stored"] == "yes"
        assert fetch(f"{s.url}/health")[0] == 200
    assert [(r.method, r.path) for r in s.requests] == [("PUT", "/objects/a b"), ("GET", "/health")]
    put = s.requests[0]
    assert put.raw_path == "/objects/a%20b"
    assert put.query == {"x": ["1", "2"], "y": ["z"]}
    assert put.headers["authorization"] == "Bearer t0ken", "kept by default: tests assert on the token sent"
    assert put.headers["x-custom"] == "v" and "X-Custom" not in put.headers
    assert put.body == b"payload" and put.server == "main" and put.fault is None
    assert s.requests[0].at <= s.requests[1].at
    assert s.objects == {"a%20b": b"payload"}


def test_redacted_headers_are_recorded_as_stars_but_routes_see_them() -> None:
    with Store(redact_headers=("Authorization",)) as s:
        assert fetch(f"{s.url}/objects/k", method="PUT", data=b"1", headers=AUTH)[0] == 201
    assert s.requests[0].headers["authorization"] == "***"
    assert s.objects == {"k": b"1"}


def test_routes_by_method_with_check_abort_head_and_errors() -> None:
    with Store() as s:
        assert fetch(f"{s.url}/objects/k", method="PUT", data=b"data")[0] == 401, "check runs before private routes"
        assert fetch(f"{s.url}/objects/k", method="PUT", data=b"data", headers=AUTH)[0] == 201
        status, _, body = fetch(f"{s.url}/objects/k", headers=AUTH)
        assert (status, body) == (200, b"data")
        conn = http.client.HTTPConnection("127.0.0.1", int(s.url.rsplit(":", 1)[1]), timeout=10)
        conn.request("HEAD", "/objects/k", headers=AUTH)
        head = conn.getresponse()
        assert (head.status, head.read(), head.headers["Content-Length"]) == (200, b"", "4"), "HEAD: GET's headers"
        conn.request("GET", "/objects/k", headers=AUTH)  # on the same connection: HEAD wrote no body
        got = conn.getresponse()
        assert (got.status, got.read()) == (200, b"data")
        conn.close()
        status, _, body = fetch(f"{s.url}/objects/missing", headers=AUTH)
        assert status == 404 and json.loads(body) == {"error": "no object missing"}, "Abort answers at once"
        status, _, body = fetch(f"{s.url}/objects/k", method="DELETE", headers=AUTH)
        assert status == 404, "a route answers only its methods"
        status, _, body = fetch(f"{s.url}/boom", method="POST", data=b"", headers=AUTH)
        assert status == 500 and json.loads(body) == {"error": "fake store error: RuntimeError: a bug in the fake"}
    assert [r.method for r in s.calls("PUT", r"^/objects/")] == ["PUT", "PUT"]


def test_unknown_paths_are_404_after_check() -> None:
    with Store() as s:
        assert fetch(f"{s.url}/nowhere")[0] == 401, "an unknown path is not public"
        status, headers, body = fetch(f"{s.url}/nowhere/x?q=1", method="POST", data=b"{}", headers=AUTH)
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"error": "fake store: no route for POST /nowhere/x"}
    assert len(s.requests) == 2, "unknown paths are recorded too"


def test_routes_added_to_a_plain_instance_and_raw_path_matching() -> None:
    s = RecordingServer()
    s.route(None, r"/items/([^/]+)", lambda req, m: s.json(200, {"raw": m[1], "decoded": req.path}))
    with s:
        status, _, body = fetch(f"{s.url}/items/refs%2Fpr%2F1", method="PATCH", data=b"x")
        assert status == 200 and json.loads(body) == {"raw": "refs%2Fpr%2F1", "decoded": "/items/refs/pr/1"}
        assert fetch(f"{s.url}/items/a/b")[0] == 404, "patterns match the raw path, so %2F is not a separator"


def test_faults_answer_with_status_and_headers_then_let_requests_through() -> None:
    with Store() as s:
        s.add_fault("PUT", r"/objects/", status=429, headers={"Retry-After": "3"}, body=b"slow down", times=2, after=2)
        s.add_fault("GET", r"/objects/", status=500)  # another method: never matches a PUT
        codes = [fetch(f"{s.url}/objects/k{i}", method="PUT", data=b"x", headers=AUTH) for i in range(5)]
    assert [c[0] for c in codes] == [201, 201, 429, 429, 201]
    assert codes[2][1]["Retry-After"] == "3" and codes[2][2] == b"slow down"
    assert [r.fault for r in s.requests] == [None, None, "429", "429", None]
    assert [r.path for r in s.calls("PUT", "/objects/")] == ["/objects/k0", "/objects/k1", "/objects/k4"], \
        "calls() leave faulted requests out"
    assert set(s.objects) == {"k0", "k1", "k4"}


def test_a_dropped_connection_gets_no_answer() -> None:
    with Store() as s:
        s.add_fault("GET", r"^/health$", drop=True)
        with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
            fetch(f"{s.url}/health")
        assert fetch(f"{s.url}/health")[0] == 200, "the fault was used up"
    assert [r.fault for r in s.requests] == ["drop", None]


def test_chunked_request_bodies_are_read() -> None:
    with Store() as s:
        conn = http.client.HTTPConnection("127.0.0.1", int(s.url.rsplit(":", 1)[1]), timeout=10)
        conn.request("PUT", "/objects/c", body=iter([b"ab", b"cde"]), headers={**AUTH, "Transfer-Encoding": "chunked"},
                     encode_chunked=True)
        assert conn.getresponse().status == 201
        conn.close()
    assert s.objects == {"c": b"abcde"} and s.requests[0].body == b"abcde"


def test_two_listeners_share_one_record_and_routes_can_pin_one() -> None:
    s = RecordingServer(listeners=("api", "storage"))
    s.route("GET", r"/dl/(\d+)", lambda req, m: Response(200, m[1].encode()), server="storage")
    s.route("GET", r"/v1", lambda req, m: s.json(200, {"on": req.server}), server="api")
    with s:
        assert s.url == s.url_of("api") != s.url_of("storage")
        status, _, body = fetch(f"{s.url_of('storage')}/dl/7")
        assert (status, body) == (200, b"7")
        assert fetch(f"{s.url}/dl/7")[0] == 404, "a route pinned to storage does not answer on the api"
        assert json.loads(fetch(f"{s.url}/v1")[2]) == {"on": "api"}
    assert [r.server for r in s.requests] == ["storage", "api", "api"]


def refused(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_stops_cleanly_and_closes_its_port() -> None:
    with Store() as s:
        assert s.running
        assert fetch(f"{s.url}/health")[0] == 200
    assert not s.running
    assert refused(s.url)


def test_stop_without_start_closes_the_sockets() -> None:
    s = RecordingServer(listeners=("a", "b"))
    urls = [s.url_of("a"), s.url_of("b")]
    s.stop()
    assert not s.running
    assert all(refused(u) for u in urls)


def test_serving_is_bounded_in_requests() -> None:
    with Store(max_requests=2) as s:
        assert fetch(f"{s.url}/health")[0] == 200
        assert fetch(f"{s.url}/health")[0] == 200
        s._threads["main"].join(timeout=5)
        assert not s.running, "it stopped by itself after max_requests"


def test_serving_is_bounded_in_time() -> None:
    with Store(lifetime_s=0.3) as s:
        s._threads["main"].join(timeout=5)
        assert not s.running
        assert refused(s.url)


# ----------------------------------------------------------------------------- CLI suite helpers


def test_cli_run_error_lines_follow_carriage_returns() -> None:
    r = CliResult([], 1, "", "upload 10%\rupload 50%\rerror: it failed\nnote\nerror: second\n")
    assert r.error_lines == ["error: it failed", "error: second"]


def test_local_env_drops_prefixes_and_bypasses_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "secret")
    monkeypatch.setenv("GH_TOKEN", "secret")
    monkeypatch.setenv("KEEP_ME", "1")
    env = local_env(("HF_", "GH_"), HF_TOKEN="mine")
    assert env["HF_TOKEN"] == "mine" and "GH_TOKEN" not in env and env["KEEP_ME"] == "1"
    assert env["NO_PROXY"] == env["no_proxy"] == "127.0.0.1,localhost"


def test_run_cli_runs_the_real_cli_with_that_env() -> None:
    r = run_cli("publish", "nothing-here", "nowhere", env=local_env())
    assert isinstance(r, CliResult) and r.returncode != 0
    assert r.error_lines, r.stderr


def test_export_models_reports_the_failing_job(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="export bad failed"):
        export_models(tmp_path, f"{tmp_path / 'missing.py'}:nothing", {"bad": ["-f", "pt2"]}, "--vision", "3x8x8")


def test_scan_for_and_folder_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_bytes(b"no secret")
    (tmp_path / "sub" / "b.bin").write_bytes(b"xx s3cr3t xx")
    (tmp_path / "z.txt").write_bytes(b"")
    assert scan_for("s3cr3t", tmp_path) == [str(tmp_path / "sub" / "b.bin")]
    assert scan_for("s3cr3t", tmp_path / "sub", tmp_path / "sub") == [str(tmp_path / "sub" / "b.bin")] * 2
    assert scan_for("absent", tmp_path) == []
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "link").symlink_to(tmp_path / "sub" / "b.bin")
    assert scan_for("s3cr3t", tmp_path / "scan") == [], "links are not followed out of the roots"
    assert folder_files(tmp_path) == {"a.txt": b"no secret", "z.txt": b""}, "plain files directly in the folder"


def test_unused_port_is_refused() -> None:
    assert refused(f"http://127.0.0.1:{unused_port()}")

"""The HTTP API of a real server on 127.0.0.1: a full job, 20 at once, bad requests, auth."""

from __future__ import annotations

import io
import json
import statistics
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from conftest import TOKEN, Server, sha256, store_entries


def _post(client: Any, body: dict[str, Any]) -> Any:
    return client.post("/api/exports", json=body)


def test_full_job_from_post_to_verified_download(server: Server) -> None:
    with server.client() as c:
        t0 = time.monotonic()
        r = _post(c, {"model": "tiny-cnn", "checkpoint": "best", "formats": ["pt2"]})
        assert r.status_code == 202, r.text
        assert time.monotonic() - t0 < 5, "POST must return the id at once, not after the export"
        job_id = r.json()["id"]
        assert r.json()["state"] == "queued"

        # live progress as server-sent events, from queued to the final state
        seen: list[dict[str, Any]] = []
        with c.stream("GET", f"/api/exports/{job_id}/events", timeout=120) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
        phases = [e["phase"] for e in seen if e["type"] == "phase"]
        states = [e["state"] for e in seen if e["type"] == "state"]
        assert states[0] == "queued" and "running" in states and states[-1] == "succeeded", states
        assert "loading" in phases and "exporting pt2" in phases and "validating pt2" in phases, phases

        job = c.get(f"/api/exports/{job_id}").json()
        assert job["state"] == "succeeded" and job["exit_code"] == 0
        pt2 = job["formats"]["pt2"]
        assert pt2["validation"]["status"] == "passed"
        assert pt2["validation"]["max_abs_diff"] is not None and pt2["validation"]["max_abs_diff"] < 1e-4
        assert job["request"]["checkpoint"] == "best"

        # the zip of the format: every file inside matches the sha256 recorded at export time
        z = c.get(pt2["download"])
        assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
        assert z.headers["x-content-sha256"] == sha256(z.content)
        with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
            names = {n.split("/", 1)[1]: zf.read(n) for n in zf.namelist()}
        assert {"model.pt2", "metadata.json", "export.json", "reference.npz"} <= set(names)
        for rel, meta in pt2["files"].items():
            assert sha256(names[rel]) == meta["sha256"], rel
        metadata = json.loads(names["metadata.json"])
        assert metadata["export_format"] == "pt2" and metadata["num_classes"] == 10
        record = json.loads(names["export.json"])
        assert record["source"]["serve_job"] == job_id
        assert record["source"]["checkpoint"]["path"] == "best", "the record names the checkpoint, not a server path"

        # one file, streamed with its sha256
        f = c.get(f"/api/exports/{job_id}/files/model.pt2")
        assert f.status_code == 200
        assert f.headers["x-content-sha256"] == pt2["files"]["model.pt2"]["sha256"] == sha256(f.content)

        # the job and the store's index both list it
        listed = c.get("/api/exports", params={"model": "tiny-cnn"}).json()["exports"]
        assert job_id in [j["id"] for j in listed]
        index = c.get("/api/store", params={"format": "pt2"}).json()["exports"]
        assert pt2["export_id"] in [e["id"] for e in index]


def test_twenty_concurrent_jobs_all_complete(server: Server) -> None:
    latencies: list[float] = []
    with server.client() as c:
        def submit(i: int) -> str:
            body = {"model": "tiny-cnn", "checkpoint": "last" if i % 2 else "best", "formats": ["pt2"],
                    "batch": 1 + i % 3}
            t0 = time.perf_counter()
            r = _post(c, body)
            latencies.append(time.perf_counter() - t0)
            assert r.status_code == 202, r.text
            return str(r.json()["id"])

        t_start = time.monotonic()
        with ThreadPoolExecutor(20) as pool:
            ids = list(pool.map(submit, range(20)))
        assert len(set(ids)) == 20

        done: dict[str, Any] = {}
        deadline = time.monotonic() + 240
        while len(done) < 20 and time.monotonic() < deadline:
            for job_id in ids:
                if job_id in done:
                    continue
                t0 = time.perf_counter()
                job = c.get(f"/api/exports/{job_id}").json()
                latencies.append(time.perf_counter() - t0)
                if job["state"] not in ("queued", "running"):
                    done[job_id] = job
            time.sleep(0.3)
        elapsed = time.monotonic() - t_start
    assert len(done) == 20, f"lost or stuck jobs: {set(ids) - set(done)}"
    assert {j["state"] for j in done.values()} == {"succeeded"}, [(j["id"], j["error"]) for j in done.values()]
    export_ids = {j["formats"]["pt2"]["export_id"] for j in done.values()}
    assert len(export_ids) == 20
    assert export_ids <= set(store_entries(server.root))
    index_ids = {e["id"] for e in json.loads((server.root / "index.json").read_text())["exports"]}
    assert export_ids <= index_ids, "index.json lost entries under concurrent writers"
    print(f"\n20 jobs in {elapsed:.1f}s ({20 / elapsed * 60:.1f} jobs/min); API p50 "
          f"{statistics.median(latencies) * 1000:.1f} ms over {len(latencies)} requests")


def test_bad_requests_are_4xx_json_never_500(server: Server) -> None:
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("POST", "/api/exports", {"json": {"model": "tiny-cnn", "formats": ["nope"]}}, 400, "unknown format"),
        ("POST", "/api/exports", {"json": {"model": "no-such-model", "formats": ["pt2"]}}, 400, "unknown model"),
        ("POST", "/api/exports", {"json": {"model": "../../etc", "formats": ["pt2"]}}, 400, "unknown model"),
        ("POST", "/api/exports", {"json": {"model": "tiny-cnn", "checkpoint": "worst", "formats": ["pt2"]}}, 400,
         "no checkpoint"),
        ("POST", "/api/exports", {"json": {"model": "tiny-cnn", "formats": ["pt2"], "options": {"pt2": {"nope": 1}}}},
         400, "unknown option"),
        ("POST", "/api/exports", {"json": {"model": "tiny-cnn", "formats": ["pt2"], "options": {"onnx": {"opset": 17}}}},
         400, "not one of the requested formats"),
        ("POST", "/api/exports", {"json": {"model": "tiny-cnn", "formats": ["pt2"], "inputs": ["input:0x3:float32"]}},
         400, "positive"),
        ("POST", "/api/exports", {"json": {"model": "tiny-cnn", "formats": ["pt2"], "inputs": ["input:100000x3x999x999"]}},
         400, "more than an example input can hold"),
        ("POST", "/api/exports", {"json": {"model": "tiny-cnn", "formats": []}}, 422, "formats"),
        ("POST", "/api/exports", {"json": {"model": "tiny-cnn", "formats": ["pt2"], "import": "os:system"}}, 422,
         "extra"),
        ("POST", "/api/exports", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 400,
         "not valid JSON"),
        ("GET", "/api/exports/job-nope", {}, 404, "no job"),
        ("GET", "/api/exports/..%2F..%2Fetc%2Fpasswd", {}, 404, ""),
        ("GET", "/api/exports?state=exploded", {}, 422, "state"),
        ("DELETE", "/api/exports/job-nope", {}, 404, "no job"),
    ]
    with server.client() as c:
        for method, url, kwargs, status, text in cases:
            r = c.request(method, url, **kwargs)
            assert r.status_code == status, (method, url, r.status_code, r.text)
            body = r.json()
            assert body["status"] == status and text.lower() in body["error"].lower(), (url, body)

        # path traversal in a file name of a finished job: 404 JSON, never a file outside the export
        job_id = _post(c, {"model": "tiny-cnn", "formats": ["pt2"]}).json()["id"]
        server.wait_job(c, job_id)
        for name in ("../export.json", "..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "reference.npz%00",
                     "../../.serve/jobs.sqlite", "nope.bin"):
            r = c.get(f"/api/exports/{job_id}/files/{name}")
            assert r.status_code == 404, (name, r.status_code, r.text[:200])
            assert "error" in r.json()
        r = c.get(f"/api/exports/{job_id}/download", params={"format": "../../etc"})
        assert r.status_code == 404 and "error" in r.json()


def test_oversized_upload_is_413_and_leaves_nothing(server: Server) -> None:
    with server.client() as c:
        big = b"\0" * (2 * 1024 * 1024)  # the server caps uploads at 1 MB
        r = c.post("/api/exports", data={"request": json.dumps({"model": "tiny-cnn", "formats": ["pt2"]})},
                   files={"checkpoint": ("big.pt", big)})
        assert r.status_code == 413, r.text
        assert "capped" in r.json()["error"]
    assert not list((server.root / ".serve" / "uploads").iterdir())


def test_upload_is_loaded_weights_only(server: Server, tmp_path: Any) -> None:
    # a real state dict of the configured model: exported with those weights
    import importlib.util

    import torch
    spec = importlib.util.spec_from_file_location("tiny_model", server.models / "tiny-cnn" / "model.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    torch.manual_seed(7)
    buf = io.BytesIO()
    torch.save({"state_dict": mod.build().state_dict()}, buf)

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> Any:
            return (open, (str(marker), "w"))

    evil_buf = io.BytesIO()
    torch.save({"weight": Payload()}, evil_buf)  # unpickling it with full pickle would create the marker file
    evil = evil_buf.getvalue()
    with server.client() as c:
        good = c.post("/api/exports", data={"request": json.dumps({"model": "tiny-cnn", "formats": ["pt2"]})},
                      files={"checkpoint": ("mine.pt", buf.getvalue())})
        bad = c.post("/api/exports", data={"request": json.dumps({"model": "tiny-cnn", "formats": ["pt2"]})},
                     files={"checkpoint": ("evil.pt", evil)})
        assert good.status_code == bad.status_code == 202
        g = server.wait_job(c, good.json()["id"])
        b = server.wait_job(c, bad.json()["id"])
    assert g["state"] == "succeeded", g
    assert g["request"]["checkpoint"] == "upload:mine.pt"
    assert b["state"] == "failed" and b["exit_code"] == 1
    assert "checkpoint evil.pt" in b["error"] or "upload:evil.pt" in b["error"], b["error"]
    assert ".serve" not in b["error"], "errors name the upload, never its path on the server"
    assert not marker.exists(), "an uploaded pickle ran code on the server"
    assert not list((server.root / ".serve" / "uploads").iterdir()), "uploads are removed after the job"


def test_formats_and_models_and_openapi(server: Server) -> None:
    with server.client() as c:
        formats = {f["name"]: f for f in c.get("/api/formats").json()["formats"]}
        assert formats["pt2"]["status"] == "available" and formats["pt2"]["can_export"]
        assert all({"name", "type", "default", "help"} <= set(o) for o in formats["pt2"]["options"])
        missing = [f for f in formats.values() if f["status"] == "not installed"]
        assert all(f["fix"] and "pip install" in f["fix"] for f in missing)
        models = {m["name"]: m for m in c.get("/api/models").json()["models"]}
        assert [ck["name"] for ck in models["tiny-cnn"]["checkpoints"]] == ["best", "last"]
        assert "/" not in json.dumps(models["tiny-cnn"]["checkpoints"]), "no server paths in the API"
        spec = c.get("/openapi.json").json()
        assert {"/api/exports", "/api/exports/{job_id}", "/api/exports/{job_id}/events",
                "/api/exports/{job_id}/download", "/api/exports/{job_id}/files/{name}", "/api/formats"} <= set(spec["paths"])
        assert "multipart/form-data" in spec["paths"]["/api/exports"]["post"]["requestBody"]["content"]
        assert c.get("/docs").status_code == 200


def test_no_token_is_401_and_the_token_never_leaks(server: Server) -> None:
    with server.client(token=False) as anon, server.client(token="wrong-token-0123456789") as wrong:
        for client in (anon, wrong):
            for method, url in (("GET", "/api/exports"), ("GET", "/api/formats"), ("POST", "/api/exports"),
                                ("GET", "/api/exports/x/download"), ("DELETE", "/api/exports/x")):
                r = client.request(method, url)
                assert r.status_code == 401, (method, url, r.status_code)
                assert r.json()["status"] == 401 and r.headers["www-authenticate"] == "Bearer"
    with server.client() as c:
        for url in ("/api/health", "/api/exports", "/api/formats", "/api/models", "/openapi.json", "/"):
            assert TOKEN not in c.get(url).text
    assert TOKEN not in server.log_text()


def test_delete_removes_a_finished_job_and_its_files(server: Server) -> None:
    with server.client() as c:
        job_id = _post(c, {"model": "tiny-cnn", "formats": ["pt2"]}).json()["id"]
        job = server.wait_job(c, job_id)
        export_id = job["formats"]["pt2"]["export_id"]
        assert (server.root / export_id / "model.pt2").is_file()
        r = c.delete(f"/api/exports/{job_id}")
        assert r.status_code == 200 and r.json()["state"] == "deleted" and r.json()["removed_exports"] == [export_id]
        assert not (server.root / export_id).exists()
        assert c.get(f"/api/exports/{job_id}").status_code == 404
        assert export_id not in [e["id"] for e in c.get("/api/store").json()["exports"]]

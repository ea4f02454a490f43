"""modelport-publish-hf against a Hub on 127.0.0.1, driven through the real CLI and the real huggingface_hub client.

The fake Hub (fake_hub.py) implements the endpoints HfApi calls and records what arrived; every assertion
is on what the server received or what a user sees (stdout, stderr, exit code, files on disk).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import modelport
import pytest
import yaml
from conftest import SENTINEL
from fake_hub import FakeHub
from modelport.testing import run_cli
from modelport.testing.http import ExportPair, folder_files, scan_for, unused_port

REPO = "alice/cnn"


def publish(env: dict[str, str], hub: FakeHub, *args: str) -> object:
    return run_cli("publish", *args, "--endpoint", hub.url, env=env)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- plugin wiring


def test_formats_lists_hf_publisher_as_available(env: dict[str, str]) -> None:
    r = run_cli("formats", "--json", env=env)
    assert r.returncode == 0, r.stderr
    row = next(p for p in json.loads(r.stdout)["publishers"] if p["name"] == "hf")
    assert row["status"] == "available"
    assert row["plugin"] == "modelport-publish-hf"


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    code = ("import modelport_publish_hf, sys; "
            "print(sorted(m for m in ('torch', 'numpy', 'huggingface_hub', 'httpx', 'httpx2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_publisher_spec_through_the_plugin_manager() -> None:
    spec = modelport.get_plugin_manager().require_publisher("hf")
    assert spec.can_pull
    assert {o.name for o in spec.options} >= {"private", "endpoint", "license", "folder", "retries"}


def test_target_parsing_rejects_bad_targets(env: dict[str, str], exports: ExportPair, hub: FakeHub) -> None:
    for bad in ("hf://alice", "hf://alice/cnn/../x", "hf://alice/cnn@", "hf://al ice/cnn"):
        r = publish(env, hub, str(exports.dynamic), bad)
        assert r.returncode == 3, (bad, r.stderr)
        assert len(r.error_lines) == 1
    assert hub.requests == []


# ----------------------------------------------------------------------------- the round trip


def test_two_exports_in_one_commit_with_model_card_then_pull_and_validate(
        exports: ExportPair, hub: FakeHub, env: dict[str, str], tmp_path: Path) -> None:
    r = publish(env, hub, str(exports.dynamic), str(exports.strict), f"hf://{REPO}", "--private", "--license", "mit")
    assert r.returncode == 0, r.stderr
    assert f"published to {hub.url}/{REPO}" in r.stdout

    repo = hub.repos[REPO]
    assert repo.private
    assert len(repo.commits) == 1, "several exports of one model go in one commit"
    expected = {f"{folder}/{name}" for folder, d in (("pt2-dynamic", exports.dynamic), ("pt2-strict", exports.strict))
                for name in folder_files(d)} | {"README.md"}
    assert set(repo.commits[0]["paths"]) == expected
    for folder, d in (("pt2-dynamic", exports.dynamic), ("pt2-strict", exports.strict)):
        for name, data in folder_files(d).items():
            if name == "export.json":  # published without the machine seal and local paths
                got = json.loads(hub.file(REPO, f"{folder}/{name}"))
                assert "seal" not in got and got["files"] == json.loads(data)["files"]
                continue
            assert hub.file(REPO, f"{folder}/{name}") == data, f"{folder}/{name} arrived changed"
    # the model files went through LFS (preupload said so), bytes checked against their sha256 by the server
    model = (exports.dynamic / "model.pt2").read_bytes()
    assert hub.lfs[sha(model)] == model
    assert [c.path for c in hub.calls("PUT", "/lfs-upload/")].count(f"/lfs-upload/{sha(model)}") == 1

    card = hub.file(REPO, "README.md").decode()
    assert hub.validated_yaml == [card], "huggingface_hub validated the card's YAML before uploading"
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "mit"
    assert "pt2" in front["tags"] and "modelport" in front["tags"]
    assert front["library_name"] == "pytorch"
    assert "pipeline_tag" not in front  # task "other" has no pipeline tag
    md = json.loads((exports.dynamic / "metadata.json").read_text())
    assert "| input | `input` | batch × 3 × 32 × 32 | float32 | 0: batch |" in card
    assert "| output | `output` | batch × 10 | float32 | 0: batch |" in card
    assert f"| pt2 | passed | 0 | 1 | {', '.join(map(str, md['validation']['batch_sizes']))} |" in card
    for folder, d in (("pt2-dynamic", exports.dynamic), ("pt2-strict", exports.strict)):
        for name, data in folder_files(d).items():
            if name == "export.json":  # the card lists the record as uploaded, not the sealed local one
                assert sha(hub.file(REPO, f"{folder}/{name}")) in card and sha(data) not in card
            else:
                assert sha(data) in card, f"card lacks the sha256 of {name}"
    assert "torch.export.load(\"model.pt2\")" in card
    assert f"modelport pull hf://{REPO}/pt2-dynamic" in card
    assert f"modelport pull hf://{REPO}/pt2-strict" in card

    non_storage = [x for x in hub.requests if not x.path.startswith("/lfs-upload/")]
    assert non_storage and all(x.headers.get("authorization") == f"Bearer {SENTINEL}" for x in non_storage)
    assert all("authorization" not in x.headers for x in hub.requests if x.path.startswith("/lfs-upload/"))

    for folder, d in (("pt2-dynamic", exports.dynamic), ("pt2-strict", exports.strict)):
        dest = tmp_path / f"pulled-{folder}"
        p = run_cli("pull", f"hf://{REPO}/{folder}", str(dest), "--endpoint", hub.url, env=env)
        assert p.returncode == 0, p.stderr
        assert "sha256 verified" in p.stdout
        pulled = folder_files(dest)
        assert "seal" not in json.loads(pulled.pop("export.json")), "the published record, not the local one"
        assert pulled == {k: v for k, v in folder_files(d).items() if k != "export.json"}
        v = run_cli("validate", str(dest), env=env)
        assert v.returncode == 0, v.stderr
        assert "pt2: passed" in v.stdout

    both = run_cli("pull", f"hf://{REPO}", str(tmp_path / "which"), "--endpoint", hub.url, env=env)
    assert both.returncode == 1
    assert len(both.error_lines) == 1
    assert f"hf://{REPO}/pt2-dynamic" in both.stderr and f"hf://{REPO}/pt2-strict" in both.stderr
    assert not (tmp_path / "which").exists()

    for out in (r, both):
        assert SENTINEL not in out.stdout + out.stderr
    assert scan_for(SENTINEL, tmp_path, exports.dynamic.parent) == []


def test_republishing_identical_files_makes_no_commit(exports: ExportPair, hub: FakeHub, env: dict[str, str]) -> None:
    args = (str(exports.dynamic), str(exports.strict), f"hf://{REPO}", "--license", "mit")
    assert publish(env, hub, *args).returncode == 0
    puts = len(hub.calls("PUT", "/lfs-upload/"))

    again = publish(env, hub, *args)
    assert again.returncode == 0, again.stderr
    assert "no changes" in again.stdout and "no commit made" in again.stdout
    assert "(unchanged, skipped)" in again.stdout
    assert len(hub.repos[REPO].commits) == 1
    assert len(hub.calls("PUT", "/lfs-upload/")) == puts
    assert hub.calls("POST", "/commit/") and len(hub.calls("POST", "/commit/")) == 1

    # a different license changes only the model card: one more commit holding README.md alone
    relicensed = publish(env, hub, str(exports.dynamic), str(exports.strict), f"hf://{REPO}", "--license", "apache-2.0")
    assert relicensed.returncode == 0, relicensed.stderr
    assert len(hub.repos[REPO].commits) == 2
    assert hub.repos[REPO].commits[-1]["paths"] == ["README.md"]
    assert "license: \"apache-2.0\"" in hub.file(REPO, "README.md").decode()


def test_single_export_to_a_branch_with_hf_endpoint_env(exports: ExportPair, hub: FakeHub, env: dict[str, str],
                                                         tmp_path: Path) -> None:
    env = dict(env, HF_ENDPOINT=hub.url)
    r = run_cli("publish", str(exports.dynamic), "hf://alice/single@dev", env=env)
    assert r.returncode == 0, r.stderr
    repo = hub.repos["alice/single"]
    assert not repo.private
    assert set(repo.branches["main"]) == {".gitattributes"}, "main is untouched"
    assert set(repo.branches["dev"]) >= {"model.pt2", "metadata.json", "export.json", "reference.npz", "README.md"}
    assert "modelport pull hf://alice/single@dev" in repo.branches["dev"]["README.md"].data.decode()

    dest = tmp_path / "pulled"
    p = run_cli("pull", "hf://alice/single@dev", str(dest), env=env)
    assert p.returncode == 0, p.stderr
    pulled = folder_files(dest)
    assert "seal" not in json.loads(pulled.pop("export.json")), "the published record, not the local one"
    local = {k: v for k, v in folder_files(exports.dynamic).items() if k != "export.json"}
    assert pulled == {**local, "README.md": repo.branches["dev"]["README.md"].data}


def test_python_api_publish_returns_commit_and_skips(exports: ExportPair, hub: FakeHub, env: dict[str, str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("HF_TOKEN", "HF_HOME", "HF_HUB_DISABLE_TELEMETRY"):
        monkeypatch.setenv(k, env[k])
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    first = modelport.publish([exports.dynamic], "hf://alice/api", options={"endpoint": hub.url})
    assert first.revision == hub.repos["alice/api"].heads["main"]
    assert "model.pt2" in first.files and "README.md" in first.files
    second = modelport.publish([exports.dynamic], "hf://alice/api", options={"endpoint": hub.url})
    assert second.files == [] and "model.pt2" in second.skipped
    assert "no changes" in (second.message or "")


def test_dry_run_stages_everything_and_touches_nothing(exports: ExportPair, hub: FakeHub, env: dict[str, str],
                                                       tmp_path: Path) -> None:
    del env["HF_TOKEN"]  # a dry run needs no token
    stage = tmp_path / "stage"
    r = publish(env, hub, str(exports.dynamic), str(exports.strict), f"hf://{REPO}", "--dry-run", "--stage-dir", str(stage))
    assert r.returncode == 0, r.stderr
    assert hub.requests == []
    assert "dry run" in r.stdout and "pt2-strict/model.pt2" in r.stdout
    for folder, d in (("pt2-dynamic", exports.dynamic), ("pt2-strict", exports.strict)):
        staged = folder_files(stage / folder)
        published = json.loads(staged.pop("export.json"))  # as it would be uploaded: no seal, no local paths
        local = json.loads((d / "export.json").read_text())
        assert "seal" not in published and "seal" in local and published["files"] == local["files"]
        assert staged == {k: v for k, v in folder_files(d).items() if k != "export.json"}
    card = (stage / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: pytorch\n")


def test_model_card_shows_the_benchmark_from_bench_json(exports: ExportPair, env: dict[str, str], tmp_path: Path) -> None:
    d = tmp_path / "benched"
    shutil.copytree(exports.dynamic, d)
    b = run_cli("bench", str(d), "--batch", "1", "--max-seconds", "0.5", timeout=300, env=env)
    assert b.returncode == 0, b.stderr
    bench = json.loads((d / "bench.json").read_text())
    row = next(x for x in bench["rows"] if x["format"] == "pt2")
    stage = tmp_path / "stage"
    r = run_cli("publish", str(d), "hf://alice/bench", "--dry-run", "--stage-dir", str(stage), env=env)
    assert r.returncode == 0, r.stderr
    card = (stage / "README.md").read_text()
    assert "## Benchmark" in card
    line = next(x for x in card.splitlines() if x.startswith("| pt2 | 1 |"))
    p50_cell = line.split("|")[3].strip()  # | format | batch | p50 ms | ...: three significant digits
    assert float(p50_cell) == pytest.approx(row["p50_ms"], rel=5e-3), (p50_cell, row["p50_ms"])
    assert (stage / "bench.json").read_bytes() == (d / "bench.json").read_bytes()


def test_changed_export_is_refused(exports: ExportPair, hub: FakeHub, env: dict[str, str], tmp_path: Path) -> None:
    d = tmp_path / "edited"
    shutil.copytree(exports.dynamic, d)
    with open(d / "model.pt2", "ab") as f:
        f.write(b"x")
    r = publish(env, hub, str(d), f"hf://{REPO}")
    assert r.returncode == 3  # the exit code every reader of an export folder gives for changed files
    assert "files changed since export" in r.error_lines[0] and "model.pt2" in r.error_lines[0]
    assert hub.requests == []


# ----------------------------------------------------------------------------- failures


def test_missing_token_is_one_line(exports: ExportPair, hub: FakeHub, env: dict[str, str]) -> None:
    del env["HF_TOKEN"]
    r = publish(env, hub, str(exports.dynamic), f"hf://{REPO}")
    assert r.returncode == 1
    assert len(r.error_lines) == 1 and "HF_TOKEN" in r.error_lines[0] and "hf auth login" in r.error_lines[0]
    assert hub.requests == []


def test_refused_token_401_never_printed(exports: ExportPair, hub: FakeHub, env: dict[str, str], tmp_path: Path) -> None:
    hub.token = "hf_the_right_one_is_different"
    r = publish(env, hub, str(exports.dynamic), f"hf://{REPO}")
    assert r.returncode == 1
    assert len(r.error_lines) == 1
    assert "HTTP 401" in r.error_lines[0] and "HF_TOKEN" in r.error_lines[0]
    assert "Traceback" not in r.stderr
    assert hub.requests[0].headers["authorization"] == f"Bearer {SENTINEL}", "the token was sent..."
    assert SENTINEL not in r.stdout + r.stderr, "...but never printed"
    assert scan_for(SENTINEL, tmp_path) == []


def test_pull_from_a_missing_repo_is_404(hub: FakeHub, env: dict[str, str], tmp_path: Path) -> None:
    r = run_cli("pull", "hf://alice/nothing", str(tmp_path / "dest"), "--endpoint", hub.url, env=env)
    assert r.returncode == 1
    assert len(r.error_lines) == 1 and "no such repository alice/nothing" in r.error_lines[0]
    assert "HTTP 404" in r.error_lines[0]
    assert not (tmp_path / "dest").exists()


def test_429_then_200_waits_for_retry_after(exports: ExportPair, hub: FakeHub, env: dict[str, str]) -> None:
    hub.add_fault("POST", r"/commit/", status=429, headers={"Retry-After": "2"}, body=b'{"error": "slow down"}')
    r = publish(env, hub, str(exports.dynamic), f"hf://{REPO}")
    assert r.returncode == 0, r.stderr
    tries = [x for x in hub.requests if x.method == "POST" and "/commit/" in x.path]
    assert [t.fault for t in tries] == ["429", None]
    assert tries[1].at - tries[0].at >= 1.9, "the retry waited for Retry-After"
    assert "HTTP 429" in r.stderr and "retrying in 2 s" in r.stderr
    assert len(hub.repos[REPO].commits) == 1


def test_429_that_does_not_stop_fails_clearly(exports: ExportPair, hub: FakeHub, env: dict[str, str]) -> None:
    hub.add_fault("POST", r"/commit/", status=429, headers={"Retry-After": "1"}, times=5)
    r = publish(env, hub, str(exports.dynamic), f"hf://{REPO}", "--retries", "1")
    assert r.returncode == 1
    assert len(r.error_lines) == 1
    line = r.error_lines[0]
    assert "rate limited" in line and "HTTP 429" in line and "nothing was committed" in line and "re-run" in line
    assert hub.repos[REPO].commits == []


def test_dropped_connection_on_commit_is_retried(exports: ExportPair, hub: FakeHub, env: dict[str, str]) -> None:
    hub.add_fault("POST", r"/commit/", drop=True)
    r = publish(env, hub, str(exports.dynamic), f"hf://{REPO}")
    assert r.returncode == 0, r.stderr
    assert "connection failed" in r.stderr
    assert len(hub.repos[REPO].commits) == 1


def test_failure_half_way_reports_what_was_uploaded_and_rerun_completes(
        exports: ExportPair, hub: FakeHub, env: dict[str, str]) -> None:
    strict_model = sha((exports.strict / "model.pt2").read_bytes())
    hub.add_fault("PUT", f"/lfs-upload/{strict_model}", status=400, body=b"<Error>RequestTimeTooSkewed</Error>")
    r = publish(env, hub, str(exports.dynamic), str(exports.strict), f"hf://{REPO}")
    assert r.returncode == 1
    assert len(r.error_lines) == 1
    line = r.error_lines[0]
    assert "upload pt2-strict/model.pt2" in line and "HTTP 400" in line
    uploaded, _, rest = line.partition("not uploaded:")
    assert "Done before the failure" in uploaded
    assert "pt2-dynamic/model.pt2" in uploaded and "pt2-dynamic/reference.npz" in uploaded
    assert "pt2-strict/model.pt2" in rest and "README.md" in rest
    assert "nothing was committed" in line and "Re-run" in line
    assert hub.repos[REPO].commits == []
    stored_before = set(hub.lfs)

    again = publish(env, hub, str(exports.dynamic), str(exports.strict), f"hf://{REPO}")
    assert again.returncode == 0, again.stderr
    assert len(hub.repos[REPO].commits) == 1
    sent_again = [c.path.rsplit("/", 1)[1] for c in hub.calls("PUT", "/lfs-upload/")]
    assert all(sent_again.count(o) == 1 for o in stored_before), "files already uploaded were not sent again"
    assert hub.file(REPO, "pt2-strict/model.pt2") == (exports.strict / "model.pt2").read_bytes()


def test_connection_refused_is_one_line(exports: ExportPair, env: dict[str, str]) -> None:
    port = unused_port()
    r = run_cli("publish", str(exports.dynamic), f"hf://{REPO}", "--endpoint", f"http://127.0.0.1:{port}",
                "--retries", "0", env=env)
    assert r.returncode == 1
    assert len(r.error_lines) == 1 and "refused the connection" in r.error_lines[0]


def test_pull_refuses_names_outside_the_folder(exports: ExportPair, hub: FakeHub, env: dict[str, str],
                                               tmp_path: Path) -> None:
    md = json.loads((exports.dynamic / "metadata.json").read_text())
    md["files"]["../evil.py"] = {"bytes": 5, "sha256": sha(b"boom\n")}
    hub.seed("mallory/evil", {"metadata.json": json.dumps(md).encode(), "model.pt2": (exports.dynamic / "model.pt2").read_bytes()})
    dest = tmp_path / "inner" / "dest"
    dest.parent.mkdir()
    r = run_cli("pull", "hf://mallory/evil", str(dest), "--endpoint", hub.url, env=env)
    assert r.returncode == 1
    assert "refusing" in r.error_lines[0] and "../evil.py" in r.error_lines[0]
    assert not dest.exists() and not (tmp_path / "inner" / "evil.py").exists()
    assert not any(x.path.endswith("evil.py") for x in hub.requests)


def test_pull_of_tampered_files_is_refused_and_deleted(exports: ExportPair, hub: FakeHub, env: dict[str, str],
                                                       tmp_path: Path) -> None:
    files = folder_files(exports.dynamic)
    files["model.pt2"] = files["model.pt2"][:-1] + bytes([files["model.pt2"][-1] ^ 1])
    hub.seed("mallory/tampered", files)
    dest = tmp_path / "dest"
    r = run_cli("pull", "hf://mallory/tampered", str(dest), "--endpoint", hub.url, env=env)
    assert r.returncode == 1
    assert "sha256 does not match" in r.error_lines[0] and "model.pt2" in r.error_lines[0]
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["hf-home"], "no download left behind"


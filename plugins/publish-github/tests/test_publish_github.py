"""modelport-publish-github against a GitHub REST API on 127.0.0.1, through the real CLI and the plugin's httpx client.

The fake (fake_github.py) implements the release endpoints and records what arrived; assertions are on what
the server received and what a user sees (stdout, stderr, exit codes, files).
"""

from __future__ import annotations

import hashlib
import io
import json
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import modelport
import pytest
from conftest import SENTINEL
from fake_github import FakeGitHub
from modelport.testing import run_cli
from modelport.testing.http import ExportPair, folder_files, scan_for, unused_port

REPO = "alice/models"


def publish(env: dict[str, str], gh: FakeGitHub, *args: str) -> object:
    return run_cli("publish", *args, "--api-url", gh.url, env=env)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def uploads(gh: FakeGitHub) -> list[str]:
    return [r.query["name"][0] for r in gh.calls("POST", r"^/uploads/")]


# ----------------------------------------------------------------------------- plugin wiring


def test_formats_lists_github_publisher_as_available(env: dict[str, str]) -> None:
    r = run_cli("formats", "--json", env=env)
    assert r.returncode == 0, r.stderr
    row = next(p for p in json.loads(r.stdout)["publishers"] if p["name"] == "github")
    assert row["status"] == "available"
    assert row["plugin"] == "modelport-publish-github"


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    code = ("import modelport_publish_github, sys; "
            "print(sorted(m for m in ('torch', 'numpy', 'httpx', 'zipfile') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_publisher_spec_through_the_plugin_manager() -> None:
    spec = modelport.get_plugin_manager().require_publisher("github")
    assert spec.can_pull
    assert {o.name for o in spec.options} >= {"draft", "prerelease", "api_url", "license", "folder", "retries"}


def test_target_parsing_rejects_bad_targets(env: dict[str, str], exports: ExportPair, gh: FakeGitHub) -> None:
    for bad in ("github://alice/models", "github://alice@v1", "github://alice/models/x@v1", "github://alice/models@../v1"):
        r = publish(env, gh, str(exports.dynamic), bad)
        assert r.returncode == 3, (bad, r.stderr)
        assert len(r.error_lines) == 1
    assert gh.requests == []


# ----------------------------------------------------------------------------- the round trip


def test_two_exports_as_release_assets_with_notes_then_pull_and_validate(
        exports: ExportPair, gh: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    r = publish(env, gh, str(exports.dynamic), str(exports.strict), f"github://{REPO}@v1", "--prerelease", "--license", "mit")
    assert r.returncode == 0, r.stderr
    assert "published to https://github.example/alice/models/releases/tag/v1 (v1)" in r.stdout

    rel = gh.release(REPO, "v1")
    assert rel["prerelease"] and not rel["draft"]
    assert rel["name"] == "small_cnn v1"
    got = gh.asset_bytes(REPO, "v1")
    for leaf, d in (("pt2-dynamic", exports.dynamic), ("pt2-strict", exports.strict)):
        for name in ("model.pt2", "metadata.json"):
            assert got[f"{leaf}.{name}"] == (d / name).read_bytes()
        local = json.loads((d / "export.json").read_text())
        published = json.loads(got[f"{leaf}.export.json"])
        assert Path(local["source"]["reference"].rsplit(":", 1)[0]).is_absolute()
        assert not Path(published["source"]["reference"].rsplit(":", 1)[0]).is_absolute(), "no local paths published"
        assert "seal" not in published and published["files"] == local["files"]
        with zipfile.ZipFile(io.BytesIO(got[f"small_cnn-{leaf}.zip"])) as zf:
            inside = {n: zf.read(n) for n in zf.namelist()}
        assert inside.pop(f"small_cnn-{leaf}/export.json") == got[f"{leaf}.export.json"]
        expected = {f"small_cnn-{leaf}/{k}": v for k, v in folder_files(d).items() if k != "export.json"}
        assert inside == expected
    assert len(got) == 8
    up = gh.calls("POST", r"^/uploads/")
    assert all(u.headers.get("content-length") == str(len(u.body)) for u in up), "uploads carry Content-Length"
    assert {u.headers["content-type"] for u in up} == {"application/octet-stream", "application/json", "application/zip"}
    assert all(x.headers.get("authorization") == f"Bearer {SENTINEL}" for x in gh.requests if x.server == "api")

    notes = rel["body"]
    assert not notes.startswith("---"), "release notes carry no YAML front matter"
    assert "# small_cnn" in notes and "License: mit." in notes
    assert "| input | `input` | batch × 3 × 32 × 32 | float32 | 0: batch |" in notes
    assert "| pt2 | passed | 0 | 1 |" in notes
    for d, leaf in ((exports.dynamic, "pt2-dynamic"), (exports.strict, "pt2-strict")):
        for name, data in folder_files(d).items():
            if name == "export.json":  # the notes list the record as published, not the sealed local one
                assert sha(got[f"{leaf}.export.json"]) in notes and sha(data) not in notes
            else:
                assert sha(data) in notes, f"notes lack the sha256 of {name}"
    assert f"modelport pull github://{REPO}@v1 --folder pt2-dynamic" in notes
    assert 'torch.export.load("model.pt2")' in notes

    for leaf, d in (("pt2-dynamic", exports.dynamic), ("pt2-strict", exports.strict)):
        dest = tmp_path / f"pulled-{leaf}"
        p = run_cli("pull", f"github://{REPO}@v1", str(dest), "--folder", leaf, "--api-url", gh.url, env=env)
        assert p.returncode == 0, p.stderr
        pulled = folder_files(dest)
        assert pulled.pop("export.json") == got[f"{leaf}.export.json"], "the published record, without local paths"
        assert pulled == {k: v for k, v in folder_files(d).items() if k != "export.json"}
        v = run_cli("validate", str(dest), env=env)
        assert v.returncode == 0, v.stderr
        assert "pt2: passed" in v.stdout
    storage = [x for x in gh.requests if x.server == "storage"]
    assert len(storage) == 2 and all("authorization" not in x.headers for x in storage), "the token never goes to storage"

    which = run_cli("pull", f"github://{REPO}@v1", str(tmp_path / "which"), "--api-url", gh.url, env=env)
    assert which.returncode == 1 and len(which.error_lines) == 1
    assert "--folder pt2-dynamic" in which.error_lines[0] and "--folder pt2-strict" in which.error_lines[0]
    assert not (tmp_path / "which").exists()

    for out in (r, which):
        assert SENTINEL not in out.stdout + out.stderr
    assert scan_for(SENTINEL, tmp_path, exports.dynamic.parent) == []


def test_republishing_identical_assets_uploads_nothing(exports: ExportPair, gh: FakeGitHub, env: dict[str, str]) -> None:
    args = (str(exports.dynamic), str(exports.strict), f"github://{REPO}@v1")
    assert publish(env, gh, *args).returncode == 0
    n = len(uploads(gh))
    again = publish(env, gh, *args)
    assert again.returncode == 0, again.stderr
    assert "no changes" in again.stdout and "(unchanged, skipped)" in again.stdout
    assert len(uploads(gh)) == n
    assert len(gh.repos[REPO]) == 1

    # new notes only: the release body is updated, no asset is sent
    relicensed = publish(env, gh, *args, "--license", "apache-2.0")
    assert relicensed.returncode == 0, relicensed.stderr
    assert "release notes updated" in relicensed.stdout, relicensed.stdout
    assert len(uploads(gh)) == n
    assert "License: apache-2.0." in gh.release(REPO, "v1")["body"]


def test_changed_asset_is_an_error_unless_force(exports: ExportPair, gh: FakeGitHub, env: dict[str, str]) -> None:
    assert publish(env, gh, str(exports.dynamic), f"github://{REPO}@v2").returncode == 0
    assert set(gh.asset_bytes(REPO, "v2")) == {"model.pt2", "metadata.json", "export.json", "small_cnn-pt2.zip"}
    n = len(uploads(gh))

    clash = publish(env, gh, str(exports.strict), f"github://{REPO}@v2")
    assert clash.returncode == 1
    assert len(clash.error_lines) == 1
    line = clash.error_lines[0]
    assert "different content" in line and "model.pt2" in line and "--force" in line
    assert len(uploads(gh)) == n and gh.calls("DELETE", "/assets/") == []

    forced = run_cli("publish", str(exports.strict), f"github://{REPO}@v2", "--force", "--api-url", gh.url, env=env)
    assert forced.returncode == 0, forced.stderr
    assert len(gh.calls("DELETE", "/assets/")) == 4
    got = gh.asset_bytes(REPO, "v2")
    assert got["model.pt2"] == (exports.strict / "model.pt2").read_bytes()


def test_draft_release_is_found_and_reused(exports: ExportPair, gh: FakeGitHub, env: dict[str, str]) -> None:
    r = publish(env, gh, str(exports.dynamic), f"github://{REPO}@v3", "--draft")
    assert r.returncode == 0, r.stderr
    assert gh.release(REPO, "v3")["draft"] is True
    assert "draft release" in r.stdout
    again = publish(env, gh, str(exports.dynamic), f"github://{REPO}@v3")
    assert again.returncode == 0, again.stderr
    assert "no changes" in again.stdout
    assert len(gh.repos[REPO]) == 1, "the draft was reused, not duplicated"
    assert gh.calls("GET", rf"^/repos/{REPO}/releases$"), "drafts are looked up in the release list"
    published = publish(env, gh, str(exports.dynamic), f"github://{REPO}@v3", "--draft=false")
    assert published.returncode == 0, published.stderr
    assert gh.release(REPO, "v3")["draft"] is False


def test_python_api_and_pagination_and_no_digest(exports: ExportPair, gh: FakeGitHub, env: dict[str, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # GitHub Enterprise without asset digests, listing two assets per page
    gh.digests = False
    gh.page_size = 2
    monkeypatch.setenv("GITHUB_TOKEN", SENTINEL)
    first = modelport.publish([exports.dynamic, exports.strict], f"github://{REPO}@v4", options={"api_url": gh.url})
    assert first.revision == "v4" and len(first.files) == 8
    second = modelport.publish([exports.dynamic, exports.strict], f"github://{REPO}@v4", options={"api_url": gh.url})
    assert second.files == [] and len(second.skipped) == 8
    pages = [x for x in gh.requests if x.path.endswith("/assets") and x.method == "GET"]
    assert len(pages) == 4, "all pages of the asset list were read"
    assert len([x for x in gh.requests if x.server == "storage"]) == 8, "without digests, assets are hashed by download"


def test_dry_run_stages_assets_and_notes_and_touches_nothing(exports: ExportPair, gh: FakeGitHub, env: dict[str, str],
                                                             tmp_path: Path) -> None:
    del env["GITHUB_TOKEN"]
    stage = tmp_path / "stage"
    r = publish(env, gh, str(exports.dynamic), f"github://{REPO}@v1", "--dry-run", "--stage-dir", str(stage))
    assert r.returncode == 0, r.stderr
    assert gh.requests == []
    assert sorted(p.name for p in stage.iterdir()) == ["RELEASE_NOTES.md", "export.json", "metadata.json", "model.pt2",
                                                       "small_cnn-pt2.zip"]
    assert (stage / "model.pt2").read_bytes() == (exports.dynamic / "model.pt2").read_bytes()
    notes = (stage / "RELEASE_NOTES.md").read_text()
    assert "## Files (sha256)" in notes
    # the notes list the export.json that was published (no local paths, no seal), not the local sealed one
    published, local = stage / "export.json", exports.dynamic / "export.json"
    assert published.read_bytes() != local.read_bytes()
    sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert f"| `export.json` | {published.stat().st_size} | `{sha(published)}` |" in notes
    assert sha(local) not in notes


# ----------------------------------------------------------------------------- failures


def test_missing_token_is_one_line(exports: ExportPair, gh: FakeGitHub, env: dict[str, str]) -> None:
    del env["GITHUB_TOKEN"]
    r = publish(env, gh, str(exports.dynamic), f"github://{REPO}@v1")
    assert r.returncode == 1 and len(r.error_lines) == 1 and "GITHUB_TOKEN" in r.error_lines[0]
    assert gh.requests == []


def test_refused_token_401_never_printed(exports: ExportPair, gh: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    gh.token = "ghp_the_right_one_is_different"
    r = publish(env, gh, str(exports.dynamic), f"github://{REPO}@v1")
    assert r.returncode == 1 and len(r.error_lines) == 1
    assert "HTTP 401" in r.error_lines[0] and "Bad credentials" in r.error_lines[0] and "GITHUB_TOKEN" in r.error_lines[0]
    assert "Traceback" not in r.stderr
    assert gh.requests[0].headers["authorization"] == f"Bearer {SENTINEL}"
    assert SENTINEL not in r.stdout + r.stderr
    assert scan_for(SENTINEL, tmp_path) == []


def test_missing_repo_is_404(exports: ExportPair, gh: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    r = publish(env, gh, str(exports.dynamic), "github://alice/nothing@v1")
    assert r.returncode == 1 and len(r.error_lines) == 1
    assert "no such repository alice/nothing" in r.error_lines[0] and "HTTP 404" in r.error_lines[0]
    p = run_cli("pull", f"github://{REPO}@nope", str(tmp_path / "d"), "--api-url", gh.url, env=env)
    assert p.returncode == 1 and "has no release nope" in p.error_lines[0]
    assert not (tmp_path / "d").exists()


def test_429_then_201_waits_for_retry_after(exports: ExportPair, gh: FakeGitHub, env: dict[str, str]) -> None:
    gh.add_fault("POST", r"^/uploads/", status=429, headers={"Retry-After": "2"}, body=b'{"message": "slow down"}')
    gh.add_fault("GET", r"/releases/tags/", status=403, headers={"Retry-After": "1", "x-ratelimit-remaining": "0"},
                 body=b'{"message": "API rate limit exceeded"}')
    r = publish(env, gh, str(exports.dynamic), f"github://{REPO}@v1")
    assert r.returncode == 0, r.stderr
    tries = [x for x in gh.requests if x.path.startswith("/uploads/")]
    assert [t.fault for t in tries[:2]] == ["429", None]
    assert tries[1].at - tries[0].at >= 1.9
    assert "HTTP 429 rate limited" in r.stderr and "retrying in 2 s" in r.stderr
    assert "HTTP 403 rate limited" in r.stderr
    assert len(gh.asset_bytes(REPO, "v1")) == 4


def test_429_that_does_not_stop_fails_clearly(exports: ExportPair, gh: FakeGitHub, env: dict[str, str]) -> None:
    gh.add_fault("POST", r"^/repos/.*/releases$", status=429, headers={"Retry-After": "1"}, times=5)
    r = publish(env, gh, str(exports.dynamic), f"github://{REPO}@v1", "--retries", "1")
    assert r.returncode == 1 and len(r.error_lines) == 1
    assert "rate limited by GitHub (HTTP 429)" in r.error_lines[0] and "try again later" in r.error_lines[0]
    assert gh.repos[REPO] == []


def test_failure_half_way_reports_and_rerun_completes(exports: ExportPair, gh: FakeGitHub, env: dict[str, str]) -> None:
    # two uploads go through, then every connection to the uploads endpoint is dropped
    gh.add_fault("POST", r"^/uploads/", drop=True, times=99, after=2)
    r = publish(env, gh, str(exports.dynamic), str(exports.strict), f"github://{REPO}@v1", "--retries", "1")
    assert r.returncode == 1 and len(r.error_lines) == 1
    line = r.error_lines[0]
    assert "dropped the connection" in line
    done, _, rest = line.partition("not uploaded:")
    assert "pt2-dynamic.model.pt2, pt2-dynamic.metadata.json" in done
    assert "small_cnn-pt2-strict.zip" in rest and "Re-run" in line
    before = uploads(gh)
    assert len(before) == 2

    gh.faults.clear()
    again = publish(env, gh, str(exports.dynamic), str(exports.strict), f"github://{REPO}@v1")
    assert again.returncode == 0, again.stderr
    after = uploads(gh)[len(before):]
    assert not set(after) & set(before), "assets already uploaded were skipped"
    assert len(gh.asset_bytes(REPO, "v1")) == 8


def test_connection_refused_is_one_line(exports: ExportPair, env: dict[str, str]) -> None:
    port = unused_port()
    r = run_cli("publish", str(exports.dynamic), f"github://{REPO}@v1", "--api-url", f"http://127.0.0.1:{port}",
                "--retries", "0", env=env)
    assert r.returncode == 1 and len(r.error_lines) == 1 and "refused the connection" in r.error_lines[0]


def _zip(members: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


@pytest.mark.parametrize("case", ["dotdot", "absolute", "symlink"])
def test_pull_refuses_zip_entries_that_leave_the_folder(case: str, exports: ExportPair, gh: FakeGitHub,
                                                        env: dict[str, str], tmp_path: Path) -> None:
    files = {f"m-pt2/{k}": v for k, v in folder_files(exports.dynamic).items()}
    if case == "dotdot":
        files["m-pt2/../../evil.py"] = b"print('boom')\n"
    elif case == "absolute":
        files["m-pt2//tmp/evil.py"] = b"print('boom')\n"
    gh.add_release(REPO, "bad", {"m-pt2.zip": _zip(files, "m-pt2/link" if case == "symlink" else None)})
    dest = tmp_path / "inner" / "dest"
    dest.parent.mkdir()
    r = run_cli("pull", f"github://{REPO}@bad", str(dest), "--api-url", gh.url, env=env)
    assert r.returncode == 1 and len(r.error_lines) == 1 and "refusing" in r.error_lines[0]
    assert not dest.exists()
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "inner" / "evil.py").exists()
    assert [p.name for p in (tmp_path / "inner").iterdir()] == [], "nothing left behind"


def test_pull_of_tampered_files_is_refused(exports: ExportPair, gh: FakeGitHub, env: dict[str, str], tmp_path: Path) -> None:
    files = {f"m-pt2/{k}": v for k, v in folder_files(exports.dynamic).items()}
    files["m-pt2/model.pt2"] = files["m-pt2/model.pt2"] + b"\0"
    gh.add_release(REPO, "tampered", {"m-pt2.zip": _zip(files)})
    r = run_cli("pull", f"github://{REPO}@tampered", str(tmp_path / "d"), "--api-url", gh.url, env=env)
    assert r.returncode == 1 and "sha256 does not match" in r.error_lines[0]
    assert not (tmp_path / "d").exists()


def test_large_uploads_report_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from modelport_publish_github import releases

    big = tmp_path / "big.bin"
    big.write_bytes(b"\1" * (5 * releases.CHUNK))
    monkeypatch.setattr(releases, "PROGRESS_MIN_BYTES", 1)
    data = b"".join(releases._chunks(big, "big.bin", big.stat().st_size))
    assert data == big.read_bytes()
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"  uploading big.bin: {p}% of 5.0 MiB" for p in (20, 40, 60, 80, 100)]


def test_export_zip_is_byte_identical_when_rebuilt(exports: ExportPair, tmp_path: Path) -> None:
    from modelport.publishers.publishing import collect_bundles
    from modelport_publish_github.releases import zip_export

    b = collect_bundles([exports.dynamic])[0]
    one = zip_export(b, tmp_path / "a.zip", "m").read_bytes()
    (tmp_path / "later").mkdir()
    two = zip_export(collect_bundles([exports.dynamic])[0], tmp_path / "later" / "a.zip", "m").read_bytes()
    assert one == two


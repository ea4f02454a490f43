"""The export page in a real browser: Debian's Chromium, driven by Playwright's Python API."""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from pathlib import Path

import pytest
from conftest import Server

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "serve-page.png"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)")


def test_export_page_end_to_end(server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900}, accept_downloads=True)
            page.goto(server.url + "/")
            # the server needs a token: the page asks for it
            page.wait_for_selector("#auth:not([hidden])")
            page.fill("#token", server.token or "")
            page.click("#auth-form button")
            page.wait_for_selector("#formats input[value=pt2]")

            # formats with their availability: pt2 can be picked; a missing plugin is shown, disabled, with why
            assert page.is_enabled("#formats input[value=pt2]")
            onnx = page.locator("#formats input[value=onnx]")
            if onnx.count() and not onnx.is_enabled():
                assert "pip install" in page.inner_text("#formats")
            for box in page.locator("#formats input:checked").all():
                box.uncheck()
            page.check("#formats input[value=pt2]")
            page.select_option("#model", "tiny-cnn")
            assert page.input_value("#resolution") == "32x32"
            page.select_option("#checkpoint", "best")
            page.fill("#resolution", "48x48")
            page.click("#export-button")

            page.wait_for_selector("#job-state.succeeded", timeout=120_000)
            row = page.locator("#job-formats tr[data-format=pt2]")
            assert row.locator(".validation").inner_text() == "passed"
            max_diff = float(row.locator(".maxdiff").inner_text())
            assert 0 <= max_diff < 1e-4
            job_id = page.inner_text("#job-id")

            with page.expect_download() as info:
                row.locator("button[data-download=pt2]").click()
            path = info.value.path()
            with zipfile.ZipFile(io.BytesIO(Path(path).read_bytes())) as zf:
                names = {n.split("/", 1)[1] for n in zf.namelist()}
            assert {"model.pt2", "metadata.json", "export.json"} <= names

            # the list of past exports shows the job
            page.wait_for_selector(f"#past tr[data-job='{job_id}']")
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            if os.environ.get("MODELPORT_UPDATE_SCREENSHOT") == "1":
                shutil.copy(tmp_path / "page.png", SCREENSHOT)
        finally:
            browser.close()

    with server.client() as c:
        job = c.get(f"/api/exports/{job_id}").json()
    assert job["request"]["inputs"] == ["input:1x3x48x48:float32"], "the resolution picked on the page was used"
    assert job["request"]["checkpoint"] == "best"

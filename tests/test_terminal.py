"""What a user sees in a real 80-column terminal: the commands of the first hour run under a pseudo-terminal and
their output is replayed through a terminal emulator (pyte), so spinners, carriage returns and cursor moves end
up as the lines on the screen. Every line must be modelport's own (no converter chatter, progress bars or
warnings) and no table may wrap a row."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

pyte = pytest.importorskip("pyte", reason="pyte (tests/requirements.txt) replays the terminal")

ROOT = Path(__file__).resolve().parents[1]
CNN = "examples/models.py:small_cnn"
COLUMNS = 80
# Third-party output that has reached users' terminals before: any of these on screen is a regression.
FOREIGN = re.compile(r"warn|traceback|torchao|pytree|cpuinfo|it/s\]|\d+%\||converting|running .* pass|^\s*[IWE]\d{4} "
                     r"|userwarning|deprecat|tensorflow|absl|xnnpack|\bINFO\b|\bDEBUG\b|onnxscript|optimiz", re.I)


def run_in_terminal(args: list[str], cwd: Path, *, columns: int = COLUMNS, timeout: float = 600) -> tuple[int, list[str]]:
    """Run ``modelport ARGS`` attached to a pseudo-terminal of ``columns`` columns; return its exit code and the
    screen's lines (trailing blanks dropped)."""
    import fcntl
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "TERM")}
    env.update(TERM="xterm-256color", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "modelport", *args], cwd=cwd, env=env, stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            pytest.fail(f"modelport {' '.join(args)} did not finish in {timeout} s")
        code = proc.wait(timeout=60)
    finally:
        os.close(master)
    screen = pyte.HistoryScreen(columns, 50, history=5000)
    stream = pyte.ByteStream(screen)
    stream.feed(b"".join(chunks).replace(b"\n", b"\r\n"))
    lines = [_line(row, columns) for row in screen.history.top] + list(screen.display)
    while lines and not lines[-1].strip():
        lines.pop()
    return code, [ln.rstrip() for ln in lines]


def _line(row: object, columns: int) -> str:
    return "".join(row[x].data for x in range(columns))  # type: ignore[index]


def foreign_lines(lines: list[str]) -> list[str]:
    return [ln for ln in lines if FOREIGN.search(ln)]


def table_rows(lines: list[str], names: list[str]) -> dict[str, list[str]]:
    """For each name, the screen lines whose first word is that name (a wrapped row would show up twice or not
    start with the name)."""
    return {n: [ln for ln in lines if ln.split(" ", 1)[0] == n] for n in names}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("terminal")
    (folder / "examples").symlink_to(ROOT / "examples")
    return folder


@pytest.fixture(scope="module")
def statuses() -> dict[str, dict[str, object]]:
    r = subprocess.run([sys.executable, "-m", "modelport", "formats", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return {f["name"]: f for f in json.loads(r.stdout)["formats"]}


@pytest.fixture(scope="module")
def export_all(work: Path) -> tuple[int, list[str]]:
    return run_in_terminal(["export", CNN, "--vision", "3x32x32", "--dynamic-batch", "-f", "all", "--task",
                            "classification", "--output-dir", "exports/demo", "--force"], work)


def test_formats_table_fits_80_columns_and_escapes_fixes(work: Path, statuses: dict[str, dict[str, object]]) -> None:
    code, lines = run_in_terminal(["formats"], work)
    assert code == 0, "\n".join(lines)
    assert foreign_lines(lines) == []
    rows = table_rows(lines, sorted(statuses))
    for name, found in rows.items():
        assert len(found) == 1, (name, lines)
    # a fix with an extra keeps its brackets (rich markup used to eat "[runtime]")
    trt = statuses.get("tensorrt")
    if trt and trt.get("fix") and "[runtime]" in str(trt["fix"]):
        # the install path is absolute outside the checkout, so the fix may wrap: look at the joined text
        assert "[runtime]" in "".join(ln.strip() for ln in lines), lines
    names = [ln.split(" ", 1)[0] for ln in lines if ln.split(" ", 1)[0] in statuses]
    assert names == sorted(names), "formats are listed in one stable (alphabetical) order"


def test_plugins_table_renders(work: Path) -> None:
    code, lines = run_in_terminal(["plugins"], work)
    assert code == 0, "\n".join(lines)
    assert foreign_lines(lines) == []
    assert any(ln.startswith("pt2 ") and "builtin" in ln for ln in lines), lines
    assert any(ln.startswith("onnx ") and "modelport-export-onnx" in ln for ln in lines), lines


def test_export_all_shows_only_our_lines_at_80_columns(export_all: tuple[int, list[str]],
                                                       statuses: dict[str, dict[str, object]]) -> None:
    code, lines = export_all
    assert code == 0, "\n".join(lines)
    assert foreign_lines(lines) == [], "\n".join(lines)
    exported = sorted(n for n, s in statuses.items() if s["can_export"])
    rows = table_rows(lines, exported)
    for name, found in rows.items():
        assert len(found) == 1, (name, "\n".join(lines))
    # the tolerance rule is the same for every fp32 row: one line above the table, never a wrapped column
    rule = [ln for ln in lines if ln.startswith("pass rule for every output: ")]
    assert len(rule) == 1 and rule[0].endswith("cosine >= 0.9999"), "\n".join(lines)
    assert any(ln.startswith("export success ✓") and "exports/demo" in ln for ln in lines), "\n".join(lines)
    assert "  modelport validate exports/demo/" in "\n".join(lines)
    assert not any(str(ROOT) in ln or "/tmp/" in ln for ln in lines), "paths are relative to the current folder"


def test_bench_table_fits_80_columns(work: Path, export_all: tuple[int, list[str]]) -> None:
    assert export_all[0] == 0
    # the quick runtimes, and Core ML when installed (a row with a reason on Linux): enough for the layout
    dirs = [f"exports/demo/{d.name}" for d in sorted((work / "exports" / "demo").iterdir())
            if (d / "export.json").is_file() and d.name in ("coreml", "onnx", "pt2", "torchscript")]
    code, lines = run_in_terminal(["bench", *dirs, "--batch", "1", "--threads", "1", "--max-seconds", "0.3"], work)
    assert code == 0, "\n".join(lines)
    assert foreign_lines(lines) == [], "\n".join(lines)
    measured = [ln for ln in lines if re.match(r"^[★~ ]*\s*(pytorch|onnx|pt2|torchscript|openvino|tflite|executorch)\s+1\s", ln)]
    assert len(measured) >= 2, "\n".join(lines)
    for ln in measured:
        assert re.search(r"\d+(\.\d+)?x$", ln) or ln.rstrip().endswith(("x", "~")), ln

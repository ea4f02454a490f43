"""The CLI ends its process without the interpreter's module teardown once torch is loaded (issue 18, ~1 s of
every export): the exit code, the flushed output and the atexit handlers must be what a normal exit gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import atexit, os, sys
marker = sys.argv[1]
import torch  # loaded, as in every export: the quick exit applies
real_exit = os._exit
def spy(code):
    open(marker + ".quick", "w").write(str(code))
    real_exit(code)
os._exit = spy
atexit.register(lambda: open(marker, "w").write("atexit ran"))
sys.argv = ["modelport", *sys.argv[2:]]
from modelport.cli import main
main()
"""


@pytest.mark.parametrize(("args", "code"), [(["formats", "--json"], 0),
                                            (["export", "missing.py:build", "--vision", "3x8x8", "-f", "pt2"], 1)])
def test_quick_exit_keeps_exit_code_output_and_atexit_handlers(tmp_path: Path, args: list[str], code: int) -> None:
    marker = tmp_path / "marker"
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(marker), *args], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == code, r.stderr
    assert (tmp_path / "marker.quick").read_text() == str(code)  # it did skip the teardown
    assert marker.read_text() == "atexit ran"
    if code == 0:
        assert json.loads(r.stdout)["formats"]  # the whole document reached the pipe before the process ended
    else:
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr

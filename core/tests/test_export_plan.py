"""The export plan: formats and options are checked before torch is imported, so a mistake fails fast."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from modelport.engine.pipeline import plan
from modelport.errors import ConfigError
from modelport.plugins import get_plugin_manager

REPO = Path(__file__).resolve().parents[2]
_FAIL_FAST = (
    "import sys\n"
    "from modelport.cli import main\n"
    "try:\n"
    "    main(args=sys.argv[1:])\n"
    "except SystemExit as e:\n"
    "    print('exit', e.code, 'torch' in sys.modules)\n"
)


@pytest.mark.parametrize("extra", [["-f", "onnx", "-o", "no_such_option=1"], ["-f", "no-such-format"]])
def test_bad_option_or_format_is_a_config_error_before_torch_is_imported(tmp_path, extra) -> None:
    """A typo in -o or -f costs the user no model load and no torch import: one line, exit 3 (ConfigError)."""
    args = ["export", "examples/models.py:small_cnn", "--vision", "3x32x32", "--output-dir", str(tmp_path / "out"), *extra]
    proc = subprocess.run([sys.executable, "-c", _FAIL_FAST, *args], capture_output=True, text=True, timeout=120,
                          cwd=str(REPO))
    assert proc.stdout.strip().splitlines()[-1] == "exit 3 False", proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_plan_expands_all_and_resolves_every_formats_options() -> None:
    """``all`` becomes the exportable formats here, each with its resolved options and its own folder."""
    the_plan = plan(get_plugin_manager(), ["all"])
    assert "pt2" in the_plan.formats and set(the_plan.options) == set(the_plan.formats)
    assert the_plan.per_format_dirs is True
    with pytest.raises(ConfigError, match="no format given"):
        plan(get_plugin_manager(), [" "])


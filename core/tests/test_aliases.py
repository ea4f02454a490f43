"""Wave 1's flat module names keep working for third-party code, and nothing in the repository still uses them.

``import modelport.pipeline`` must give the very module ``modelport.engine.pipeline`` (a monkeypatch through the
old name patches what the engine runs), warn once with the new name, and leave the real module's own spec alone.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import modelport
import pytest
from modelport.aliases import MOVED, PACKAGES

ROOT = Path(__file__).resolve().parents[2]
CORE = Path(modelport.__file__).parent


@pytest.fixture(autouse=True)
def _forget_old_names() -> Iterator[None]:
    """Importing ``modelport.debug`` by its old name sets the package attribute (the API function) to the module:
    undo what each test imports by an old name."""
    attrs = dict(vars(modelport))
    yield
    for old in MOVED:
        sys.modules.pop(f"modelport.{old}", None)
        if old in attrs:
            setattr(modelport, old, attrs[old])
        elif old in vars(modelport):
            delattr(modelport, old)


def _import_old(name: str) -> tuple[object, list[warnings.WarningMessage]]:
    sys.modules.pop(f"modelport.{name}", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        __import__(f"modelport.{name}")  # a statement's frame: the warning must point here, not into importlib
    return sys.modules[f"modelport.{name}"], [w for w in caught if issubclass(w.category, DeprecationWarning)]


@pytest.mark.parametrize("old", sorted(MOVED))
def test_every_old_name_is_the_new_module_and_says_where_it_went(old: str) -> None:
    new = importlib.import_module(f"modelport.{MOVED[old]}")
    module, caught = _import_old(old)
    assert module is new
    assert [str(w.message) for w in caught] == [
        f"modelport.{old} is now modelport.{MOVED[old]}; import it from there (the old name will be removed)"]
    assert caught[0].filename == __file__  # the warning points at the importing line, not at importlib
    assert new.__spec__ is not None and new.__spec__.name == f"modelport.{MOVED[old]}"
    assert new.__name__ == f"modelport.{MOVED[old]}"


def test_an_old_name_patches_the_real_module(monkeypatch: pytest.MonkeyPatch) -> None:
    import modelport.engine.pipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import modelport.pipeline  # type: ignore[import-not-found]
        from modelport.console import capture_fds  # type: ignore[import-not-found]
        from modelport.types import OptionSpec  # type: ignore[import-not-found]

        monkeypatch.setattr("modelport.pipeline.call_hook", "patched")
    assert modelport.pipeline is modelport.engine.pipeline
    assert modelport.engine.pipeline.call_hook == "patched"
    assert OptionSpec is modelport.OptionSpec
    assert capture_fds is importlib.import_module("modelport.terminal.console").capture_fds


def test_packages_forward_the_modules_they_were() -> None:
    """``modelport.plugins`` / ``.cli`` / ``.testing`` were modules: every public name they had still imports."""
    for package, (module_name, public) in PACKAGES.items():
        pkg = importlib.import_module(f"modelport.{package}")
        real = importlib.import_module(f"modelport.{package}.{module_name}")
        for name in public:
            assert getattr(pkg, name) is getattr(real, name), f"modelport.{package}.{name}"
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            pkg.nope  # noqa: B018
    from modelport.testing import PluginConformance, run_cli

    assert PluginConformance.__module__ == "modelport.testing.kit" and callable(run_cli)


def test_package_inits_stay_light() -> None:
    """Importing a leaf (types, render) must not load the plugin host or the CLI, and no in-repo import of the
    CLI or the plugin host goes through an old name (that would warn)."""
    code = ("import sys, modelport.plugins.types, modelport.terminal.render, modelport.testing.http\n"
            "loaded = [m for m in ('modelport.plugins.host', 'modelport.cli.app', 'modelport.testing.kit', 'click')"
            " if m in sys.modules]\n"
            "assert not loaded, loaded\n"
            "from modelport.cli import main\n"
            "from modelport.plugins import get_plugin_manager\n"
            "get_plugin_manager()\n")
    _runs_clean(code, "error:modelport.:DeprecationWarning")


def _runs_clean(code: str, warnings_filter: str) -> None:
    """Run ``code`` in a fresh interpreter with ``-W warnings_filter``; it must exit 0 (nothing imported before)."""
    r = subprocess.run([sys.executable, "-W", warnings_filter, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def _repo_files() -> list[Path]:
    """The core, every plugin's code and tests, the cross-distribution tests, benchmarks and docs scripts."""
    roots = [CORE, ROOT / "core" / "tests", *(ROOT / "plugins").glob("*/src"), *(ROOT / "plugins").glob("*/tests"),
             ROOT / "tests", ROOT / "benchmarks", ROOT / "docs"]
    skip = {CORE / "aliases.py", Path(__file__).resolve()}
    return [p for root in roots if root.is_dir() for p in root.rglob("*.py") if p.resolve() not in skip]


def test_in_repo_code_uses_the_new_names() -> None:
    old = "|".join(sorted(MOVED, key=len, reverse=True))
    dotted = re.compile(rf"(?<![\w.])modelport\.({old})(?![\w(])")
    from_top = re.compile(rf"^\s*from modelport import .*\b({old})\b", re.M)
    found = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in _repo_files()
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if dotted.search(line) or from_top.search(line)]
    assert not found, "old module names (run tools/rename_modules.py):\n" + "\n".join(found)


def test_the_rewrite_script_maps_old_names(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("rename_modules", ROOT / "tools" / "rename_modules.py")
    assert spec and spec.loader
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    text = ("from modelport import hookimpl, store, testing_debug as td\n"
            "from modelport.plugins import PluginHost, _load\n"
            'monkeypatch.setattr("modelport.pipeline.call_hook", f)\n'
            'monkeypatch.setattr(modelport.plugins, "_HOST", host)\n'
            "report = modelport.debug(folder)  # the API function, not the old module\n"
            "see core/src/modelport/hookspecs.py\n"
            "wave 1 called it modelport.pipeline\n")
    assert tool.rewrite(text, concrete=False) == (
        "from modelport import hookimpl\n"
        "from modelport.folder import store\n"
        "from modelport.testing import debug as td\n"
        "from modelport.plugins import PluginHost\n"
        "from modelport.plugins.host import _load\n"
        'monkeypatch.setattr("modelport.engine.pipeline.call_hook", f)\n'
        'monkeypatch.setattr(modelport.plugins.host, "_HOST", host)\n'
        "report = modelport.debug(folder)  # the API function, not the old module\n"
        "see core/src/modelport/plugins/hookspecs.py\n"
        "wave 1 called it modelport.pipeline\n")
    assert "from modelport.plugins.host import PluginHost, _load" in tool.rewrite(text, concrete=True)
    assert tool.rewrite(tool.rewrite(text, concrete=False), concrete=False) == tool.rewrite(text, concrete=False)


def test_the_zoo_api_is_public_under_its_documented_name() -> None:
    """``from modelport import zoo`` (issue 19's API, the README's command) is a public module, not a moved name:
    no DeprecationWarning, the same functions as the command module, and still light (no torch)."""
    code = ("import sys\n"
            "from modelport import zoo\n"
            "from modelport.commands import zoo as impl\n"
            "assert zoo.load_pretrained is impl.load_pretrained and zoo.list_models is impl.list_models\n"
            "assert set(zoo.__all__) == set(impl.__all__), set(impl.__all__) ^ set(zoo.__all__)\n"
            "assert 'torch' not in sys.modules\n")
    _runs_clean(code, "error::DeprecationWarning")

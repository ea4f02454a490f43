"""Test sessions. Each distribution is tested in its own virtualenv with only the core and itself
installed — that is how we prove plugins are independent — plus an integration session with everything.

    nox                      # lint, mypy, core, every plugin, integration
    nox -s mypy              # type-check core/src
    nox -s core              # the core alone
    nox -s "plugin(export-onnx)"
    nox -s bench             # benchmarks/ (not part of the default run)

Every session's virtualenv holds its own torch (1-3 GB each, ~20 GB for a full run). With
MODELPORT_NOX_PRUNE=1 (set by .ci/run) each virtualenv is deleted as its session ends, so a full
run needs the disk of one session at a time.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nox
import tomllib

ROOT = Path(__file__).parent
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))
TEST_DEPS = ("pytest>=8", "hypothesis>=6")

nox.options.sessions = ["lint", "mypy", "core", "plugin", "integration"]
nox.options.error_on_missing_interpreters = True
nox.options.default_venv_backend = "venv"


@contextmanager
def _pruned(session: nox.Session) -> Iterator[None]:
    """Delete the session's virtualenv when it ends (pass or fail) if MODELPORT_NOX_PRUNE=1."""
    try:
        yield
    finally:
        location = getattr(session.virtualenv, "location", None)
        if os.environ.get("MODELPORT_NOX_PRUNE") == "1" and location and Path(location).is_dir():
            shutil.rmtree(location, ignore_errors=True)
            session.log(f"pruned {location}")


def _install(session: nox.Session, *paths: str) -> None:
    # torch first, from the constraints file, so no resolver ever reaches for a CUDA build
    session.install(*CONSTRAINTS, "torch")
    session.install(*CONSTRAINTS, *TEST_DEPS, *paths)


def _local_deps(plugin: str) -> list[str]:
    """Other first-party plugins this plugin depends on (TensorRT needs export-onnx)."""
    data = tomllib.loads((ROOT / "plugins" / plugin / "pyproject.toml").read_text())
    deps = data["project"].get("dependencies", [])
    local = []
    for other in PLUGINS:
        dist = tomllib.loads((ROOT / "plugins" / other / "pyproject.toml").read_text())["project"]["name"]
        if other != plugin and any(d.split(">")[0].split("=")[0].split("[")[0].strip() == dist for d in deps):
            local.append(f"./plugins/{other}")
    return local


# Tests start many processes (CLI children, exports side by side) on a small shared machine: with a pool per
# process sized to every core, OpenBLAS fails pthread_create (EAGAIN) and children hang. One thread each, unless
# a test asks for more (--threads); a value set by the caller wins.
THREAD_CAPS = {name: os.environ.get(name, "1") for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def _pytest(session: nox.Session, *paths: str) -> None:
    args = session.posargs or ["-q", *paths]
    session.run("python", "-m", "pytest", *args, env={"MPLBACKEND": "Agg", **THREAD_CAPS})


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole repository, at the version pinned in constraints.txt."""
    with _pruned(session):
        session.install("-c", str(ROOT / "constraints.txt"), "ruff")
        session.run("ruff", "check", ".")


@nox.session
def mypy(session: nox.Session) -> None:
    """mypy over core/src (settings in pyproject.toml). torch is not installed: it is typed as Any here, which
    keeps the session a few seconds instead of a torch install; the core's light dependencies are real."""
    with _pruned(session):
        session.install(*CONSTRAINTS, "mypy", "pytest", "pluggy", "click", "rich", "jsonschema", "numpy")
        session.run("mypy", "core/src")


@nox.session
def core(session: nox.Session) -> None:
    """The core alone: no plugin installed."""
    # The generated plugin template is linted by the tests, so ruff is installed too.
    with _pruned(session):
        _install(session, "./core[plot]", "ruff")
        _pytest(session, "core/tests")


@nox.session
@nox.parametrize("name", PLUGINS, ids=PLUGINS)
def plugin(session: nox.Session, name: str) -> None:
    """One plugin with only the core (and the first-party plugins it depends on)."""
    extra = (ROOT / "plugins" / name / "test-requirements.txt")
    paths = ["./core", *_local_deps(name), f"./plugins/{name}"]
    if extra.is_file():
        paths += ["-r", str(extra)]
    with _pruned(session):
        _install(session, *paths)
        _pytest(session, f"plugins/{name}/tests")


@nox.session
def integration(session: nox.Session) -> None:
    """Everything installed together: the CLI end to end, examples, docs, install matrices."""
    paths = ["./core[plot]", *(f"./plugins/{p}" for p in PLUGINS)]
    for p in PLUGINS:
        extra = ROOT / "plugins" / p / "test-requirements.txt"
        if extra.is_file():
            paths += ["-r", str(extra)]
    if (ROOT / "tests" / "requirements.txt").is_file():
        paths += ["-r", str(ROOT / "tests" / "requirements.txt")]
    with _pruned(session):
        _install(session, *paths)
        _pytest(session, "tests", "core/tests/test_executors.py")  # formats in workers need the plugins


@nox.session
def bench(session: nox.Session) -> None:
    """Reproducible benchmarks; writes benchmarks/RESULTS.md. Not part of the default run."""
    with _pruned(session):
        _install(session, "./core[plot]", *(f"./plugins/{p}" for p in PLUGINS))
        session.run("python", "benchmarks/run_all.py", *session.posargs)

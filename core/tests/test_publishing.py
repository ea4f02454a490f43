"""modelport.publishers.publishing's helpers for publisher plugins: generated hooks, retries that end in one line, base URLs."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pluggy
import pytest
from modelport import ConfigError, PublishError, PublisherSpec, Target
from modelport.plugins import hookspecs
from modelport.publishers.publishing import RetryPolicy, base_url, publisher_hooks

IMPL = "modelport_test_lazy_publisher_impl"


IMPL_SOURCE = """
from modelport import PublishResult, PullResult

calls = []


def publish(export_dir, target, options):
    calls.append(("publish", export_dir, target.raw, dict(options)))
    return PublishResult(url="lazy://done", files=["model.bin"])


def pull(target, dest, options):
    calls.append(("pull", target.raw, dest))
    return PullResult(source=target.raw, files=["model.bin"])
"""


@pytest.fixture
def impl_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A publisher's implementation module on sys.path, not imported yet."""
    root = tmp_path / "src"
    root.mkdir()
    (root / f"{IMPL}.py").write_text(IMPL_SOURCE)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, IMPL, raising=False)
    yield root
    sys.modules.pop(IMPL, None)


def plugin_manager(*hooks: object) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.NAME)
    pm.add_hookspecs(hookspecs)
    plugin = types.SimpleNamespace(**{h.__name__: h for h in hooks})  # type: ignore[attr-defined]
    pm.register(plugin, name="lazy")
    pm.check_pending()
    return pm


def test_publisher_hooks_register_the_spec_and_dispatch_only_their_scheme(impl_dir: Path, tmp_path: Path) -> None:
    spec = PublisherSpec(scheme="lazy", display_name="Lazy store", can_pull=True)
    hooks = publisher_hooks(spec, IMPL)
    assert [h.__name__ for h in hooks] == ["register_publishers", "publish", "pull"]
    assert all(hasattr(h, "modelport_impl") for h in hooks), "each is a modelport hookimpl"
    assert "lazy://" in hooks[1].__doc__ and IMPL in hooks[1].__doc__

    pm = plugin_manager(*hooks)
    seen: list[PublisherSpec] = []
    pm.hook.register_publishers(register=seen.append)
    assert seen == [spec]

    other = Target.parse("file:///srv/registry")
    assert pm.hook.publish(export_dir=tmp_path, target=other, options={}) is None
    assert pm.hook.pull(target=other, dest=tmp_path, options={}) is None
    assert IMPL not in sys.modules, "the implementation is not imported for another scheme"

    mine = Target.parse("lazy://bucket/model")
    result = pm.hook.publish(export_dir=str(tmp_path), target=mine, options={"force": True})
    assert result.url == "lazy://done"
    pulled = pm.hook.pull(target=mine, dest=str(tmp_path / "d"), options={})
    assert pulled.files == ["model.bin"]
    assert sys.modules[IMPL].calls == [("publish", tmp_path, "lazy://bucket/model", {"force": True}),
                          ("pull", "lazy://bucket/model", tmp_path / "d")], "paths arrive as Path objects"


def test_retry_policy_from_options() -> None:
    assert RetryPolicy.from_options({}).retries == 4
    assert RetryPolicy.from_options({"retries": None}).retries == 4
    assert RetryPolicy.from_options({"retries": 0}).retries == 0
    assert RetryPolicy.from_options({"retries": "2"}).retries == 2
    assert RetryPolicy.from_options({}, default=1).retries == 1


def test_retry_policy_call_retries_then_turns_the_failure_into_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    policy = RetryPolicy(retries=2, base=0.0)
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("reset")
        return "ok"

    def classify(exc: BaseException) -> tuple[str, float | None] | None:
        return ("connection failed", None) if isinstance(exc, ConnectionError) else None

    def error(exc: BaseException, what: str) -> PublishError:
        return PublishError(f"{what}: {type(exc).__name__}")

    assert policy.call(flaky, what="upload", classify=classify, error=error, where="x: ") == "ok"
    assert len(attempts) == 3
    assert "x: upload: connection failed; retrying in 0 s (retry 2 of 2)" in capsys.readouterr().err

    def broken() -> None:
        raise ValueError("permanent")

    with pytest.raises(PublishError, match=r"^commit: ValueError$") as info:
        policy.call(broken, what="commit", classify=classify, error=error)
    assert info.value.__suppress_context__, "no traceback chain behind the one line"

    already = PublishError("already one line")

    def refuses() -> None:
        raise already

    with pytest.raises(PublishError) as info:
        policy.call(refuses, what="x", classify=classify, error=error)
    assert info.value is already, "a PublishError passes through unchanged"


def test_base_url() -> None:
    assert base_url("https://hub.example/", "--endpoint") == "https://hub.example"
    assert base_url("http://127.0.0.1:8080/api/v3//", "--api-url") == "http://127.0.0.1:8080/api/v3"
    with pytest.raises(ConfigError, match=r"--api-url 'ftp://x' is not an http\(s\) URL"):
        base_url("ftp://x/", "--api-url")

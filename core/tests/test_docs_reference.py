"""The generated references in docs/ follow the code: every hookspec in docs/plugins.md with its exact signature,
every record a hook sees, and docs/metadata.md from the JSON Schema."""

from __future__ import annotations

import importlib.util
import inspect

from conftest import ROOT

DOCS = ROOT / "docs"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plugins_page_is_up_to_date():
    gen = _load("gen_plugins")
    current = (DOCS / "plugins.md").read_text(encoding="utf-8")
    assert gen.render(current) == current, "docs/plugins.md is out of date: run `python docs/gen.py`"


def test_every_hookspec_is_documented_with_its_signature_and_contract():
    from modelport.plugins import hookspecs

    gen = _load("gen_plugins")
    text = (DOCS / "plugins.md").read_text(encoding="utf-8")
    specs = {n: f for n, f in vars(hookspecs).items() if hasattr(f, "modelport_spec")}
    assert {"register_formats", "export", "load_runner", "validate", "describe_metadata", "publish"} <= set(specs)
    for name, fn in specs.items():
        assert f"### `{name}`" in text, f"hook {name} is not in docs/plugins.md"
        assert f"def {gen.signature(fn)}: ..." in text, f"the signature of {name} in docs/plugins.md is stale"
        first_line = inspect.getdoc(fn).splitlines()[0].replace("``", "`")
        assert first_line in text, f"the contract of {name} in docs/plugins.md is stale"
        kind = "first result wins" if fn.modelport_spec.get("firstresult") else "all implementations are called"
        section = text.split(f"### `{name}`", 1)[1].split("###", 1)[0]
        assert kind in section, name


def test_a_new_hookspec_makes_the_page_stale(monkeypatch):
    """The check has teeth: a hookspec added to the code and not to the page is caught."""
    from modelport.plugins import hookspecs

    gen = _load("gen_plugins")

    @hookspecs.hookspec
    def brand_new_hook(artifact: object) -> None:
        """A hook nobody documented."""

    monkeypatch.setattr(hookspecs, "brand_new_hook", brand_new_hook, raising=False)
    current = (DOCS / "plugins.md").read_text(encoding="utf-8")
    assert "### `brand_new_hook`" in gen.render(current) and gen.render(current) != current


def test_metadata_page_is_up_to_date_and_its_example_passes_the_schema():
    from modelport.folder.metadata import schema, validation_errors

    gen = _load("gen_metadata")
    current = (DOCS / "metadata.md").read_text(encoding="utf-8")
    assert gen.render() == current, "docs/metadata.md is out of date: run `python docs/gen.py`"
    assert validation_errors(gen.EXAMPLE) == []
    for prop in schema()["properties"]:
        assert f"| `{prop}` |" in current, prop

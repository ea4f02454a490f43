"""The public API's names survive importing every core module (a submodule named like an API function replaces
the function on the package: `modelport.text(16)` once failed with "'module' object is not callable")."""

from __future__ import annotations

import importlib
import pkgutil

import modelport


def test_importing_every_core_module_keeps_the_public_functions_callable():
    callables = [name for name in modelport.__all__ if callable(getattr(modelport, name))]
    assert {"export", "text", "vision", "validate", "publish", "debug"} <= set(callables)
    for info in pkgutil.iter_modules(modelport.__path__):
        if info.name == "__main__":
            continue
        importlib.import_module(f"modelport.{info.name}")
    broken = [name for name in callables if not callable(getattr(modelport, name))]
    assert not broken, f"a submodule shadows these API names: {broken}"

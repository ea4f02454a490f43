"""Building blocks for format objects (``FormatSpec(implementation=...)``): what several formats would repeat.

* :class:`FormatObject` — an optional base: the format's ``name`` and :meth:`FormatObject.positional`, the request
  with a model that tracing converters can call with ``example_inputs`` by position.
* :class:`RunnerValidation` — a mixin whose ``validate`` runs the format's own runner on every input set and
  records the runner's ``checks()`` and ``runtime`` (the core then compares the outputs with PyTorch's).
* :class:`PerModuleIntermediates` — the base of a per-module ``load_intermediates`` result for ``modelport debug``:
  each module is converted on its own and run, for artifacts that keep no module boundaries (an engine, a
  delegated program, an ML Program).

Importing this module is cheap: nothing heavy at module level.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from modelport.errors import ConfigError, ValidationFailed
from modelport.plugins.types import Artifact, ExportRequest, ValidationRun


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its class name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class FormatObject:
    """Optional base of a format object; subclasses define ``export(request)`` and ``load_runner(artifact, options)``.

    The core calls a format object only for its own format, so no method checks ``request.format``.
    """

    #: the format's name, as registered in its FormatSpec (used in messages)
    name: ClassVar[str] = ""

    @staticmethod
    def positional(request: ExportRequest) -> ExportRequest:
        """The request with ``model`` callable by position (a keyword-bound forward arrives wrapped for tracing).

        Format objects receive the user's own module in ``request.model``; a converter that traces
        ``model(*example_inputs)`` (torch.export, torch.jit.trace, torch.onnx) wants this instead.
        """
        model = request.positional_model()
        return request if model is request.model else dataclasses.replace(request, model=model)


class RunnerValidation:
    """Mixin: ``validate`` runs ``self.load_runner`` on every input set and records the runner's checks.

    A runner may define ``checks()`` (a dict of structural checks for the record) and ``runtime`` (a string).
    An error of a type in ``errors`` while running becomes :class:`ValidationFailed` with ``failure`` as its text.
    """

    name: ClassVar[str] = ""
    failure: ClassVar[str] = "the artifact failed to run"
    errors: ClassVar[tuple[type[BaseException], ...]] = (ValueError, RuntimeError)

    def load_runner(self, artifact: Artifact, options: Mapping[str, Any]) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def validate(self, artifact: Artifact, inputs: Sequence[Mapping[str, Any]]) -> ValidationRun:
        """Run every input set in the format's runtime; the core compares the outputs with PyTorch's."""
        runner = self.load_runner(artifact, {"threads": artifact.options.get("threads")})
        try:
            outputs = [list(runner(dict(s))) for s in inputs]
        except self.errors as exc:
            raise ValidationFailed(f"{self.name}: {self.failure}: {exc}"[:800]) from exc
        checks = runner.checks() if callable(getattr(runner, "checks", None)) else {}
        return ValidationRun(outputs=outputs, checks=checks, runtime=getattr(runner, "runtime", None))


class PerModuleIntermediates:
    """A per-module ``load_intermediates`` result: each module the core asks about, converted alone and run.

    Subclasses set ``format``, ``redo`` (what debugging does again, for the error when no model is given) and
    ``refusal`` (the row's text when a module does not convert), and define :meth:`convert` (may raise: that module
    becomes a row in ``unavailable``) and optionally :meth:`configure` and :meth:`execute` (may raise: the run
    stops with that error, e.g. "prediction needs macOS").
    """

    mode = "per-module"
    format: ClassVar[str] = ""
    redo: ClassVar[str] = "converts each module again"
    refusal: ClassVar[str] = "could not be converted alone"

    def __init__(self, artifact: Artifact, model: Any, modules: Mapping[str, str]) -> None:
        if model is None:
            raise ConfigError(f"{self.format}: debugging {self.redo} and needs the PyTorch model")
        self.model = model
        self.unavailable: dict[str, str] = {}
        self.notes: list[str] = []
        self.runtime = self.format
        self.configure(artifact)
        self.taps = {m: self.tap(m) for m in modules if m}

    def configure(self, artifact: Artifact) -> None:
        """Read the artifact's settings (precision, backend) and set ``notes`` and ``runtime``."""

    def tap(self, module: str) -> str:
        """How the debug table labels module ``module``'s tensor."""
        return module

    def convert(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], folder: Path) -> Any:
        """Module ``name`` (``self.model.get_submodule(name)``) converted alone; ``folder`` is scratch space."""
        raise NotImplementedError

    def execute(self, converted: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run what :meth:`convert` returned on the module's inputs; its first output (None: no row)."""
        return converted

    def run(self, inputs: Mapping[str, Any], modules: Sequence[str], module_inputs: Any = None) -> dict[str, Any]:
        """The tensors of ``modules`` that converted, each run on the inputs PyTorch gave that module."""
        found: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix=f"modelport-debug-{self.format}-", ignore_cleanup_errors=True) as tmp:
            for name in modules:
                given = (module_inputs or {}).get(name)
                if given is None:
                    continue
                args, kwargs = given
                try:
                    converted = self.convert(name, args, kwargs, Path(tmp))
                except Exception as exc:  # one module the converter refuses is a row, not a crash
                    self.unavailable[name] = f"{self.refusal}: {type(exc).__name__}: {first_line(exc)}"[:300]
                    continue
                result = self.execute(converted, args, kwargs)
                if result is not None:
                    found[name] = result
        return found

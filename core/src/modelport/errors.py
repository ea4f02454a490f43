"""Exceptions that carry their exit code, so the CLI maps every failure in one place."""

from __future__ import annotations


class ModelportError(Exception):
    """Base error: a one-line message for the user and the exit code the CLI returns."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(ModelportError):
    """Bad arguments, unknown or unavailable format, invalid options (exit 3)."""

    exit_code = 3


class ModelLoadError(ModelportError):
    """The model, its checkpoint or its example inputs could not be loaded or run (exit 1)."""

    exit_code = 1


class ExportFailed(ModelportError):
    """A converter failed to write an artifact (exit 1)."""

    exit_code = 1


class ValidationFailed(ModelportError):
    """An artifact was written but does not match the PyTorch model (exit 2)."""

    exit_code = 2


class PluginContractError(ModelportError):
    """A plugin broke the hook contract (wrong return type, duplicate name...) (exit 1)."""

    exit_code = 1


class PublishError(ModelportError):
    """A publish or pull failed (exit 1)."""

    exit_code = 1

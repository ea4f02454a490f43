"""The testing kit: the conformance kit for plugin authors (kit), the in-process CLI, fake Hub/GitHub servers,
reference models and debug fixtures.

``from modelport.testing import PluginConformance, run_cli, ...`` keeps working: the kit's names load from
:mod:`modelport.testing.kit` on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelport import aliases

if TYPE_CHECKING:  # pragma: no cover
    from modelport.testing.kit import (
        ALWAYS_HEAVY,
        CONVENTION_FILES,
        DEFAULT_MODELS,
        CheckResult,
        CliResult,
        ConformanceError,
        ConformanceReport,
        PluginConformance,
        check_availability,
        check_cli_lists_format,
        check_export,
        check_format_object,
        check_ignores_other_formats,
        check_import_is_light,
        check_intermediates,
        check_metadata,
        check_output_convention,
        check_plugin,
        check_registration,
        check_runner,
        check_unsupported,
        check_validate_roundtrip,
        export_reference_model,
        find_plugin,
        load_module,
        main,
        read_metadata,
        read_record,
        reference_models,
        run_cli,
    )

__all__ = [
    "ALWAYS_HEAVY",
    "CONVENTION_FILES",
    "DEFAULT_MODELS",
    "CheckResult",
    "CliResult",
    "ConformanceError",
    "ConformanceReport",
    "PluginConformance",
    "check_availability",
    "check_cli_lists_format",
    "check_export",
    "check_format_object",
    "check_ignores_other_formats",
    "check_import_is_light",
    "check_intermediates",
    "check_metadata",
    "check_output_convention",
    "check_plugin",
    "check_registration",
    "check_runner",
    "check_unsupported",
    "check_validate_roundtrip",
    "export_reference_model",
    "find_plugin",
    "load_module",
    "main",
    "read_metadata",
    "read_record",
    "reference_models",
    "run_cli",
]


def __getattr__(name: str) -> Any:
    return aliases.forward("testing", name)

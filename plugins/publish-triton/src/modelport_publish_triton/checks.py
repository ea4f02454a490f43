"""Check a generated config.pbtxt with Triton's own model-config protobuf (shipped in the ``tritonclient`` package).

``tritonclient/grpc/model_config_pb2.py`` is loaded by file, without ``tritonclient.grpc``'s ``__init__`` (which
needs grpcio): only protobuf is required. Used by this plugin's tests and available to users::

    from modelport_publish_triton.checks import parse_config
    config = parse_config(Path("models/cnn/config.pbtxt").read_text())   # a ModelConfig message
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any

from modelport import ConfigError


@lru_cache(maxsize=1)
def model_config_module() -> Any:
    """Triton's ``model_config_pb2`` module (ConfigError when tritonclient is not installed)."""
    spec = importlib.util.find_spec("tritonclient")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("checking a Triton config needs tritonclient: pip install tritonclient protobuf")
    path = Path(next(iter(spec.submodule_search_locations))) / "grpc" / "model_config_pb2.py"
    loader_spec = importlib.util.spec_from_file_location("_modelport_triton_model_config_pb2", path)
    if loader_spec is None or loader_spec.loader is None or not path.is_file():
        raise ConfigError(f"{path}: Triton's model_config_pb2 is not where tritonclient used to ship it")
    module = importlib.util.module_from_spec(loader_spec)
    loader_spec.loader.exec_module(module)
    return module


def parse_config(text: str) -> Any:
    """Parse config.pbtxt text into Triton's ``ModelConfig`` message; a ParseError says what Triton would refuse."""
    from google.protobuf import text_format

    return text_format.Parse(text, model_config_module().ModelConfig())


def data_type_name(config: Any, value: int) -> str:
    """``TYPE_FP32`` for the enum value in a parsed config."""
    return str(model_config_module().DataType.Name(value))

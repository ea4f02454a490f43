"""Load a model from a reference: ``.pt2``, TorchScript, ``pkg.mod:factory``, ``file.py:factory``, checkpoints.

Checkpoints load with ``weights_only=True``. Whatever would run code from the file — a pickled whole
``nn.Module``, a TorchScript program, a ``.pt2`` with pickled parts — is refused unless the caller passes
``trust_code=True`` (see :mod:`modelport.folder.trust` and docs/security.md).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError, ModelLoadError

STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "weights")
FACTORY_REF = re.compile(  # a factory reference, PATH_OR_MODULE:ATTR
    r"^(?P<target>.+?):(?P<attr>[A-Za-z_][A-Za-z0-9_.]*)$")


def parse_model_kwargs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--model-kwargs is not valid JSON: {exc.msg} at char {exc.pos}") from None
    except RecursionError:
        raise ConfigError("--model-kwargs is nested too deeply") from None
    if not isinstance(value, dict):
        raise ConfigError("--model-kwargs must be a JSON object, e.g. '{\"num_classes\": 10}'")
    return value


def _archive_kind(path: Path) -> str | None:
    """'pt2', 'torchscript', 'pickle' or None, read from the zip's member names (no code runs)."""
    from modelport.folder.trust import archive_kind

    return archive_kind(path)


def is_model_archive(path: str | Path) -> bool:
    """Whether ``path`` is a file holding a whole model (a .pt2 or TorchScript zip), told without running code."""
    p = Path(path)
    return p.is_file() and _archive_kind(p) in ("pt2", "torchscript")


def load_model(
    ref: str,
    *,
    model_kwargs: Mapping[str, Any] | None = None,
    checkpoint: str | None = None,
    checkpoint_prefix: str | None = None,
    strict: bool = True,
    trust_pickle: bool = False,
    trust_code: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Load the model named by ``ref``; returns (module in eval mode, facts for the record).

    ``trust_code`` (``trust_pickle`` is its old name) allows loading files that run code: pickled modules,
    TorchScript programs not written by modelport here, ``.pt2`` archives with pickled parts.
    """
    import torch

    trust_code = trust_code or trust_pickle

    facts: dict[str, Any] = {"reference": ref}
    path = Path(ref)
    m = FACTORY_REF.match(ref)
    looks_like_file = path.suffix.lower() in (".pt2", ".pt", ".pth", ".ts", ".torchscript", ".jit", ".ckpt", ".bin")
    if m and not (looks_like_file and path.exists()) and not (len(m.group("target")) == 1 and path.exists()):
        model = _load_factory(m.group("target"), m.group("attr"), dict(model_kwargs or {}))
        facts["kind"] = "factory"
    else:
        if model_kwargs:
            raise ConfigError("--model-kwargs only applies to a module:factory or file.py:factory reference")
        model, facts["kind"] = _load_model_file(ref, path, trust_code)
    if not isinstance(model, torch.nn.Module):
        raise ModelLoadError(f"model {ref}: the factory returned {type(model).__name__}, not a torch.nn.Module")
    if checkpoint:
        facts["checkpoint"] = load_checkpoint(model, checkpoint, prefix=checkpoint_prefix, strict=strict)
    set_eval(model)
    return model, facts


def _load_model_file(ref: str, path: Path, trust_code: bool) -> tuple[Any, str]:
    """A model saved in a file (torch.export archive, TorchScript, pickled module) and its kind; trust rules first."""
    from modelport.folder import trust

    if path.is_dir():
        raise ModelLoadError(f"model {ref}: is a directory, expected a .pt2 / TorchScript file or module:factory")
    if not path.exists():
        hint = " (for a factory use package.module:function or path/to/file.py:function)" if ":" not in ref else ""
        raise ModelLoadError(f"model {ref}: no such file{hint}")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"model {ref}: the file is empty")
    kind = _archive_kind(path)
    if kind in ("pt2", "torchscript"):
        trust.check_model_file(path, trust_code=trust_code, what=f"model {ref}")
    if kind == "pt2":
        try:
            return _quiet_export_load(str(path)).module(), "pt2"
        except Exception as exc:
            raise ModelLoadError(f"model {ref}: not a readable torch.export archive ({_short(exc)})") from exc
    if kind == "torchscript":
        import torch

        try:
            return torch.jit.load(str(path), map_location="cpu"), "torchscript"
        except Exception as exc:
            raise ModelLoadError(f"model {ref}: not a readable TorchScript archive ({_short(exc)})") from exc
    if path.suffix.lower() == ".pt2":
        raise ModelLoadError(f"model {ref}: not a torch.export archive (.pt2 files are zip archives written by torch.export.save)")
    try:
        return _load_pickled_module(path, trust_code), "pickle"
    except ModelLoadError as exc:
        msg = str(exc)
        raise ModelLoadError(msg if msg.startswith("model ") else f"model {msg}") from exc


def set_eval(model: Any) -> None:
    """Put a module in eval mode; modules from torch.export.load refuse .eval() and are already inference graphs."""
    try:
        model.eval()
    except NotImplementedError:
        pass


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return first[:300]


def load_factory(reference: str, kwargs: Mapping[str, Any] | None = None, *, search: Sequence[Path] = ()) -> Any:
    """Import a ``path/to/file.py:function`` or ``package.module:function`` reference and call it with
    ``kwargs`` (a module instance is returned as is); a relative file not found here is looked for in ``search``
    folders (a pulled export's own folder). Failures are one-line ModelLoadErrors."""
    target, sep, attr = reference.rpartition(":")
    if not sep or not target or not attr:
        raise ModelLoadError(f"model {reference}: not like path/to/file.py:function or package.module:function")
    if _is_file_reference(target) and not Path(target).is_file() and not Path(target).is_absolute() and search:
        found = next((Path(base) / target for base in search if (Path(base) / target).is_file()), None)
        if found is None:
            where = ", ".join(str(Path(base)) for base in search)
            raise ModelLoadError(f"model {reference}: no such file {target} (looked here and in {where})")
        target = str(found)
    return _load_factory(target, attr, dict(kwargs or {}))


def _is_file_reference(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def _load_factory(target: str, attr: str, kwargs: dict[str, Any]) -> Any:
    if _is_file_reference(target):
        file = Path(target)
        if not file.is_file():
            raise ModelLoadError(f"model {target}:{attr}: no such file {target}")
        # the file's own name, as `python -c "import models"` would give it, so module paths in artifacts
        # (ONNX hierarchy, TorchScript code) read `models.SmallCNN`, not a generated name
        mod_name = f"_modelport_user_{abs(hash(str(file.resolve())))}"
        if file.stem.isidentifier() and file.stem not in sys.modules:
            try:
                shadows = importlib.util.find_spec(file.stem) is not None  # never shadow an installed module
            except (ImportError, ValueError):
                shadows = True
            if not shadows:
                mod_name = file.stem
        spec = importlib.util.spec_from_file_location(mod_name, file)
        if spec is None or spec.loader is None:
            raise ModelLoadError(f"model {target}:{attr}: cannot import {target}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        sys.path.insert(0, str(file.resolve().parent))
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ModelLoadError(f"model {target}:{attr}: importing {target} failed: {type(exc).__name__}: {_short(exc)}") from exc
        finally:
            sys.path.pop(0)
    else:
        if str(Path.cwd()) not in sys.path and "" not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            raise ModelLoadError(f"model {target}:{attr}: no module named {exc.name!r}") from exc
        except Exception as exc:
            raise ModelLoadError(f"model {target}:{attr}: importing {target} failed: {type(exc).__name__}: {_short(exc)}") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelLoadError(f"model {target}:{attr}: {target} has no attribute {part!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelLoadError(f"model {target}:{attr}: {attr} is not callable")
    import torch

    if isinstance(obj, torch.nn.Module):
        return obj
    try:
        return obj(**kwargs)
    except TypeError as exc:
        raise ModelLoadError(f"model {target}:{attr}: calling it failed: {_short(exc)} (check --model-kwargs)") from exc
    except Exception as exc:
        raise ModelLoadError(f"model {target}:{attr}: calling it raised {type(exc).__name__}: {_short(exc)}") from exc


def torch_load_weights(path: Path) -> Any:
    """``torch.load(weights_only=True)``; raises PickledObject when the file holds a pickled object (code)."""
    import pickle

    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        message = str(exc)
        if "Unsupported global" in message or "GLOBAL" in message:
            raise PickledObject(message) from exc
        raise ModelLoadError(f"{path}: corrupt or not a PyTorch file ({_short(exc)})") from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: corrupt or not a PyTorch file ({_short(exc)})") from exc


class PickledObject(Exception):
    """The file holds a pickled Python object that weights_only loading refuses: loading it runs code."""


def _load_pickled_module(path: Path, trust_pickle: bool) -> Any:
    import torch

    try:
        obj = torch_load_weights(path)
    except PickledObject:
        if not trust_pickle:
            from modelport.folder.trust import UntrustedCode

            raise UntrustedCode(
                f"model {path}: holds a pickled Python object (a whole nn.Module); unpickling it would run code from "
                "the file; refused, nothing was run. Export a .pt2 or give module:factory with --checkpoint, or pass "
                "--trust-code (alias --trust-pickle) if you trust the file"
            ) from None
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=False)
        except Exception as exc:
            raise ModelLoadError(f"model {path}: unpickling failed ({type(exc).__name__}: {_short(exc)})") from exc
    if isinstance(obj, torch.nn.Module):
        return obj
    if isinstance(obj, Mapping):
        raise ModelLoadError(
            f"model {path}: is a checkpoint (state dict), not a model; pass MODEL as module:factory and "
            f"--checkpoint {path}"
        )
    raise ModelLoadError(f"model {path}: holds a {type(obj).__name__}, not a model")


def extract_state_dict(obj: Any, path: str = "checkpoint") -> dict[str, Any]:
    """Find the state dict in a checkpoint: plain, or nested under state_dict / model_state_dict / model..."""
    import torch

    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if not isinstance(obj, Mapping):
        raise ModelLoadError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return dict(obj)
    for key in STATE_DICT_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner and any(isinstance(v, torch.Tensor) for v in inner.values()):
            return {k: v for k, v in inner.items() if isinstance(v, torch.Tensor)}
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if tensors:
        return tensors
    raise ModelLoadError(f"{path}: no state dict found (looked for tensors at the top and under {', '.join(STATE_DICT_KEYS)})")


def load_checkpoint(model: Any, checkpoint: str, *, prefix: str | None = None, strict: bool = True) -> dict[str, Any]:
    """Load a state dict into ``model`` (weights_only); strips ``prefix`` or an obvious one (Lightning's ``model.``)."""
    path = Path(checkpoint)
    if path.is_dir():
        raise ModelLoadError(f"checkpoint {checkpoint}: is a directory, expected a file")
    if not path.is_file():
        raise ModelLoadError(f"checkpoint {checkpoint}: no such file")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"checkpoint {checkpoint}: the file is empty")
    kind = _archive_kind(path)
    if kind in ("torchscript", "pt2"):
        raise ModelLoadError(f"checkpoint {checkpoint}: is a {'TorchScript program' if kind == 'torchscript' else '.pt2 archive'}, "
                             "not a state dict; nothing was loaded (pass it as MODEL, or save model.state_dict())")
    try:
        obj = torch_load_weights(path)
    except PickledObject:
        raise ModelLoadError(
            f"checkpoint {checkpoint}: holds pickled Python objects that weights_only loading refuses; "
            "save a plain state dict (torch.save(model.state_dict(), ...))"
        ) from None
    state = extract_state_dict(obj, f"checkpoint {checkpoint}")
    expected = set(model.state_dict().keys())
    stripped = None
    if prefix:
        state = {k.removeprefix(prefix): v for k, v in state.items()}
        stripped = prefix
    elif expected and not (set(state) & expected):
        for candidate in ("model.", "module.", "net.", "_orig_mod.", "model.model."):
            trial = {k.removeprefix(candidate): v for k, v in state.items()}
            if set(trial) & expected:
                state, stripped = trial, candidate
                break
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s): {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s): {_few(unexpected)}")
        raise ModelLoadError(
            f"checkpoint {checkpoint} does not fit the model: {'; '.join(parts)} "
            "(use --checkpoint-prefix to strip a prefix, or --no-strict)"
        )
    try:
        result = model.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        raise ModelLoadError(f"checkpoint {checkpoint} does not fit the model: {_short(exc)}") from exc
    return {
        "path": str(path), "prefix_stripped": stripped, "keys": len(state),
        "missing_keys": list(getattr(result, "missing_keys", [])), "unexpected_keys": list(getattr(result, "unexpected_keys", [])),
    }


def _few(keys: list[str], n: int = 4) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f", … (+{len(keys) - n})" if len(keys) > n else "")


def input_spec_from_pt2(path: str, *, trust_code: bool = False) -> Any:
    """Derive an input spec from a .pt2's example placeholders (shapes, dtypes, dynamic dims).

    A file that is not a .pt2 archive is a ModelLoadError (one line); one with pickled parts is refused
    unless ``trust_code``. Returns None when the placeholders carry no shapes.
    """

    from modelport.engine.inputs import InputSpec, TensorSpec
    from modelport.folder import trust

    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        raise ModelLoadError(f"model {path}: {'the file is empty' if p.is_file() else 'no such file'}")
    if trust.archive_kind(p) != "pt2":
        raise ModelLoadError(f"model {path}: not a valid .pt2 (a zip archive written by torch.export.save)")
    trust.check_pt2(p, trust_code=trust_code, what=f"model {path}")
    try:
        ep = _quiet_export_load(path)
    except Exception as exc:
        raise ModelLoadError(f"model {path}: not a readable torch.export archive ({_short(exc)})") from exc
    user_inputs = [s.arg.name for s in ep.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    tensors = []
    for node in ep.graph.nodes:
        if node.op != "placeholder" or node.name not in user_inputs:
            continue
        val = node.meta.get("val")
        if val is None or not hasattr(val, "shape"):
            return None
        shape, dynamic = [], {}
        for i, d in enumerate(val.shape):
            if isinstance(d, int):
                shape.append(d)
            else:
                hint = getattr(getattr(d, "node", None), "hint", None)
                shape.append(int(hint) if isinstance(hint, int) and hint > 0 else 2)
                dynamic[i] = str(d) if i else "batch"
        dtype = str(val.dtype).removeprefix("torch.")
        tensors.append(TensorSpec(node.name, tuple(shape), dtype, dynamic=dynamic))
    return InputSpec(tensors) if tensors else None


def _quiet_export_load(path: str) -> Any:
    """torch.export.load without the multi-line warning traceback torch logs for a damaged archive."""
    import logging

    import torch

    logger = logging.getLogger("torch.export")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return torch.export.load(path)
    finally:
        logger.setLevel(level)

"""Built-in model sources: the references ``modelport export`` always understood, as ordinary sources.

``factory`` (``pkg.mod:factory``, ``path/to/file.py:factory``), ``pt2`` (torch.export archive, which also
knows its own inputs), ``torchscript`` and ``file`` (anything else on disk: a pickled whole module is refused
unless trusted). Each may be named explicitly (``pt2:model.pt2``); unprefixed references go to the first
one whose ``claims`` accepts them, in that order. All load through :func:`modelport.models.loading.load_model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelport.errors import ModelportError
from modelport.models.sources import ResolvedModel, SourceRequest, SourceSpec
from modelport.plugins.hookspecs import hookimpl

_FILE_SUFFIXES = (".pt2", ".pt", ".pth", ".ts", ".torchscript", ".jit", ".ckpt", ".bin")


def _archive(ref: str) -> str | None:
    from modelport.folder.trust import archive_kind

    p = Path(ref)
    return archive_kind(p) if p.is_file() else None


def _is_factory(ref: str) -> bool:
    from modelport.models.loading import FACTORY_REF

    m = FACTORY_REF.match(ref)
    if not m:
        return False
    path = Path(ref)
    looks_like_file = path.suffix.lower() in _FILE_SUFFIXES
    return not (looks_like_file and path.exists()) and not (len(m.group("target")) == 1 and path.exists())


def _load(request: SourceRequest, *, pt2_inputs: bool = False) -> ResolvedModel:
    from modelport.models.loading import input_spec_from_pt2, load_model

    module, facts = load_model(
        request.reference, model_kwargs=request.model_kwargs, checkpoint=request.checkpoint,
        checkpoint_prefix=request.checkpoint_prefix, strict=request.strict, trust_code=request.trust_code,
    )
    facts["model_kwargs"] = dict(request.model_kwargs)
    inputs = None
    if pt2_inputs or facts.get("kind") == "pt2":
        try:
            inputs = input_spec_from_pt2(request.reference, trust_code=request.trust_code)
        except ModelportError:
            raise
        except Exception:
            inputs = None
    return ResolvedModel(module=module, source=facts, inputs=inputs, task=request.task)


def _resolve_factory(request: SourceRequest) -> ResolvedModel:
    return _load(request)


def _resolve_pt2(request: SourceRequest) -> ResolvedModel:
    return _load(request, pt2_inputs=True)


def _resolve_file(request: SourceRequest) -> ResolvedModel:
    return _load(request)


@hookimpl
def register_sources(register: Any) -> None:
    register(SourceSpec(
        name="factory", display_name="Python factory", resolve=_resolve_factory, claims=_is_factory,
        description="package.module:function or path/to/file.py:function returning an nn.Module (--model-kwargs)",
        examples=("models.py:build", "torchvision.models:resnet18"),
    ))
    register(SourceSpec(
        name="pt2", display_name="torch.export archive", resolve=_resolve_pt2,
        claims=lambda ref: _archive(ref) == "pt2",
        description="a .pt2 written by torch.export.save; its input shapes, dtypes and dynamic axes come with it",
        examples=("model.pt2",),
    ))
    register(SourceSpec(
        name="torchscript", display_name="TorchScript archive", resolve=_resolve_file,
        claims=lambda ref: _archive(ref) == "torchscript",
        description="a TorchScript archive written by torch.jit.save",
        examples=("model.torchscript",),
    ))
    register(SourceSpec(
        name="file", display_name="PyTorch file", resolve=_resolve_file, claims=lambda ref: True,
        description="any other file: a pickled whole nn.Module loads only with --trust-code",
        examples=("model.pt",),
    ))

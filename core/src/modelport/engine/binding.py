"""Bind named inputs to the model's forward parameters by name, and hand each format a pristine copy.

A decoder's forward is ``(input_ids, attention_mask=None, position_ids=None, ...)``: given ``input_ids`` and
``position_ids``, a positional call feeds ``position_ids`` into ``attention_mask``. Every input is therefore
bound to the parameter of its name (a keyword argument); order counts only for positional-only parameters and
for inputs that land in ``*args``. The reference run calls the model through the binding, and formats receive
a :class:`BoundModel` whose forward takes the inputs positionally, in the spec's order, with the spec's names
(so exporters name the graph's inputs after them), and calls the model with keyword arguments.

Exporting runs the model (tracing), and a model may keep state from one call to the next (a detection head
that caches the last input shape). :func:`pristine_copy` copies the model before anything runs it; each format
exports from its own copy, so no format's result depends on which ran before it.
"""

from __future__ import annotations

import copy
import inspect
import keyword
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelport.engine.inputs import InputSpec
from modelport.errors import ConfigError

_P = inspect.Parameter


@dataclass(frozen=True)
class Binding:
    """How each named input reaches forward: ``positional`` names in call order, ``keyword`` names by name.

    ``identity`` is True when calling ``model(*inputs)`` in the spec's order is exactly the keyword call (the
    names are the forward's first positional parameters, in order): then no wrapper is needed.
    """

    names: tuple[str, ...]
    positional: tuple[str, ...] = ()
    keyword: tuple[str, ...] = ()
    identity: bool = True
    accepted: tuple[str, ...] = ()
    signature: str | None = None
    notes: tuple[str, ...] = field(default=())

    def call(self, model: Any, tensors: Mapping[str, Any]) -> Any:
        """Call ``model`` with the named tensors bound as this binding says."""
        args = [tensors[n] for n in self.positional]
        kwargs = {n: tensors[n] for n in self.keyword}
        return model(*args, **kwargs)

    def describe(self) -> dict[str, Any]:
        """For export.json: the forward signature and how each input was passed."""
        how = dict.fromkeys(self.keyword, "keyword")
        how.update({n: f"positional #{i}" for i, n in enumerate(self.positional)})
        out: dict[str, Any] = {"forward": self.signature, "inputs": {n: how[n] for n in self.names},
                               "wrapped": not self.identity}
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def forward_signature(model: Any) -> inspect.Signature | None:
    """The signature of ``model.forward`` (self excluded), or None when Python cannot tell (TorchScript)."""
    fn = getattr(model, "forward", None)
    if fn is None:
        return None
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _plain(sig: inspect.Signature) -> inspect.Signature:
    """The signature without annotations: what a user needs to see in a message."""
    return sig.replace(parameters=[p.replace(annotation=_P.empty) for p in sig.parameters.values()],
                       return_annotation=inspect.Signature.empty)


def plan_binding(model: Any, spec: InputSpec) -> tuple[InputSpec, Binding]:
    """Match the spec's names to forward's parameters; reorder the spec to forward's order where it can.

    Raises ConfigError (exit 3) for a name forward does not accept, for a required parameter with no input, and
    for inputs that cannot be passed without feeding one into another's slot.
    """
    sig = forward_signature(model)
    names = tuple(spec.names)
    if sig is None:
        return spec, Binding(names, positional=names, identity=True, notes=("forward's signature is unknown "
                                                                           "(compiled module): inputs passed by position",))
    sig = _plain(sig)
    params = list(sig.parameters.values())
    named = [p for p in params if p.kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY)]
    by_name = {p.name: p for p in named}
    var_pos = any(p.kind == _P.VAR_POSITIONAL for p in params)
    var_kw = any(p.kind == _P.VAR_KEYWORD for p in params)
    accepted = tuple(p.name for p in named)
    unknown = [n for n in names if n not in by_name]
    leading = [p for p in named if p.kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)]
    if unknown and len(unknown) == len(names) and not (var_pos or var_kw) and len(names) <= len(leading):
        return spec, _bind_by_position(sig, names, named, leading)
    if unknown and not (var_pos or var_kw):
        raise ConfigError(
            f"the model's forward{sig} takes no input named {', '.join(repr(n) for n in unknown)}; "
            f"it accepts: {', '.join(accepted) or '(no named inputs)'}"
        )
    extras_positional = bool(unknown) and var_pos
    order = [p.name for p in named]
    known = sorted((n for n in names if n in by_name), key=order.index)
    ordered_names = known + [n for n in names if n not in by_name]
    ordered = InputSpec([spec[n] for n in ordered_names])

    given = set(names)
    positional, kw = _positional_and_keyword(named, given, extras_positional)
    _check_no_gaps(sig, leading, order, given, positional, extras_positional)
    if unknown:
        if extras_positional:
            positional.extend(unknown)
        else:
            kw.extend(unknown)
    missing = [p.name for p in named if p.name not in given and p.default is _P.empty]
    if missing:
        raise ConfigError(f"the model's forward{sig} also needs input(s) {', '.join(missing)}; add --input for them")
    leading_names = [p.name for p in leading]
    identity = not unknown and ordered_names == leading_names[: len(ordered_names)]
    if identity:
        positional, kw = list(ordered_names), []
    return ordered, Binding(tuple(ordered_names), tuple(positional), tuple(kw), identity, accepted, str(sig))


def _bind_by_position(sig: inspect.Signature, names: tuple[str, ...], named: Sequence[inspect.Parameter],
                      leading: Sequence[inspect.Parameter]) -> Binding:
    """No name matches any parameter: the inputs are unnamed (a preset's "input", an .npz's keys) and go by
    position, as forward lists its parameters."""
    missing = [p.name for p in leading[len(names):] if p.default is _P.empty]
    if missing:
        raise ConfigError(f"the model's forward{sig} also needs input(s) {', '.join(missing)}; add --input for "
                          "them (or name every input after forward's parameters)")
    pairs = ", ".join(f"{n} -> {p.name}" for n, p in zip(names, leading, strict=False))
    return Binding(names, positional=names, identity=True, accepted=tuple(p.name for p in named),
                   signature=str(sig), notes=(f"no input is named after a forward parameter: bound by "
                                              f"position ({pairs})",))


def _positional_and_keyword(named: Sequence[inspect.Parameter], given: set[str],
                            extras_positional: bool) -> tuple[list[str], list[str]]:
    """The given parameters passed by position (positional-only, or all when inputs go to ``*args``) and by name."""
    positional: list[str] = []
    kw: list[str] = []
    for p in named:
        if p.name not in given:
            continue
        if p.kind == _P.POSITIONAL_ONLY or (extras_positional and p.kind == _P.POSITIONAL_OR_KEYWORD):
            positional.append(p.name)
        else:
            kw.append(p.name)
    return positional, kw


def _check_no_gaps(sig: inspect.Signature, leading: Sequence[inspect.Parameter], order: list[str], given: set[str],
                   positional: list[str], extras_positional: bool) -> None:
    """A positional parameter cannot be skipped when a later one is passed by position: the later one would
    land in its slot. With inputs going to *args, every positional parameter before *args must be given."""
    if extras_positional:
        gaps = [p.name for p in leading if p.name not in given]
    elif positional:
        last = max(order.index(n) for n in positional)
        gaps = [p.name for p in leading if p.kind == _P.POSITIONAL_ONLY and p.name not in given
                and order.index(p.name) < last]
    else:
        gaps = []
    if gaps:
        raise ConfigError(f"the model's forward{sig} needs input(s) {', '.join(gaps)} before the others can be "
                          "passed in their places; add --input for them")


def _is_identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) and name != "self"


def bind_model(model: Any, binding: Binding) -> Any:
    """The module formats export: ``model`` itself when positions already match, else a :class:`BoundModel`."""
    if binding.identity:
        return model
    return BoundModel(model, binding)


def BoundModel(model: Any, binding: Binding) -> Any:  # a class factory: torch is imported lazily
    """An ``nn.Module`` whose forward takes the inputs in spec order, named as in the spec, and calls ``model``
    with each bound to its own parameter (keyword arguments)."""
    import torch

    names = list(binding.names)
    # a real signature with one named parameter per input: exporters name graph inputs after forward's parameters,
    # and torch.export matches dynamic_shapes to them (a *args forward would not match a tuple of shapes)
    params = ", ".join(n if _is_identifier(n) else f"_modelport_input_{i}" for i, n in enumerate(names))
    src = f"def forward(self, {params}):\n    return self._modelport_call(({params},))\n"
    scope: dict[str, Any] = {}
    exec(compile(src, "<modelport.engine.binding>", "exec"), scope)  # every name is a checked identifier
    forward = scope["forward"]

    class ModelportBound(torch.nn.Module):
        """Inputs in spec order → the wrapped model's forward, each by its name."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self._modelport_binding = binding  # format objects get the user's module and this (format_objects.py)

        def _modelport_call(self, args: Sequence[Any]) -> Any:
            return binding.call(self.model, dict(zip(names, args, strict=True)))

    ModelportBound.forward = forward  # type: ignore[method-assign]
    bound = ModelportBound()
    bound.train(model.training)
    return bound


def pristine_copy(model: Any) -> tuple[Any, str | None]:
    """A copy of ``model`` sharing its parameters (no weight memory doubled) with everything else copied.

    Buffers and Python attributes a forward may change (cached shapes, anchor grids, call counters) are
    copied. Returns (copy, None), or (model, why) when the model cannot be copied.
    """
    memo: dict[int, Any] = {}
    try:
        for p in model.parameters():
            memo[id(p)] = p
    except Exception:  # not an nn.Module with parameters(): copy it whole
        memo = {}
    try:
        return copy.deepcopy(model, memo), None
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return model, f"the model cannot be copied ({type(exc).__name__}: {msg})"[:300]

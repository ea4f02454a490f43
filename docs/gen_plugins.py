"""Write the generated parts of docs/plugins.md from the code: the hook reference (modelport/plugins/hookspecs.py) and the
reference of the records that cross the plugin boundary (modelport/plugins/types.py, modelport/engine/inputs.py, modelport/errors.py).

    python docs/gen.py           # rewrite the generated pages, these blocks among them
    python docs/gen.py --check   # exit 1 when they are out of date (core/tests/test_docs_reference.py)

Only the text between ``<!-- BEGIN GENERATED: x -->`` and ``<!-- END GENERATED: x -->`` is replaced.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "plugins.md"


def rst_to_md(text: str) -> str:
    """The few reST constructs our docstrings use, as Markdown."""
    text = re.sub(r":(?:class|func|mod|meth|attr|data):`~?([^`]+)`", r"`\1`", text)
    text = text.replace("``", "`")
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^:param\s+(\w+):\s*(.*)$", line)
        r = re.match(r"^:returns?:\s*(.*)$", line)
        x = re.match(r"^:raises\s+([\w.]+):\s*(.*)$", line)
        if m or r or x:
            if m:
                label, body = f"`{m.group(1)}`", [m.group(2)]
            elif r:
                label, body = "**returns**", [r.group(1)]
            else:
                assert x is not None
                label, body = f"**raises** `{x.group(1)}`", [x.group(2)]
            while i + 1 < len(lines) and lines[i + 1].startswith("    "):
                i += 1
                body.append(lines[i].strip())
            out.append(f"- {label}: {' '.join(body)}")
        elif line.rstrip().endswith("::"):
            out.append(line.rstrip()[:-1])
            block = []
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                block.append(lines[i][4:])
                i += 1
            while block and not block[0].strip():
                block.pop(0)
            while block and not block[-1].strip():
                block.pop()
            out += ["", "```python" if "def " in "".join(block) or "import" in "".join(block) else "```toml",
                    *block, "```", ""]
            continue
        else:
            out.append(line)
        i += 1
    return "\n".join(out).strip()


def _annotation(a: Any) -> str:
    if a is inspect.Parameter.empty:
        return ""
    return a if isinstance(a, str) else inspect.formatannotation(a)


def signature(fn: Any, name: str | None = None, *, method: bool = False) -> str:
    sig = inspect.signature(fn)
    params = []
    for p in sig.parameters.values():
        if method and p.name in ("self", "cls"):
            continue
        text = p.name if p.kind is not p.VAR_KEYWORD else f"**{p.name}"
        if p.kind is p.VAR_POSITIONAL:
            text = f"*{p.name}"
        if p.annotation is not p.empty:
            text += f": {_annotation(p.annotation)}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        params.append(text)
    ret = f" -> {_annotation(sig.return_annotation)}" if sig.return_annotation is not sig.empty else ""
    return f"{name or fn.__name__}({', '.join(params)}){ret}"


def hooks_block() -> str:
    """One section per hookspec, in the order hookspecs.py declares them."""
    from modelport.plugins import hookspecs

    lines: list[str] = []
    for name, fn in vars(hookspecs).items():
        opts = getattr(fn, "modelport_spec", None)
        if opts is None:
            continue
        kind = ("**first result wins** — the first non-None value is used; return None for requests that are not yours"
                if opts.get("firstresult") else "**all implementations are called**")
        lines += [f"### `{name}`", "", "```python", "@modelport.hookimpl", f"def {signature(fn)}: ...", "```", "",
                  kind, "", rst_to_md(inspect.getdoc(fn) or ""), ""]
    return "\n".join(lines).rstrip()


def _param_docs(cls: type) -> dict[str, str]:
    doc = inspect.getdoc(cls) or ""
    found: dict[str, str] = {}
    for m in re.finditer(r":param\s+([\w /]+):\s*(.+?)(?=\n:param|\n\n|\Z)", doc, re.S):
        for name in m.group(1).split("/"):
            found[name.strip()] = rst_to_md(" ".join(m.group(2).split()))
    return found


# Meanings for fields whose class docstring has no ``:param:`` line (the docstring wins when it has one).
FIELD_NOTES: dict[str, dict[str, str]] = {
    "FormatSpec": {"description": "one line shown by `modelport formats`",
                   "config_aliases": "multi-framework config keys → your option names (`{\"opset_version\": \"opset\"}`)"},
    "OptionSpec": {"name": "the key users pass as `-o name=value`", "type": "`bool`, `int`, `float`, `str`, `choice`, "
                   "`path` or `json`", "default": "used when the user does not pass the option", "help": "one line "
                   "shown in the docs and errors", "choices": "allowed values of a `choice` option",
                   "aliases": "other keys accepted for this option",
                   "tune": "values `modelport optimize` tries (None: not searched)",
                   "runtime": "the option only changes how the artifact is run, not the file: `modelport optimize` "
                   "exports once and passes each value to `load_runner` in its options (read it there first, then "
                   "from `artifact.options`, where it is recorded)",
                   "tune_when": "`tune` is tried only where each named option has one of these values (`{\"int8\": "
                   "(True,)}`): a setting that means something only with another one does not multiply the search",
                   "calibration": "the value is a number of calibration items: `modelport optimize` caps `tune` at the "
                   "items it holds out of `--sample-inputs` for calibration, hands the export exactly that many, and "
                   "never scores on them (docs/optimize.md)"},
    "Availability": {"export": "the format can export here", "validate": "its artifacts can run here",
                     "reason": "why it cannot export", "validate_reason": "why its artifacts cannot run here",
                     "fix": "the command that fixes it (`pip install ...`)"},
    "ExportRequest": {"format": "the format to write (a hook-style plugin returns None when it is not its own)",
                      "model": "the `nn.Module`, in eval mode (a format object gets the user's own module; a hook the "
                               "positional wrapper, see `positional_model()`)", "inputs": "names, shapes, dtypes, dynamic axes",
                      "example_inputs": "torch tensors in forward order, at the example batch",
                      "options": "this format's options, parsed and defaulted", "workdir": "the only folder to write in",
                      "output_names": "the model's outputs as the core flattens them (`output`, `output.0`, `logits`...)",
                      "task": "`classification`, `detection`, `text-encoding`... or None",
                      "model_name": "the export's model name", "threads": "thread count to use, or None for the default",
                      "sample_inputs": "real inputs from `--sample-inputs`, one dict of numpy arrays per sample, or None",
                      "metadata": "what is known before export: `model_name`, `task_type`, `class_names`, `preprocessing`..."},
    "TensorSpec": {"name": "input name, as the forward parameter", "shape": "example shape",
                   "dtype": "`float32`, `int64`...", "dynamic": "dynamic axes: axis → label (`{0: \"batch\"}`)",
                   "low": "lowest integer value generated", "high": "integer values generated are below this"},
    "Artifact": {"format": "the format written", "options": "filled in by the core: the options used"},
    "PublisherSpec": {"scheme": "the URL scheme (`hf` for `hf://...`)", "display_name": "human name",
                      "options": "the publisher's options", "availability": "a cheap check, as for formats",
                      "can_pull": "whether `modelport pull` works for this scheme", "description": "one line",
                      "can_list": "whether `modelport list` / `info` and `modelport.zoo` work for this scheme "
                                  "(implement `list_models`)",
                      "token_env": "environment variables holding the token (`(\"HF_TOKEN\",)`): their values are "
                                   "redacted from every message, log and file once the plugin is loaded"},
    "Target": {"scheme": "`file`, `hf`, `github`...", "location": "everything after `://`", "raw": "the target as given"},
    "PublishResult": {"url": "where the export can be found", "revision": "commit, tag or version created",
                      "files": "files uploaded", "skipped": "files already there and unchanged",
                      "message": "one line for the user"},
    "PullResult": {"source": "where the files came from", "files": "files written into `dest`"},
}


def _summary(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    paragraphs = [p for p in doc.split("\n\n") if not p.lstrip().startswith(":param")]
    return rst_to_md("\n\n".join(paragraphs))


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
        if callable(value):
            return f"`{getattr(value, '__qualname__', repr(value))}`"
        return f"`{value!r}`"
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f"`{f.default_factory()!r}`"  # type: ignore[misc]
    return "required"


def type_section(cls: type) -> list[str]:
    lines = [f"### `{cls.__name__}`", "", _summary(cls), ""]
    if dataclasses.is_dataclass(cls):
        params = {**FIELD_NOTES.get(cls.__name__, {}), **_param_docs(cls)}
        lines += ["| field | type | default | meaning |", "|---|---|---|---|"]
        for f in dataclasses.fields(cls):
            if f.name.startswith("_"):
                continue
            typ = str(f.type).replace("|", "\\|")
            lines.append(f"| `{f.name}` | `{typ}` | {_default(f)} | {params.get(f.name, '').replace('|', chr(92) + '|')} |")
        lines.append("")
    members = []
    for attr, value in vars(cls).items():
        if attr.startswith("_") or attr in getattr(cls, "__dataclass_fields__", {}):
            continue
        fn = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
        if isinstance(value, property):
            doc = (inspect.getdoc(value.fget) or "").split("\n")[0]
            ret = _annotation(inspect.signature(value.fget).return_annotation)
            members.append(f"- `{attr}` (property{', ' + ret if ret else ''}){': ' + rst_to_md(doc) if doc else ''}")
        elif inspect.isfunction(fn):
            doc = (inspect.getdoc(fn) or "").split("\n")[0]
            members.append(f"- `{signature(fn, attr, method=True)}`{': ' + rst_to_md(doc) if doc else ''}")
    if members:
        lines += [*members, ""]
    return lines


def types_block() -> str:
    """The records a plugin receives and returns, the helpers it calls and the errors it raises."""
    import modelport
    from modelport import errors
    from modelport.engine.inputs import InputSpec, TensorSpec
    from modelport.plugins import types

    lines: list[str] = []
    for cls in (types.FormatSpec, types.OptionSpec, types.Availability, types.ExportRequest, InputSpec, TensorSpec,
                types.Artifact, types.ValidationRun, types.PublisherSpec, types.Target, types.PublishResult,
                types.PullResult, types.ModelEntry, types.PublishedExport):
        lines += type_section(cls)
    from modelport.plugins import format_base

    for cls in (format_base.FormatObject, format_base.RunnerValidation, format_base.PerModuleIntermediates):
        lines += type_section(cls)
    lines += ["### Helpers", ""]
    for fn in (types.requires, types.missing_modules):
        lines.append(f"- `modelport.{signature(fn)}`: {rst_to_md((inspect.getdoc(fn) or '').splitlines()[0])}")
    lines += ["", "### Errors", "", "Raise these from hooks; each carries its exit code. Any other exception is reported "
              "as a failure of your plugin (exit 1), naming it and its version.", "",
              "| exception | exit code | when |", "|---|---|---|"]
    for name in ("ExportFailed", "ConfigError", "ModelLoadError", "ValidationFailed", "PublishError",
                 "PluginContractError", "ModelportError"):
        cls = getattr(errors, name)
        assert getattr(modelport, name) is cls
        doc = (inspect.getdoc(cls) or "").splitlines()[0]
        lines.append(f"| `modelport.{name}` | {cls.exit_code} | {doc} |")
    return "\n".join(lines).rstrip()


BLOCKS = {"hooks": hooks_block, "types": types_block}


def render(text: str) -> str:
    """``text`` with every generated block replaced by its current content."""
    for key, make in BLOCKS.items():
        begin, end = f"<!-- BEGIN GENERATED: {key} -->", f"<!-- END GENERATED: {key} -->"
        if begin not in text or end not in text:
            raise ValueError(f"{OUT.name} has no {begin} ... {end} block")
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{begin}\n<!-- generated by docs/gen_plugins.py; do not edit by hand -->\n\n{make()}\n\n{end}{tail}"
    return text

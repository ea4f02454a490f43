"""Write docs/errors.md from the bad-input corpus that core/tests/test_errors.py runs through the real CLI.

Examples are shown as a user would type them from the repository root: the bundled model as
``examples/models.py:small_cnn`` and each prepared bad file by a short relative name (listed on the page), never
the absolute paths of the machine that generated the page.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "errors.md"
TESTS = ROOT / "core" / "tests"

# placeholder in the corpus → (the name shown, what the file is)
FILES = {
    "empty": ("empty.pt2", "an empty file"),
    "garbage_pt2": ("garbage.pt2", "bytes that are not a zip archive"),
    "truncated_pt2": ("truncated.pt2", "a .pt2 archive cut in half"),
    "wrong_keys": ("wrongkeys.pt", "a state dict whose keys fit no layer of the model"),
    "corrupt_ckpt": ("corrupt.pt", "a checkpoint with a zip header and garbage after it"),
    "pickled_module": ("whole_module.pt", "a whole pickled nn.Module (torch.save(model))"),
    "dir": ("dir.pt2", "a folder named like a model file"),
    "existing": ("existing", "a non-empty folder"),
    "bad_classes": ("classes.json", "invalid JSON"),
    "no_meta": ("no_meta", "an empty folder"),
    "bad_metadata": ("bad_metadata", "an export folder whose metadata.json fails the schema"),
    "bad_npz": ("fake.npz", "a file that is not an .npz archive"),
    "torchscript": ("program.torchscript", "a TorchScript archive from elsewhere (a program)"),
    "pickled_pt2": ("pickled.pt2", "a .pt2 whose weight config says use_pickle"),
    "deep_json": ("deep.json", "JSON nested 200,000 levels deep"),
}

FIXES = {
    'missing model file': 'check the path; a factory is `package.module:function` or `path/to/file.py:function`',
    'empty model file': 're-save the model (`torch.export.save`)',
    'garbage pt2': 'pass a file written by `torch.export.save`',
    'truncated pt2': 'the download or copy was cut short: fetch the file again',
    'directory as model': 'point MODEL at the file inside',
    'factory module missing': 'install the package or run from the folder that holds it',
    'factory attr missing': 'check the function name after the colon',
    'factory file missing': 'check the path before the colon',
    'bad model kwargs type': 'pass only keyword arguments the factory accepts',
    'model kwargs not json': 'quote a JSON object: `--model-kwargs \'{"num_classes": 10}\'`',
    'checkpoint wrong keys': 'use `--checkpoint-prefix` to strip a prefix, or `--no-strict` to allow partial loads',
    'corrupt checkpoint': 're-save it with `torch.save(model.state_dict(), path)`',
    'missing checkpoint': 'check the path',
    'pickled module refused': 'export a `.pt2`, or give `module:factory --checkpoint`; `--trust-pickle` only for files you trust',
    'input shape rejected': "give the shape the model's forward expects (`--input NAME:SHAPE:DTYPE`)",
    'input wrong dtype': 'give the dtype the model expects (e.g. float32 images, int64 token ids)',
    'input spec unparsable': 'write `NAME:1x3x224x224[:DTYPE[:LOW,HIGH]]`',
    'input zero dim': 'dimensions are positive integers',
    'input negative dim': 'dimensions are positive integers',
    'input unknown dtype': 'use float32, float16, bfloat16, float64, int64, int32, int16, int8, uint8 or bool',
    'no input spec': 'add `--input`, `--vision CxHxW` or `--text SEQ[:VOCAB]`',
    'two presets': 'use one of `--input`, `--vision`, `--text`',
    'bad dynamic spec': 'write `--dynamic NAME:AXIS[=label]`',
    'dynamic unknown input': 'use a name from the input spec',
    'dynamic axis out of range': "axes count from 0 and must exist in the input's shape",
    'unknown format': 'see `modelport formats`',
    'no format': 'add `-f onnx,pt2` (or `-f all`)',
    'format not installed': 'run the pip command in the message',
    'invalid export config': 'pass a JSON object (or a .json file)',
    'export config not object': 'pass a JSON object, not a list',
    'unknown option': "see the format's options: `modelport formats --options FORMAT`",
    'unknown config key': "fix the key the message names; `modelport formats --options FORMAT` lists each format's keys",
    'option wrong type': 'booleans are true/false, numbers are numbers, choices are listed in the message',
    'option without value': 'write `-o key=value` or `-o format.key=value`',
    'option for other format': 'add that format to `-f`, or drop the option',
    'existing output': 'pass `--force` to replace it, or choose another `--output-dir`',
    'class names bad json': 'a JSON list, a {index: name} object, or one name per line',
    'class names missing': 'check the path',
    'bad sample inputs': 'save real inputs with `numpy.savez(path, input=array)`, one array per input name',
    'unsafe model name': 'model names are single path components: no `/`, `..` or absolute paths',
    'bad threads': 'give a positive integer',
    'unknown flag': 'see `modelport export --help`',
    'validate missing dir': 'point at an export folder (it holds export.json)',
    'validate dir without record': 'point at an export folder written by modelport',
    'validate a file': 'point at the folder, not the artifact',
    'inspect missing': 'check the path',
    'inspect unknown type': 'install the plugin for that format (`modelport formats`)',
    'inspect empty file': 'the file is empty: re-export',
    'inspect dir without metadata': 'point at an export folder written by modelport',
    'publish unknown scheme': 'use file://, hf:// or github:// (install the plugin)',
    'publish no scheme': 'write the target as a URL: `file://DIR`, `hf://OWNER/REPO`, `github://OWNER/REPO@TAG`',
    'publish missing dir': 'check the export folder path',
    'publish dir without metadata': 'publish a folder written by `modelport export`',
    'pull missing source': 'check the registry path: `file://DIR/<model_name>/<version>`',
    'pull uninstalled scheme': 'install the publisher plugin in the message',
    'list missing registry': 'check the registry path: `file://DIR` is the folder `modelport publish` wrote to',
    'info without a name': 'name the model: `TARGET/NAME[@VERSION]`, e.g. `file://DIR/cnn@v2`, `hf://OWNER/REPO`',
    'info unknown model': 'see what is there with `modelport list TARGET`',
    'compare missing': 'both arguments are export folders (or `pytorch` for B)',
    'bench missing': 'pass export folders',
    'bench bad batch': 'write `--batch 1,8`',
    'non-UTF-8 model path': 'check the path (undecodable bytes are shown as `\\udcXX`)',
    'non-UTF-8 export dir': 'check the path',
    'metadata fails the schema': 'the message names the first violation; re-export, or fix the field',
    'publish metadata fails the schema': 'only exports whose metadata.json passes the schema are published',
    'inspect metadata fails the schema': 're-export, or fix the field',
    'pickled pt2 refused': 'the .pt2 holds pickled parts that would run code on load; re-save it with `torch.export.save`, or pass `--trust-code` if you trust where it came from (docs/security.md)',
    'torchscript model refused': 'a TorchScript archive is a program; give `module:factory` or a `.pt2`, or pass `--trust-code` if you trust it',
    'torchscript checkpoint refused': 'a checkpoint is a state dict: `torch.save(model.state_dict(), path)`',
    'force over a user folder': '`--force` replaces only an export folder modelport wrote; choose another `--output-dir`',
    'garbage pt2 without input spec': 'pass a file written by `torch.export.save`',
    'threads out of range': 'give 1 … 1024 threads',
    'batch zero': 'give a positive batch size',
    'negative tolerance': 'tolerances are finite numbers ≥ 0',
    'NaN tolerance': 'tolerances are finite numbers ≥ 0',
    'bench negative max seconds': 'give a finite number of seconds > 0',
    'dimension beyond int64': 'each dimension is at most 2^31-1, and an example input holds at most 2^31 elements',
    'text vocab beyond int64': 'VOCAB must fit in int64',
    'deeply nested config': 'pass a flat JSON object',
    'dynamic_axes of the wrong shape': '`true`, `{"input": [0]}` or `{"input": {"0": "batch"}}`',
}

HEADER = "# Error reference\n\nEvery error is one line on stderr that starts with `error:` and says what failed and why; the exit code tells\nwhat kind of failure it was. Add `--debug` for the traceback. Nothing is left at the target path and no\ntemporary folder is left behind (a killed run's leftovers are removed by the next run in the same folder).\n\n| exit | meaning |\n|---|---|\n| 0 | success |\n| 1 | export failed: the model, checkpoint or converter failed; a plugin raised; the disk is full or read-only; a publish or pull failed |\n| 2 | the artifact was written but does not match PyTorch within tolerance, or validation was inconclusive (empty, all-zero or input-independent reference outputs; `--allow-inconclusive` makes that 0) |\n| 3 | configuration error: bad arguments, unknown or unavailable format, invalid options, existing output without `--force`; an export folder whose record is corrupt or whose files changed since export |\n| 130 | interrupted (Ctrl-C); temporary files removed |\n| 143 | terminated (SIGTERM: `timeout`, `docker stop`, Kubernetes); temporary files removed |\n\n## Bad inputs and what to do\n\nThis table is generated from the corpus `core/tests/test_errors.py` runs through the real CLI (`python docs/gen.py`;\nthe core tests fail when it is stale). The examples run from the repository root; the files they name are:\n\n{files}\n\n"
FOOTER = ("## Failures outside the table\n\n| situation | exit | message starts with |\n|---|---|---|\n| disk full while writing | 1 | `FORMAT: cannot write the export near PATH: No space left on device` |\n| output folder on a read-only file system | 1 | `FORMAT: cannot write the export near PATH: Read-only file system` |\n| a plugin raises inside a hook | 1 | `FORMAT: HOOK failed in DISTRIBUTION VERSION: ErrorType: message` |\n| a plugin returns the wrong type | 1 | `plugin DISTRIBUTION VERSION broke the contract: ...` |\n| two plugins register one format | 0 | no error: the first keeps it; `modelport plugins` shows the other as `conflict`: `format 'X' is already registered by A; this plugin is not loaded ...` |\n| a plugin's `describe_metadata` sets a core-owned field (`validation`, `files`, ...) or another format's schema field | 1 | `plugin DISTRIBUTION VERSION broke the contract: describe_metadata may not set ...` |\n| validation beyond tolerance | 2 | `FORMAT: exported to PATH but validation failed: OUTPUT: max abs diff ... (would pass with atol ...)` |\n| files changed after export (`validate`, `bench`, `compare`, `inspect`, `publish`, `debug`) | 3 | `EXPORT_DIR: files changed since export: NAME (sha256 mismatch)` (or `(missing)`, `(symbolic link)`) |\n| pulled file does not match metadata.json | 1 | `... refusing the download, sha256 does not match metadata.json` |\n| Ctrl-C | 130 | `interrupted; temporary files removed` |\n"
    "| SIGTERM (`timeout`, `docker stop`, Kubernetes, CI) | 143 | `terminated (SIGTERM); temporary files removed` |\n"
    "| a pulled or copied export whose artifact would run code (`validate`, `bench`, `compare`, `inspect`) | 3 | `DIR: model.pt2: loading this .pt2 would run code from it (pickled weight ...); refused, nothing was run — pass --trust-code ...` |\n"
    "| `bench` of an export not sealed on this machine | 0 | a `pytorch` row: `not measured: this export was not written by modelport on this machine ... pass --trust-code if you trust it` |\n"
    "| `reference.npz` declaring more than 1 GiB of arrays | 3 | `PATH: declares 24.0 GiB of arrays, more than the 1.0 GiB modelport reads from a reference file` |\n"
    "| `pull --force` into a folder that is not an export (the registry itself, user files) | 3 | `DEST exists and is not an export folder modelport wrote ...` |\n"
    "| `--force` over a good export, and the new one fails validation | 2 | `FORMAT: exported to TARGET.failed but validation failed: ... (the previous export at TARGET was kept)` |\n"
    "| a plugin raises `ValidationFailed` from its validate hook | 2 | the folder is kept: exit 2 always means written and kept, but validation failed |\n"
    "| an ONNX model naming external data outside its folder (`inspect`) | 3 | `PATH: cannot be read (... external data location(s) outside the model's folder ...)` |\n")


def _corpus() -> list[tuple[str, list[str], int, str]]:
    sys.path.insert(0, str(TESTS))
    try:
        spec = importlib.util.spec_from_file_location("_modelport_error_cases", TESTS / "test_errors.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return list(module.CASES)
    finally:
        sys.path.remove(str(TESTS))


def _shown(arg: str) -> str:
    """One argument as typed from the repository root: relative paths, named example files, shell quoting."""
    arg = arg.replace(str(ROOT) + "/", "").replace("{tmp}/", "")
    for key, (name, _what) in FILES.items():
        arg = arg.replace("{" + key + "}", name)
    unknown = re.findall(r"\{([a-z_]+)\}", arg)
    if unknown:
        raise SystemExit(f"docs/gen_errors.py: no example name for {{{unknown[0]}}}; add it to FILES")
    if any("\udc80" <= ch <= "\udcff" for ch in arg):  # undecodable bytes, shown as Python writes them
        return arg.encode("utf-8", "backslashreplace").decode("ascii")
    return shlex.quote(arg)


def render() -> str:
    rows = ["| case | example | exit | fix |", "|---|---|---|---|"]
    for case, args, code, _needle in _corpus():
        if case not in FIXES:
            raise SystemExit(f"docs/gen_errors.py: case {case!r} has no fix; add one to FIXES")
        command = " ".join(["modelport", *(_shown(a) for a in args)]).replace("|", "\\|")
        rows.append(f"| {case} | `{command}` | {code} | {FIXES[case]} |")
    files = "\n".join(f"- `{name}`: {what}" for name, what in FILES.values())
    return HEADER.format(files=files) + "\n".join(rows) + "\n\n" + FOOTER


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")

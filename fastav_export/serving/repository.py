"""`fastav-export triton`: render a Triton model repository for an engine directory.

    REPO/.fastav-repository.json    what rendered it (lets a re-render replace the repository)
    REPO/<name>/config.pbtxt        decoupled: one response per generated token, then a summary
    REPO/<name>/1/model.py
    REPO/<name>_oneshot/...         the same model answering with one response (works over HTTP)

Files are rendered from `templates/` with `string.Template`; a placeholder left unfilled
is an error, never a literal `${...}` in a config. The engine directory is referenced by
its absolute path (a config parameter), not copied: engines can be many gigabytes, and
the model re-validates the directory (sha256 of every file) when it loads, so an engine
changed or moved after rendering makes the model fail to load with that reason.

Everything is written inside REPO: each model is rendered into a hidden `REPO/.<model>.partial-<pid>/`,
then each is renamed into place; an older rendering is moved aside first and removed
only once the new one is complete.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from .. import __version__
from ..engine.manifest import EngineManifest
from ..errors import FastAVError
from ..models.registry import DEFAULT_PLACEHOLDER_ID
from ..user_io.output_paths import (
    check_can_create,
    partial_directory,
    replace_directory,
    write_text_atomic,
)
from .tritonserver import check_stub_path

MARKER = ".fastav-repository.json"
ONESHOT_SUFFIX = "_oneshot"
TEMPLATES = ("config.pbtxt", "model.py")
# Triton model names become directory names: one plain path component.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MM_DTYPES = {"fp32": "TYPE_FP32", "fp16": "TYPE_FP16"}


@dataclass(frozen=True)
class RepositorySettings:
    name: str
    instances: int = 1
    max_new_tokens: int = 16  # default per request; a request may ask for up to the engine's limit
    placeholder_id: int = DEFAULT_PLACEHOLDER_ID
    mm_dtype: str = "fp32"
    threads: int = 0  # ONNX Runtime intra-op threads per instance (0: the machine's cores split between instances)
    kv_budget_mib: float = 1024.0  # KV memory the decode batch of one instance may hold
    max_queue: int = 64  # requests that may wait for KV room per instance; more get "server busy"
    media_workers: int = 2  # threads per instance that decode and encode media requests beside the decoding


def template_text(name: str) -> str:
    return resources.files("fastav_export.serving").joinpath("templates", name).read_text()


def render(text: str, values: dict, what: str) -> str:
    """Fill every `${var}` of `text`; a missing value or a stray `$` is a one-line error."""
    try:
        return Template(text).substitute(values)
    except KeyError as exc:
        raise FastAVError(f"template {what} has the placeholder ${{{exc.args[0]}}} with no value: "
                          "this is a bug in fastav-export's templates") from None
    except ValueError as exc:
        raise FastAVError(f"template {what} has a malformed placeholder ({exc})") from None


def _check_settings(settings: RepositorySettings, manifest: EngineManifest) -> None:
    if not NAME_PATTERN.fullmatch(settings.name):
        raise FastAVError(f"--name {settings.name!r} is not a model name: use letters, digits, '_', '-', '.' "
                          "(it becomes a directory inside --out)")
    if settings.instances < 1:
        raise FastAVError(f"--instances {settings.instances}: run at least 1 model instance")
    if not 1 <= settings.max_new_tokens <= manifest.max_new_tokens:
        raise FastAVError(f"--max-new-tokens {settings.max_new_tokens} is outside 1..{manifest.max_new_tokens}, "
                          "the engine's limit: rebuild with a larger --max-new-tokens for more")
    if not settings.kv_budget_mib > 0:
        raise FastAVError(f"--kv-budget-mib {settings.kv_budget_mib}: give the KV memory in MiB, more than 0")
    if settings.max_queue < 0:
        raise FastAVError(f"--max-queue {settings.max_queue}: the number of waiting requests cannot be negative")
    if settings.media_workers < 1:
        raise FastAVError(f"--media-workers {settings.media_workers}: use at least 1 thread")
    if settings.mm_dtype not in MM_DTYPES:
        raise FastAVError(f"--mm-dtype {settings.mm_dtype}: use one of {', '.join(MM_DTYPES)}")


def model_values(settings: RepositorySettings, manifest: EngineManifest, streaming: bool) -> dict:
    engine_dir = str(Path(manifest.path).resolve())
    if any(c in engine_dir for c in '"\\\n'):
        raise FastAVError(f"the engine path {engine_dir!r} holds a quote, backslash or newline, which a Triton "
                          "config cannot carry: move the engine directory")
    if not engine_dir.isascii():
        raise FastAVError(f"the engine path {engine_dir} holds non-ASCII characters, which the Python inside "
                          "Triton 2.51's python backend stub cannot use in file names: move the engine directory "
                          "to an ASCII path")
    name = settings.name if streaming else settings.name + ONESHOT_SUFFIX
    mode = "streams one response per token, then a summary" if streaming else "answers with one response"
    return {
        "fastav_version": __version__,
        "description": f"{manifest.model} ({manifest.numerics}) from {engine_dir}: {mode}.",
        "model_name": name,
        "decoupled": "true" if streaming else "false",
        "mm_dtype": MM_DTYPES[settings.mm_dtype],
        "hidden_size": manifest.dims.hidden_size,
        "num_layers": manifest.dims.num_layers,
        "instances": settings.instances,
        "engine_dir": engine_dir,
        "max_new_tokens": settings.max_new_tokens,
        "placeholder_id": settings.placeholder_id,
        "threads": settings.threads,
        "kv_budget_mib": settings.kv_budget_mib,
        "max_queue": settings.max_queue,
        "media_workers": settings.media_workers,
    }


def check_out(out: Path) -> None:
    """Refuse to write into anything but an empty directory or an earlier rendering, or into a
    path the python backend cannot launch its stub from."""
    check_stub_path(Path(out).resolve(), f"--out {out}")
    if out.exists() and not out.is_dir():
        raise FastAVError(f"--out {out} exists and is not a directory: choose another --out")
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise FastAVError(f"--out {out} is a non-empty directory that `fastav-export triton` did not write: "
                          "choose another --out or empty it")
    check_can_create(out, f"--out {out}")


def render_repository(manifest: EngineManifest, out: Path, settings: RepositorySettings) -> list[str]:
    """Write the streaming and the one-shot model into `out`; returns the model names."""
    out = Path(out)
    _check_settings(settings, manifest)
    check_out(out)
    templates = {name: template_text(name) for name in TEMPLATES}
    rendered = {}
    for streaming in (True, False):  # render everything before touching the disk
        values = model_values(settings, manifest, streaming)
        rendered[values["model_name"]] = {name: render(text, values, name) for name, text in templates.items()}

    out.mkdir(parents=True, exist_ok=True)
    partials = {}
    try:
        for model, files in rendered.items():  # every model written in full before any is replaced
            partial = partials[model] = partial_directory(out / model)
            (partial / "1").mkdir(parents=True)
            (partial / "config.pbtxt").write_text(files["config.pbtxt"])
            (partial / "1" / "model.py").write_text(files["model.py"])
        for model in _previous_models(out):
            if model not in rendered:
                shutil.rmtree(out / model, ignore_errors=True)
        for model, partial in partials.items():
            replace_directory(out / model, partial)
        marker = {"fastav_export": __version__, "engine_dir": str(Path(manifest.path).resolve()),
                  "models": list(rendered)}
        write_text_atomic(out / MARKER, json.dumps(marker, indent=2) + "\n")
    finally:
        for partial in partials.values():
            shutil.rmtree(partial, ignore_errors=True)
    return list(rendered)


def _previous_models(out: Path) -> list[str]:
    if not (out / MARKER).is_file():
        return []
    try:
        models = json.loads((out / MARKER).read_text()).get("models", [])
    except (OSError, json.JSONDecodeError, AttributeError):
        models = []
    # Only plain names: a damaged marker must never make us move things outside `out`.
    return [m for m in models if isinstance(m, str) and NAME_PATTERN.fullmatch(m)]

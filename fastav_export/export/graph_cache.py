"""Reuse of exported graphs across builds: a graph whose export would come out the same is copied.

torch.onnx's exporter takes most of a build (seconds per graph even for a tiny model, minutes
for 7B layers), and builds that differ only in what the graphs do not hold (pruning defaults, a
preset, the encoders, the backend artifacts, the output directory) export the same graphs again.
With the environment variable FASTAV_EXPORT_CACHE set to a directory, each exported graph is
stored there under a key that covers everything its export depends on:

    the exporting code (every source file of the package: layer modules, encoders, export
    code) and the versions of torch, transformers, onnx and onnxscript; the graph's name and
    export settings (flavour, split layer, rollout, ...); the model config; every parameter and
    buffer of the module exported, by name, dtype, shape and bytes; the traced samples, likewise;

and a later export with the same key copies the stored files instead. Entries are written to a
temporary directory and renamed into place, so concurrent builds (test workers) never see half
an entry, and an entry whose files fail their recorded sha256 is exported again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Callable

import torch

from ..user_io.file_digest import sha256_file

ENV_VAR = "FASTAV_EXPORT_CACHE"
ENTRY_INDEX = "entry.json"


def cache_directory() -> Path | None:
    value = os.environ.get(ENV_VAR)
    return Path(value) if value else None


@cache
def _code_version() -> str:
    """sha256 of the package's sources (the layer modules, the encoders of every family, the export
    code) and of the versions of the libraries that shape a graph."""
    from importlib import metadata

    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    for source in sorted(package.rglob("*.py")):
        digest.update(source.relative_to(package).as_posix().encode() + b"\0" + source.read_bytes())
    for name in ("torch", "transformers", "onnx", "onnxscript"):
        digest.update(f"{name}={metadata.version(name)}".encode())
    return digest.hexdigest()


def _tensor_bytes(digest, name: str, tensor: torch.Tensor) -> None:
    tensor = tensor.detach().cpu().contiguous()
    digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
    digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")


def graph_key(name: str, module: torch.nn.Module, samples, settings: dict) -> str:
    """The cache key of exporting `module` as graph `name` traced on `samples` (tensors, nested in
    lists/tuples, or None) with `settings` (JSON-serialisable: everything else the export reads)."""
    digest = hashlib.sha256(_code_version().encode())
    digest.update(json.dumps({"graph": name, **settings}, sort_keys=True, default=str).encode())
    for key, tensor in module.state_dict(keep_vars=False).items():
        _tensor_bytes(digest, key, tensor)

    def walk(value, path: str) -> None:
        if isinstance(value, torch.Tensor):
            _tensor_bytes(digest, path, value)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(item, f"{path}.{index}")
        else:
            digest.update(f"{path}={value!r}".encode())

    walk(samples, "samples")
    return digest.hexdigest()


def cached_export(name: str, out_dir: Path, key: str | None, export: Callable[[], Path]) -> Path:
    """`out_dir`/`name`.onnx (weights beside it): copied from the cache entry `key`, or written by
    `export()` (which returns that path) and then stored. Without a cache directory or key, just exports."""
    root = cache_directory()
    if root is None or key is None:
        return export()
    entry = root / key
    files = _valid_entry(entry)
    if files is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for file in files:
            shutil.copyfile(entry / file, out_dir / file)
        return out_dir / f"{name}.onnx"
    path = export()
    _store(entry, [file for file in (path, path.with_name(path.name + ".data")) if file.is_file()])
    return path


def _valid_entry(entry: Path) -> list[str] | None:
    """The entry's file names, when its index is readable and every file matches its sha256."""
    try:
        index = json.loads((entry / ENTRY_INDEX).read_text())
        if all(sha256_file(entry / file) == digest for file, digest in index.items()):
            return sorted(index)
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _store(entry: Path, files: list[Path]) -> None:
    """Write the entry atomically: a temporary directory beside it, renamed into place (a concurrent
    writer of the same key wins or loses the rename; both entries are the same)."""
    staging = None
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
        for file in files:
            shutil.copyfile(file, staging / file.name)
        (staging / ENTRY_INDEX).write_text(json.dumps({file.name: sha256_file(file) for file in files}))
        if entry.exists():
            shutil.rmtree(entry, ignore_errors=True)  # an invalid entry (a valid one was returned before)
        os.rename(staging, entry)
    except OSError:  # a full disk or a lost race: the build has its graph already
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)

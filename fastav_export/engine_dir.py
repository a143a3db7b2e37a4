"""The engine directory: the handoff between build, run, compare and serve.

    <engine>/config.json      this manifest
    <engine>/onnx/*.onnx      the graphs, weights in <graph>.onnx.data (what every backend runs or builds from)
    <engine>/onnx/*.engine    TensorRT engines, when built with --backend trt

`config.json` records what was built (model, dimensions, precision, the graph flavour,
the layout it was built for and its limits, the pruning defaults, each graph's I/O
names, each backend's settings), the tool
versions, and the sha256 of every file. `load_engine_dir` refuses a directory that is
incomplete, modified, or written by another format version, with one line that says
what to do.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__
from .errors import FastAVError
from .graph_io import FLAVOURS
from .layout import TokenLayout
from .models.registry import DecoderDims
from .pruning_config import PruningConfig

FORMAT = "fastav-engine"
FORMAT_VERSION = 2  # 2: fused-attention graphs with the cuts inside, a flavour, no ort/ copies
MANIFEST = "config.json"
PRECISIONS = ("fp32", "fp16", "bf16")
REBUILD = "rebuild it with `fastav-export build`"


@dataclass(frozen=True)
class GraphEntry:
    onnx: str  # path relative to the engine directory
    inputs: list[str]
    outputs: list[str]


@dataclass
class EngineManifest:
    model: str  # registered name, or the checkpoint directory's name
    source: dict  # {"kind": "random", "seed": 0} or {"kind": "checkpoint", "path": ...}
    dims: DecoderDims
    precision: str
    flavour: str  # the graphs' attention ops: "ort-contrib" or "onnx-standard" (export/custom_ops.py)
    layout: TokenLayout  # the layout the engine was built for (the default of `run`)
    pruning: PruningConfig  # resolved defaults; global_layer is fixed by the graphs
    rollout: bool  # the pre graph returns the rollout importance
    max_tokens: int
    max_new_tokens: int
    graphs: dict[str, GraphEntry]
    backends: dict = field(default_factory=dict)  # backend -> its artifacts and settings
    versions: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)  # relative path -> sha256
    path: Path | None = None  # where it was loaded from (not stored)

    @property
    def global_layer(self) -> int:
        return self.pruning.global_layer

    def file(self, relative: str) -> Path:
        return self.path / relative

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "source": self.source,
            "dims": asdict(self.dims),
            "precision": self.precision,
            "flavour": self.flavour,
            "layout": self.layout.to_json(),
            "pruning": self.pruning.to_dict(),
            "rollout": self.rollout,
            "limits": {"max_tokens": self.max_tokens, "max_new_tokens": self.max_new_tokens},
            "graphs": {name: asdict(entry) for name, entry in self.graphs.items()},
            "backends": self.backends,
            "versions": self.versions,
            "files": self.files,
        }

    @classmethod
    def from_json(cls, data: dict, path: Path) -> "EngineManifest":
        return cls(
            model=data["model"],
            source=data["source"],
            dims=DecoderDims(**data["dims"]),
            precision=data["precision"],
            flavour=data["flavour"],
            layout=TokenLayout.from_json(data["layout"]),
            pruning=PruningConfig.from_dict(data["pruning"]),
            rollout=data["rollout"],
            max_tokens=data["limits"]["max_tokens"],
            max_new_tokens=data["limits"]["max_new_tokens"],
            graphs={name: GraphEntry(**entry) for name, entry in data["graphs"].items()},
            backends=data.get("backends", {}),
            versions=data.get("versions", {}),
            files=data["files"],
            path=path,
        )


def tool_versions() -> dict:
    """Versions of everything that shaped the graphs and artifacts."""
    from importlib import metadata

    versions = {"fastav-export": __version__, "python": platform.python_version()}
    for package in ("torch", "transformers", "onnx", "onnxscript", "onnxruntime"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: Path, manifest: EngineManifest) -> None:
    """Hash every file under `directory` and write config.json there."""
    manifest.files = {
        str(p.relative_to(directory)): sha256(p)
        for p in sorted(directory.rglob("*")) if p.is_file() and p.name != MANIFEST
    }
    (directory / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")


def load_engine_dir(path: str | Path, verify: bool = True) -> EngineManifest:
    """Read and validate an engine directory; `verify` also checks every file's sha256."""
    path = Path(path)
    config = path / MANIFEST
    if not path.is_dir():
        raise FastAVError(f"{path} is not a directory: build an engine with `fastav-export build`")
    if not config.is_file():
        raise FastAVError(f"{path} has no {MANIFEST}, so it is not an engine directory: build one with "
                          "`fastav-export build`")
    try:
        data = json.loads(config.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FastAVError(f"{config} is unreadable ({exc}): {REBUILD}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FastAVError(f"{config} is not a fastav-export engine manifest: {REBUILD}")
    if data.get("format_version") != FORMAT_VERSION:
        raise FastAVError(f"{path} has engine format {data.get('format_version')} but fastav-export "
                          f"{__version__} reads format {FORMAT_VERSION}: {REBUILD}")
    try:
        manifest = EngineManifest.from_json(data, path)
    except (KeyError, TypeError) as exc:
        raise FastAVError(f"{config} lacks or garbles the entry {exc}: {REBUILD}") from None
    for relative, digest in manifest.files.items():
        file = path / relative
        if not file.is_file():
            raise FastAVError(f"{path}: {relative} is missing: {REBUILD}")
        if verify and sha256(file) != digest:
            raise FastAVError(f"{path}: {relative} does not match the sha256 recorded in {MANIFEST} "
                              f"(modified or corrupted): {REBUILD}")
    if manifest.flavour not in FLAVOURS:
        raise FastAVError(f"{config} names an unknown graph flavour {manifest.flavour!r}: {REBUILD}")
    for name, entry in manifest.graphs.items():
        if entry.onnx not in manifest.files:
            raise FastAVError(f"{path}: graph {name} ({entry.onnx}) is not listed in {MANIFEST}: {REBUILD}")
    return manifest


def embedding_table(manifest: EngineManifest):
    """[V, D] fp32 torch tensor on the CPU: the table inside the engine's `embed` graph.

    What synthetic inputs draw their text rows from (`run`, `compare`), whatever backend runs.
    """
    import numpy as np
    import onnx
    import torch
    from onnx import numpy_helper

    from .graph_io import EMBED

    model = onnx.load(str(manifest.file(manifest.graphs[EMBED].onnx)))
    return torch.from_numpy(numpy_helper.to_array(model.graph.initializer[0]).astype(np.float32))

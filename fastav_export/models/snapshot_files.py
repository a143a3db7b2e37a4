"""File-level facts of a Hugging Face snapshot shared by the safetensors and `.bin` readers:
which keys are the decoder's, the shards an index names, how skipped tensors are reported."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from ..errors import FastAVError
from ..user_io.json_input import read_json_file

LLM_PREFIXES = ("model.layers.", "model.embed_tokens.", "model.norm.", "lm_head.")


def _shard_name(name, index: Path) -> str:
    # A shard is a plain file beside the index: nothing else in the index is opened.
    if not isinstance(name, str) or not name or len(PurePosixPath(name).parts) != 1 or name in (".", ".."):
        raise FastAVError(f"{index} names the shard {name!r}, which is not a file name beside it: "
                          "re-download the snapshot")
    return name


def index_shards(index: Path, what: str) -> list[Path]:
    """The shard files that the `weight_map` of a Hugging Face index file names (`what`: "safetensors index")."""
    data = read_json_file(index, what)
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict):
        raise FastAVError(f"{index} is not a valid {what} (no weight_map object): re-download the snapshot")
    files = sorted({index.parent / _shard_name(name, index) for name in weight_map.values()})
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise FastAVError(f"{index.name} names missing shards {missing[:3]}: re-download the snapshot")
    return files


def skipped_component(key: str) -> str:
    """The module a skipped tensor belongs to: `model.mm_projector`, `speech_encoder`, ..."""
    parts = key.split(".")
    return ".".join(parts[:2]) if parts[0] == "model" else parts[0]


def duplicate_key(where: str, name: str) -> FastAVError:
    return FastAVError(f"{where} holds two tensors for the decoder's {name} (once module./base_model.model. "
                       "prefixes are removed): re-save the checkpoint with one")


def file_names(files: list[Path]) -> str:
    names = [file.name for file in files]
    return ", ".join(names) if len(names) <= 2 else f"{names[0]} ... {names[-1]} ({len(names)} files)"

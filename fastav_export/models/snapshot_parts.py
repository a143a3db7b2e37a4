"""Find and read one part of a model snapshot (a vision tower, a projector, ...) by its key prefix.

A snapshot keeps some parts in its safetensors shards (named by the index) and, for
VideoLLaMA2-AV, others in plain `torch.save` files beside them. `read_part` collects a
part's tensors from either, strips the prefix, and says where they came from, for the
loading report that `build` and `run` print.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import FastAVError
from .checkpoint import safetensors_files, safetensors_shapes
from .weights_only import HOW, load_weights_only


@dataclass
class Part:
    """state: module key -> tensor (prefix stripped); source: where it came from, for the report."""

    state: dict[str, torch.Tensor]
    source: str


def _from_safetensors(directory: Path, prefix: str) -> Part | None:
    from safetensors import safe_open

    state, names = {}, []
    for file in safetensors_files(directory, required=False):
        keys = [key for key in safetensors_shapes(file) if key.startswith(prefix)]
        if not keys:
            continue
        names.append(file.name)
        try:
            with safe_open(str(file), framework="pt") as handle:
                for key in keys:
                    state[key[len(prefix):]] = handle.get_tensor(key)
        except Exception as exc:  # safetensors raises its own error types for corrupt files
            raise FastAVError(f"cannot read {file.name}: {exc}; re-download the snapshot") from None
    if not state:
        return None
    return Part(state, f"{len(state)} tensors {prefix}* from {', '.join(names)}")


def _from_bin(file: Path, prefixes: tuple[str, ...]) -> Part:
    raw = load_weights_only(file)
    for prefix in prefixes:  # the file's keys may or may not carry the model's prefix
        if raw and all(key.startswith(prefix) for key in raw):
            raw = {key[len(prefix):]: value for key, value in raw.items()}
            break
    return Part(raw, f"{len(raw)} tensors from {file.name} ({HOW})")


def has_keys(directory: Path, prefix: str) -> bool:
    """Whether the snapshot's safetensors hold any key under `prefix` (headers only, no tensor read)."""
    return any(key.startswith(prefix) for file in safetensors_files(directory, required=False)
               for key in safetensors_shapes(file))


def missing_part(directory: Path, name: str, prefix: str, bin_file: str | None = None) -> FastAVError:
    where = f" and no {bin_file} file" if bin_file else ""
    return FastAVError(f"{directory} lacks the {name}: no {prefix}* weights in its safetensors{where}; "
                       "the media path needs it: use the complete snapshot (or build with --decoder-only)")


def check_part(directory: Path, name: str, prefix: str, bin_file: str | None = None) -> None:
    """One line naming the part when the snapshot has neither its keys nor its .bin file."""
    if not has_keys(directory, prefix) and not (bin_file and (directory / bin_file).is_file()):
        raise missing_part(directory, name, prefix, bin_file)


def read_part(directory: Path, name: str, prefix: str, bin_file: str | None = None,
              bin_prefixes: tuple[str, ...] = ()) -> Part:
    """The tensors of part `name`: the safetensors keys under `prefix`, else the `bin_file` beside them.

    A snapshot with neither is refused in one line naming the part.
    """
    part = _from_safetensors(directory, prefix)
    if part is not None:
        return part
    if bin_file is not None and (directory / bin_file).is_file():
        return _from_bin(directory / bin_file, (prefix, *bin_prefixes))
    raise missing_part(directory, name, prefix, bin_file)


def load_into(module: torch.nn.Module, part: Part, name: str, directory: Path) -> str:
    """Load `part` into `module` strictly: a missing or unexpected key, or a wrong shape, is one line.

    Position ids that upstream's state dict carries are checked and left out (`upstream_buffers.py`).
    Returns the loading report's note on them: "" when there are none, else "; ignored KEY [1, n] (...)".
    """
    from .upstream_buffers import set_aside_position_ids

    state, ignored = set_aside_position_ids(module, part.state, f"{directory}: the {name}")
    expected = module.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise FastAVError(f"{directory}: the {name} does not match its architecture ({what}): check the snapshot")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise FastAVError(f"{directory}: the {name}'s {key} has shape {list(value.shape)}, expected "
                              f"{list(expected[key].shape)}: the config does not match the weights")
    module.load_state_dict({key: value.float() for key, value in state.items()})
    return "".join(f"; ignored {words}" for words in ignored)

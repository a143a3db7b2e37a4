"""Read a Qwen2 decoder's tensors from `torch.save` files, weights only.

Where no safetensors file holds the decoder, `load_qwen2_checkpoint` reads it from (in this
order) the shards that `pytorch_model.bin.index.json` names or `pytorch_model.bin` (both
written by save_pretrained(..., safe_serialization=False)), or `all_parameters.bin`, the full
state dict that video-SALMONN 2's training saves (keys under DeepSpeed's `module.` and, with
LoRA, PEFT's `base_model.model.`). Each file is read with `load_weights_only`
(torch.load(weights_only=True)), which refuses any pickled object other than tensors.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch

from .snapshot_files import LLM_PREFIXES, duplicate_key, index_shards, skipped_component
from .state_keys import canonical_key
from .weights_only import load_weights_only

BIN_INDEX = "pytorch_model.bin.index.json"
BIN_FILES = ("pytorch_model.bin", "all_parameters.bin")  # in order of preference


def decoder_bin_files(directory: Path) -> list[Path]:
    """The .bin files to read the decoder from: the index's shards, else the first of BIN_FILES; [] if none."""
    index = directory / BIN_INDEX
    if index.is_file():
        return index_shards(index, "pytorch_model.bin index")
    return next(([directory / name] for name in BIN_FILES if (directory / name).is_file()), [])


def read_bin_decoder(files: list[Path]) -> tuple[dict[str, torch.Tensor], Counter]:
    """(canonical key -> tensor of the decoder, LoRA tensors included; component -> tensors skipped)."""
    state, skipped = {}, Counter()
    for file in files:
        raw = load_weights_only(file)
        for key in list(raw):
            tensor, name = raw.pop(key), canonical_key(key)  # popped: skipped tensors are freed as we go
            if not name.startswith(LLM_PREFIXES):
                skipped[skipped_component(name)] += 1
            elif name in state:
                raise duplicate_key(file.name, name)
            else:
                state[name] = tensor
    return state, skipped

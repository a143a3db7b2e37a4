"""Writing tiny snapshots the way Hugging Face snapshots are laid out (the families' tiny_snapshot.py).

The tiny seed model's decoder (seed 0), tensors as save_pretrained shards them with the index, and
the directory a snapshot's `mm_vision_tower` names for its SigLIP config.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .registry import ModelSpec

TINY_SIGLIP_DIR = "siglip-tiny"


def contiguous(state: dict, prefix: str = "") -> dict[str, torch.Tensor]:
    """`state` as tensors safetensors can save (own storage, contiguous), keys under `prefix`."""
    return {prefix + key: value.detach().clone().contiguous() for key, value in state.items()}


def write_shards(directory: Path, tensors: dict[str, torch.Tensor], shards: int = 2) -> None:
    """`tensors` in `shards` safetensors files named as save_pretrained names them, plus the index."""
    from safetensors.torch import save_file

    keys, weight_map = sorted(tensors), {}
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {key: tensors[key] for key in keys[i::shards]}
        save_file(part, str(directory / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, name))
    index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in tensors.values())},
             "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def tiny_decoder(spec: ModelSpec) -> tuple[dict[str, torch.Tensor], dict]:
    """(state dict, config.json fields) of `spec`'s seeded random decoder (seed 0)."""
    from .model_factory import build_model

    decoder = build_model(spec, seed=0)
    return contiguous(decoder.state_dict()), json.loads(decoder.config.to_json_string(use_diff=False))

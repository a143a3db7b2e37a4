"""A tiny VideoLLaMA2-AV snapshot on disk, with the real key names and file kinds.

What a VideoLLaMA2.1-7B-AV snapshot directory holds, at the tiny seed model's sizes:
config.json (model_type videollama2_qwen2, the decoder's Qwen2 settings, the mm_* settings),
the decoder, vision tower and vision projector in sharded safetensors with an index
(`model.layers.*`, `model.vision_tower.vision_tower.vision_model.*`, `model.mm_projector.*`),
the audio tower and its projector as plain `torch.save` files (`audio_tower.bin`,
`mm_projector_a.bin`, keys `model.audio_tower.*` / `model.mm_projector_a.*`), and the
tokenizer files with the chat template. The vision tower's config is a local SigLIP
directory that `mm_vision_tower` names (upstream accepts a path there too); the tiny BEATs
settings travel in config.json (real snapshots get BEATs' defaults).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from ....text.tiny_tokenizer import write_tiny_tokenizer
from ...encoders import siglip_tower
from ...registry import get_model_spec
from ...snapshot_writing import TINY_SIGLIP_DIR, contiguous, tiny_decoder, write_shards
from . import audio_projector, beats, stc_connector
from .encoders import BEATS_CONFIG_KEY, random_encoders, tiny_shapes


def write_tiny_snapshot(directory: str | Path, seed: int = 0, audio_tower: bool = True,
                        vision_tower_in_shards: bool = True,
                                       extra_tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Write the tiny VideoLLaMA2-AV (the decoder of `videollama2-tiny` seed 0, encoders of `seed`).

    audio_tower=False leaves out audio_tower.bin (a snapshot the media path must refuse);
    vision_tower_in_shards=False keeps the tower's weights only in the SigLIP directory;
    extra_tensors: more tensors for the shards (checkpoint keys), e.g. a buffer older savers kept.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    spec = get_model_spec("videollama2-tiny")
    tensors, config = tiny_decoder(spec)
    shapes = tiny_shapes(spec.dims.hidden_size)
    vision, audio = random_encoders(shapes, seed)

    siglip_dir = directory / TINY_SIGLIP_DIR
    siglip_dir.mkdir(exist_ok=True)
    (siglip_dir / "config.json").write_text(json.dumps(shapes.siglip.to_dict(), indent=2))
    tower = contiguous(vision.tower.state_dict(), siglip_tower.CHECKPOINT_PREFIX)
    if vision_tower_in_shards:
        tensors.update(tower)
    else:
        from safetensors.torch import save_file

        inner = "model.vision_tower.vision_tower."
        save_file({key[len(inner):]: value for key, value in tower.items()}, str(siglip_dir / "model.safetensors"))
    tensors.update(contiguous(vision.projector.state_dict(), stc_connector.CHECKPOINT_PREFIX))
    tensors.update(contiguous(extra_tensors or {}))
    write_shards(directory, tensors)
    if audio_tower:
        torch.save(contiguous(audio.tower.state_dict(), beats.CHECKPOINT_PREFIX), directory / "audio_tower.bin")
    torch.save(contiguous(audio.projector.state_dict(), audio_projector.CHECKPOINT_PREFIX),
               directory / "mm_projector_a.bin")

    config.update({
        "model_type": "videollama2_qwen2", "architectures": ["Videollama2Qwen2ForCausalLM"],
        "mm_vision_tower": TINY_SIGLIP_DIR, "mm_hidden_size": shapes.siglip.hidden_size,
        "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch", "mm_projector_type": "stc_connector_v35",
        "mm_projector_a_type": "mlp2x_gelu", "num_frames": spec.video.num_frames,
        BEATS_CONFIG_KEY: asdict(shapes.beats),
    })
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    write_tiny_tokenizer(directory, spec.dims.vocab_size, default_system=None)
    return directory

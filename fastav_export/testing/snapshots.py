"""Tiny VideoLLaMA2-AV snapshots on disk, with the real key names and file kinds.

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

from ..models import get_model_spec
from ..models.encoders import audio_projector, beats, siglip_tower, stc_connector
from ..models.videollama2_av import BEATS_CONFIG_KEY, random_encoders, tiny_shapes
from ..text.tiny_tokenizer import write_tiny_tokenizer
from .models import tiny_model

TINY_SIGLIP_DIR = "siglip-tiny"
# BERT's embeddings register their position ids as a persistent buffer; upstream's speech Q-Former
# deletes the position embeddings but keeps the buffer, so its checkpoints carry it (bert-base-uncased: 512).
QFORMER_POSITION_IDS = "speech_Qformer.bert.embeddings.position_ids"
QFORMER_POSITIONS = 512


def _contiguous(state: dict, prefix: str = "") -> dict[str, torch.Tensor]:
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


def write_tiny_videollama2_av_snapshot(directory: str | Path, seed: int = 0, audio_tower: bool = True,
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
    decoder = tiny_model(spec.name)
    shapes = tiny_shapes(spec.dims.hidden_size)
    vision, audio = random_encoders(shapes, seed)

    siglip_dir = directory / TINY_SIGLIP_DIR
    siglip_dir.mkdir(exist_ok=True)
    (siglip_dir / "config.json").write_text(json.dumps(shapes.siglip.to_dict(), indent=2))
    tensors = _contiguous(decoder.state_dict())
    tower = _contiguous(vision.tower.state_dict(), siglip_tower.CHECKPOINT_PREFIX)
    if vision_tower_in_shards:
        tensors.update(tower)
    else:
        from safetensors.torch import save_file

        inner = "model.vision_tower.vision_tower."
        save_file({key[len(inner):]: value for key, value in tower.items()}, str(siglip_dir / "model.safetensors"))
    tensors.update(_contiguous(vision.projector.state_dict(), stc_connector.CHECKPOINT_PREFIX))
    tensors.update(_contiguous(extra_tensors or {}))
    write_shards(directory, tensors)
    if audio_tower:
        torch.save(_contiguous(audio.tower.state_dict(), beats.CHECKPOINT_PREFIX), directory / "audio_tower.bin")
    torch.save(_contiguous(audio.projector.state_dict(), audio_projector.CHECKPOINT_PREFIX),
               directory / "mm_projector_a.bin")

    config = json.loads(decoder.config.to_json_string(use_diff=False))
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


def write_tiny_video_salmonn2_snapshot(directory: str | Path, seed: int = 0, weights: str = "safetensors",
                                       vision_tower_in_shards: bool = True, lora: bool = False,
                                       extra_tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Write the tiny video-SALMONN 2 (the decoder of `video-salmonn2-tiny` seed 0, encoders of `seed`).

    Keys as upstream's VideoSALMONN2ForCausalLM names them: the decoder and `model.vision_tower.*`,
    `model.mm_projector.*`, `model.image_newline` under `model.`, the audio modules at the top level
    (`speech_encoder.*`, `ln_speech.*`, `speech_Qformer.*`, `speech_query_tokens`, `speech_llama_proj.*`,
    `final_linear.*`). weights: "safetensors" (sharded, with the index) or "all_parameters" (the training
    script's `all_parameters.bin`: every key under DeepSpeed's `module.` and PEFT's `base_model.model.`).
    lora: q/k/v_proj as PEFT LoRA pairs (zero B, so the merged decoder is the plain one) and an
    adapter_config.json; the vision tower's config is a local SigLIP directory `mm_vision_tower` names.
    Like upstream's, the state holds the Q-Former's position ids buffer (`QFORMER_POSITION_IDS`);
    extra_tensors: more tensors (checkpoint keys), or other values for that buffer.
    """
    from ..models.encoders import salmonn_vision
    from ..models.video_salmonn2_av import AUDIO_CONFIG_KEY
    from ..models.video_salmonn2_av import random_encoders as salmonn_encoders
    from ..models.video_salmonn2_av import tiny_shapes as salmonn_shapes

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    spec = get_model_spec("video-salmonn2-tiny")
    decoder = tiny_model(spec.name)
    shapes = salmonn_shapes(spec.dims.hidden_size)
    vision, audio = salmonn_encoders(shapes, seed)

    siglip_dir = directory / TINY_SIGLIP_DIR
    siglip_dir.mkdir(exist_ok=True)
    full = shapes.siglip.to_dict()  # the SigLIP model before upstream deletes its last layer
    full.update(num_hidden_layers=shapes.siglip.num_hidden_layers + 1, vision_use_head=True)
    (siglip_dir / "config.json").write_text(json.dumps(full, indent=2))
    tensors = _contiguous(decoder.state_dict())
    tower = _contiguous(vision.tower.state_dict(), siglip_tower.CHECKPOINT_PREFIX)
    if vision_tower_in_shards:
        tensors.update(tower)
    tensors.update(_contiguous(vision.projector.state_dict(), salmonn_vision.PROJECTOR_PREFIX))
    tensors.update(_contiguous(audio.state_dict()))
    tensors[QFORMER_POSITION_IDS] = torch.arange(QFORMER_POSITIONS).unsqueeze(0)
    tensors.update(_contiguous(extra_tensors or {}))
    if lora:
        tensors = _with_lora(tensors, directory)
    if weights == "safetensors":
        write_shards(directory, tensors)
    elif weights == "all_parameters":
        torch.save({f"module.base_model.model.{key}": value for key, value in tensors.items()},
                   directory / "all_parameters.bin")
    else:
        raise ValueError(f"weights must be safetensors or all_parameters, not {weights!r}")

    config = json.loads(decoder.config.to_json_string(use_diff=False))
    config.update({
        "model_type": "video_salmonn_2", "architectures": ["VideoSALMONN2ForCausalLM"],
        "mm_vision_tower": TINY_SIGLIP_DIR, "mm_hidden_size": shapes.siglip.hidden_size,
        "mm_vision_select_layer": -2, "mm_projector_type": "mlp2x_gelu", "mm_spatial_pool_stride": 2,
        "mm_spatial_pool_mode": "max", "mm_newline_position": "grid", "mm_pooling_position": "after",
        AUDIO_CONFIG_KEY: shapes.audio.to_json(),
    })
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    write_tiny_tokenizer(directory, spec.dims.vocab_size, default_system=None)
    return directory


def _with_lora(tensors: dict[str, torch.Tensor], directory: Path, rank: int = 4) -> dict[str, torch.Tensor]:
    """q/k/v_proj weights as PEFT stores them (`base_layer`, `lora_A.default`, `lora_B.default`), B zero."""
    out = {}
    for key, value in tensors.items():
        module, _, kind = key.rpartition(".")
        if module.endswith(("q_proj", "k_proj", "v_proj")) and module.startswith("model.layers."):
            out[f"{module}.base_layer.{kind}"] = value
            if kind == "weight":
                out[f"{module}.lora_A.default.weight"] = torch.randn(rank, value.shape[1]) * 0.1
                out[f"{module}.lora_B.default.weight"] = torch.zeros(value.shape[0], rank)
        else:
            out[key] = value
    (directory / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank, "target_modules": ["q_proj", "k_proj", "v_proj"]}))
    return out

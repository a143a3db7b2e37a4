"""A tiny video-SALMONN 2 snapshot on disk, with the real key names and file kinds."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ....text.tiny_tokenizer import write_tiny_tokenizer
from ...encoders import siglip_tower
from ...registry import get_model_spec
from ...snapshot_writing import TINY_SIGLIP_DIR, contiguous, tiny_decoder, write_shards
from . import salmonn_vision
from .encoders import AUDIO_CONFIG_KEY, random_encoders, tiny_shapes

# BERT's embeddings register their position ids as a persistent buffer; upstream's speech Q-Former
# deletes the position embeddings but keeps the buffer, so its checkpoints carry it (bert-base-uncased: 512).
QFORMER_POSITION_IDS = "speech_Qformer.bert.embeddings.position_ids"
QFORMER_POSITIONS = 512


def write_tiny_snapshot(directory: str | Path, seed: int = 0, weights: str = "safetensors",
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
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    spec = get_model_spec("video-salmonn2-tiny")
    tensors, config = tiny_decoder(spec)
    shapes = tiny_shapes(spec.dims.hidden_size)
    vision, audio = random_encoders(shapes, seed)

    siglip_dir = directory / TINY_SIGLIP_DIR
    siglip_dir.mkdir(exist_ok=True)
    full = shapes.siglip.to_dict()  # the SigLIP model before upstream deletes its last layer
    full.update(num_hidden_layers=shapes.siglip.num_hidden_layers + 1, vision_use_head=True)
    (siglip_dir / "config.json").write_text(json.dumps(full, indent=2))
    tower = contiguous(vision.tower.state_dict(), siglip_tower.CHECKPOINT_PREFIX)
    if vision_tower_in_shards:
        tensors.update(tower)
    tensors.update(contiguous(vision.projector.state_dict(), salmonn_vision.PROJECTOR_PREFIX))
    tensors.update(contiguous(audio.state_dict()))
    tensors[QFORMER_POSITION_IDS] = torch.arange(QFORMER_POSITIONS).unsqueeze(0)
    tensors.update(contiguous(extra_tensors or {}))
    if lora:
        tensors = _with_lora(tensors, directory)
    if weights == "safetensors":
        write_shards(directory, tensors)
    elif weights == "all_parameters":
        torch.save({f"module.base_model.model.{key}": value for key, value in tensors.items()},
                   directory / "all_parameters.bin")
    else:
        raise ValueError(f"weights must be safetensors or all_parameters, not {weights!r}")

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

"""Tiny Qwen2.5-Omni snapshots on disk, in the released format, at the tiny thinker's sizes.

A released snapshot (Qwen/Qwen2.5-Omni-7B) holds config.json (`model_type: "qwen2_5_omni"`, the
thinker's settings under `thinker_config`, the talker's and token2wav's beside them), the weights
of all three parts in sharded safetensors with an index (`thinker.model.layers.*`, `thinker.visual.*`,
`thinker.audio_tower.*`, `thinker.lm_head.weight`, `talker.*`, `token2wav.*`), the tokenizer files
with the chat template and the media specials, and the preprocessor settings. The speech parts here
are a few random tensors under their real prefixes: they are only ever skipped.
A thinker-only snapshot is what `Qwen2_5OmniThinkerForConditionalGeneration.save_pretrained` writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ....text.tiny_tokenizer import write_tiny_tokenizer
from ...snapshot_writing import contiguous, write_shards
from .chat import MEDIA_TOKENS, TINY_CHAT_TEMPLATE
from .snapshot import OMNI_MODEL_TYPE, THINKER_MODEL_TYPE, THINKER_PREFIX, released_key
from .tiny_config import TINY_VOCAB_SIZE, tiny_thinker_config

SPEECH_TENSORS = {"talker.model.layers.0.mlp.up_proj.weight": (8, 4), "talker.codec_head.weight": (6, 8),
                  "token2wav.code2wav_dit_model.input_embed.proj.weight": (4, 4)}


def write_tiny_snapshot(directory: str | Path, seed: int = 0, thinker_only: bool = False,
                        weights: str = "safetensors") -> Path:
    """Write a tiny Qwen2.5-Omni snapshot (whole model, or thinker only) into `directory`; return it.

    weights: "safetensors" (sharded, with the index) or "bin" (`pytorch_model.bin`, torch.save).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    from .thinker import tiny_thinker

    thinker = tiny_thinker(seed)
    config = tiny_thinker_config()
    released = {released_key(key): value for key, value in thinker.state_dict().items()}
    if thinker_only:
        tensors = contiguous(released)
        settings = {**config.to_dict(), "model_type": THINKER_MODEL_TYPE,
                    "architectures": ["Qwen2_5OmniThinkerForConditionalGeneration"]}
    else:
        tensors = contiguous(released, THINKER_PREFIX)
        generator = torch.Generator().manual_seed(seed + 1)
        tensors.update({key: torch.randn(shape, generator=generator) for key, shape in SPEECH_TENSORS.items()})
        settings = {"model_type": OMNI_MODEL_TYPE, "architectures": ["Qwen2_5OmniModel"],
                    "enable_audio_output": True, "thinker_config": config.to_dict(),
                    "talker_config": {"model_type": "qwen2_5_omni_talker"},
                    "token2wav_config": {"model_type": "qwen2_5_omni_token2wav"}}
    (directory / "config.json").write_text(json.dumps(settings, indent=2, default=str))
    if weights == "bin":
        torch.save(tensors, directory / "pytorch_model.bin")
    else:
        write_shards(directory, tensors)
    write_tiny_tokenizer(directory, TINY_VOCAB_SIZE, media_tokens=MEDIA_TOKENS, template=TINY_CHAT_TEMPLATE)
    return directory

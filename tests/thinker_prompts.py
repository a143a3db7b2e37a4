"""Tiny Qwen2.5-Omni thinker prompts with TMRoPE positions from transformers' own `get_rope_index`.

A prompt is text, one video with its audio track interleaved per 2 s chunk (`use_audio_in_video`,
as the thinker lays them out), and text: input ids, the matching `TokenLayout`, position ids
[3, B, N] and `rope_deltas` [B, 1], all from transformers except the layout, which names the
token kinds the ids already spell.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fastav_export.contract.layout import TokenLayout
from fastav_export.models.families.qwen2_5_omni.chunk_layout import OmniClip, omni_layout
from fastav_export.models.families.qwen2_5_omni.tiny_config import TINY_TOKEN_IDS


@dataclass
class ThinkerPrompt:
    input_ids: torch.Tensor  # [B, N] int64
    layout: TokenLayout
    position_ids: torch.Tensor  # [3, B, N] int64 (temporal, height, width)
    rope_deltas: torch.Tensor  # [B, 1]: decoding's position = cache position + rope_deltas


def _audio_feature_frames(tokens: int) -> int:
    """Whisper feature frames the thinker's audio tower turns into `tokens` tokens (its two 2x poolings)."""
    frames = 1
    while ((frames - 1) // 2 + 1 - 2) // 2 + 1 < tokens:
        frames += 1
    return frames


def thinker_prompt(thinker, batch: int = 1, text_before: int = 5, grids: int = 4, grid_hw: int = 4,
                   seconds_per_grid: float = 1.0, audio_tokens: int = 30, text_after: int = 5,
                   seed: int = 0) -> ThinkerPrompt:
    """A prompt of `batch` rows sharing one layout: [text_before][bos x2][per chunk: video, audio][eos x2][text_after]
    (the family's `chunk_layout.omni_layout`), with the positions transformers' own `get_rope_index` gives it.

    grids: temporal video grids (each grid_hw/2 x grid_hw/2 tokens after the 2 x 2 merge),
    `seconds_per_grid` apart; audio_tokens: 25 per second. Text ids are random byte ids.
    """
    clip = OmniClip(grids, grid_hw, grid_hw, seconds_per_grid, audio_tokens)
    layout = omni_layout(clip, text_before + 2, 2 + text_after)  # the family's chunk rule
    ids = TINY_TOKEN_IDS
    generator = torch.Generator().manual_seed(seed)
    text = lambda n: torch.randint(0, 256, (n,), generator=generator).tolist()  # noqa: E731
    media = {"video": ids["<|VIDEO|>"], "audio": ids["<|AUDIO|>"]}
    tokens = text(text_before) + [ids["<|vision_bos|>"], ids["<|audio_bos|>"]]
    for segment in layout.segments[1:-1]:
        tokens += [media[segment.kind]] * segment.length
    tokens += [ids["<|audio_eos|>"], ids["<|vision_eos|>"]] + text(text_after)
    input_ids = torch.tensor([tokens] * batch)
    # transformers counts videos and audios over the whole batch: one of each per row
    positions, deltas = thinker.model.get_rope_index(
        input_ids, video_grid_thw=torch.tensor([[grids, grid_hw, grid_hw]] * batch), use_audio_in_video=True,
        audio_seqlens=torch.tensor([_audio_feature_frames(audio_tokens)] * batch),
        second_per_grids=torch.tensor([seconds_per_grid] * batch))
    return ThinkerPrompt(input_ids, layout, positions, deltas)

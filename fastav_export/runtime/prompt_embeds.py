"""The decoder input of one prompt: text rows from the embedding table, encoder rows at the placeholders.

A prompt is `input_ids` [N] with the model's placeholder id at every video and audio
position of its layout, plus `mm_embeds` [M, D]: one encoder output row per placeholder,
in order. This is the decoder-only request of the Triton model too, so the media path
and a client that runs its own encoders meet here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..contract.layout import AUDIO, KIND_CODES, TEXT, VIDEO, TokenLayout
from ..errors import FastAVError


@dataclass(frozen=True)
class Prompt:
    """input_ids: [N] int64, placeholders at the layout's video/audio positions.
    mm_embeds:  [M, D] float32, one row per placeholder, in order.
    layout:     the prompt's layout (N tokens).
    positions:  [3, N] int64 position rows where the family's positions are not 0..N-1 (M-RoPE),
                from `MediaRules.positions`; None: 0..N-1."""

    input_ids: np.ndarray
    mm_embeds: np.ndarray
    layout: TokenLayout
    # keyword-only, so prompts that add fields (serving.request.ServingRequest) keep their positional order
    positions: np.ndarray | None = field(default=None, kw_only=True)

    @property
    def multimodal(self) -> np.ndarray:
        """[N] bool: the positions that take a row of mm_embeds."""
        return self.layout.kind_codes() != KIND_CODES[TEXT]

    def text_ids(self) -> np.ndarray:
        """[N] int64 with the placeholders replaced by 0, ready for the embed table."""
        return np.where(self.multimodal, 0, self.input_ids)

    def splice(self, text_embeds) -> torch.Tensor:
        """text_embeds [N, D] (the table's rows for text_ids()) -> inputs_embeds [1, N, D] float32."""
        embeds = torch.as_tensor(np.asarray(text_embeds, dtype=np.float32)).clone()
        embeds[torch.from_numpy(self.multimodal)] = torch.from_numpy(self.mm_embeds)
        return embeds[None]


def media_prompt(prefix_ids: list[int], suffix_ids: list[int], placeholder_id: int, built_layout: TokenLayout,
                 video_rows: np.ndarray, audio_rows: np.ndarray) -> Prompt:
    """The prompt [prefix text][media rows of `built_layout`][suffix text] of one question.

    video_rows [Tv, D], audio_rows [Ta, D]: the encoders' outputs, time-major; they fill the
    layout's video and audio positions in order (contiguous or interleaved by frame).
    """
    layout = built_layout.with_prompt_text(len(prefix_ids), len(suffix_ids))
    kinds = layout.kind_codes()
    for kind, rows in ((VIDEO, video_rows), (AUDIO, audio_rows)):
        if rows.shape[0] != layout.count(kind):
            raise FastAVError(f"the {kind} encoder gave {rows.shape[0]} rows but the engine's layout has "
                              f"{layout.count(kind)} {kind} positions: the media settings do not match the layout")
    media = kinds != KIND_CODES[TEXT]
    mm = np.empty((int(media.sum()), video_rows.shape[1]), np.float32)
    order = kinds[media]  # the kind of each placeholder, in prompt order
    mm[order == KIND_CODES[VIDEO]] = video_rows
    mm[order == KIND_CODES[AUDIO]] = audio_rows
    ids = np.full(layout.n_tokens, placeholder_id, np.int64)
    ids[:len(prefix_ids)] = prefix_ids
    ids[layout.n_tokens - len(suffix_ids):] = suffix_ids
    return Prompt(ids, mm, layout)

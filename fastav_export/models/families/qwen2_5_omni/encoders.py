"""Qwen2.5-Omni's vision and audio towers as export-ready modules: transformers' own encoders, tables as inputs.

The wrappers call the transformers module's own forward with every size-dependent tensor passed in
precomputed (the names its helpers pop from the kwargs, see `vision_tables` / `audio_tables`), and with
the packed-mask attention (`packed_attention`) inside the call, so no Python loop over segment lengths
runs while tracing. Nothing of the encoders' math is written here: patch embedding, 2-D rotary, window
reordering, blocks, merger, convolutions, layers, pooling and projections are the modules' own code.

An exporter (`export.encoder_graphs.export_encoder`) takes a wrapper with `*_GRAPH_IO`, `*_DYNAMIC_AXES`
and `*_export_sample(config)`; at run time `vision_graph_inputs` / `audio_graph_inputs` build its feeds.
"""

from __future__ import annotations

import torch
from torch import nn

from .audio_tables import AUDIO_TABLE_NAMES, audio_graph_inputs
from .packed_attention import packed_mask_attention_in
from .vision_tables import VISION_TABLE_NAMES, vision_graph_inputs

VISION_GRAPH_IO = (["pixel_patches", *VISION_TABLE_NAMES], ["video_embeds"])
AUDIO_GRAPH_IO = (["padded_features", *AUDIO_TABLE_NAMES], ["audio_embeds"])
# Per input, the axes that change with the clip: patch and table lengths; chunk count and padded length.
VISION_DYNAMIC_AXES = ((0,), (0,), (0,), (0,), (0,))
AUDIO_DYNAMIC_AXES = ((0, 2), (0,), (0,), (0,), (0,))
# Trace samples with every dynamic size above 1 and distinct where they could be confused: two frames
# of 8 x 12 patches (two 4 x 4-merged windows each, one cut short); 237 frames (two chunks, odd tail).
VISION_SAMPLE_GRID = (2, 8, 12)
AUDIO_SAMPLE_FRAMES = 237

# The tables are computed outside, so the maximum segment lengths transformers would read back from
# the data (`.item()`) are never needed: the packed-mask attention ignores them.
_UNUSED_MAX_SEQLEN = 0


class OmniVisionGraph(nn.Module):
    """`Qwen2_5OmniVisionEncoder` with its grid tables as inputs.

    forward(pixel_patches [P, C * temporal_patch * patch²] float, position_ids [P, 2] int64,
    window_index [P / 4] int64, cu_seqlens [F + 1] int32, cu_window_seqlens [W + 1] int32)
    -> video_embeds [P / 4, out_hidden_size]: the encoder's `pooler_output` (merged, in patch order).
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, pixel_patches: torch.Tensor, position_ids: torch.Tensor, window_index: torch.Tensor,
                cu_seqlens: torch.Tensor, cu_window_seqlens: torch.Tensor) -> torch.Tensor:
        with packed_mask_attention_in(self.encoder):
            # grid_thw is read by no helper once all four tables are given.
            out = self.encoder(pixel_patches, grid_thw=None, position_ids=position_ids, window_index=window_index,
                               cu_seqlens=cu_seqlens, cu_window_seqlens=cu_window_seqlens,
                               max_seqlen=_UNUSED_MAX_SEQLEN, max_window_seqlen=_UNUSED_MAX_SEQLEN)
        return out.pooler_output


class OmniAudioGraph(nn.Module):
    """`Qwen2_5OmniAudioEncoder` on one clip with its chunk tables as inputs.

    forward(padded_features [C, M, L] float, chunk_lengths [C] int64, valid_indices [V] int64,
    pool_indices [A] int64, cu_seqlens [C + 1] int32) -> audio_embeds [A, output_dim]: the encoder's
    `last_hidden_state` (pooled and projected).
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, padded_features: torch.Tensor, chunk_lengths: torch.Tensor, valid_indices: torch.Tensor,
                pool_indices: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
        with packed_mask_attention_in(self.encoder):
            out = self.encoder(None, feature_lens=None, padded_feature=padded_features, chunk_lengths=chunk_lengths,
                               valid_indices=valid_indices, pool_indices=pool_indices, cu_seqlens=cu_seqlens,
                               max_seqlen=_UNUSED_MAX_SEQLEN)
        return out.last_hidden_state


def vision_export_sample(config) -> tuple[torch.Tensor, ...]:
    """Trace inputs for `OmniVisionGraph` at `VISION_SAMPLE_GRID` (zeros for the pixels)."""
    t, h, w = VISION_SAMPLE_GRID
    width = config.in_channels * config.temporal_patch_size * config.patch_size ** 2
    feeds = vision_graph_inputs(torch.zeros(t * h * w, width), [VISION_SAMPLE_GRID], config)
    return tuple(torch.from_numpy(feeds[name]) for name in VISION_GRAPH_IO[0])


def audio_export_sample(config) -> tuple[torch.Tensor, ...]:
    """Trace inputs for `OmniAudioGraph` at `AUDIO_SAMPLE_FRAMES` (zeros for the features)."""
    feeds = audio_graph_inputs(torch.zeros(config.num_mel_bins, AUDIO_SAMPLE_FRAMES), config)
    return tuple(torch.from_numpy(feeds[name]) for name in AUDIO_GRAPH_IO[0])


def random_tiny_encoders(seed: int = 0):
    """(vision, audio): transformers' `Qwen2_5OmniVisionEncoder` and `Qwen2_5OmniAudioEncoder` at the tiny
    thinker's sizes, eval mode: the towers of `thinker.tiny_thinker(seed)`, the ones `qwen2.5-omni-tiny` runs."""
    from .thinker import tiny_thinker

    towers = tiny_thinker(seed).model
    return towers.visual.eval(), towers.audio_tower.eval()

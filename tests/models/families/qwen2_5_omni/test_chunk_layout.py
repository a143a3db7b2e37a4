"""Qwen2.5-Omni's chunked layout and TMRoPE positions against transformers' own code.

The prompt's ids come from `Qwen2_5OmniProcessor`'s own placeholder expansion
(`replace_video_with_audio_token` / `replace_video_token`) called on a processor object built without
`__init__` (processor_inputs.py): its video processor needs torchvision, which does not import here. The
positions come from the tiny thinker's own `get_rope_index`.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.models.qwen2_5_omni import (
    modeling_qwen2_5_omni,
    processing_qwen2_5_omni,
)

from fastav_export.contract.layout import AUDIO, KIND_CODES, TEXT, VIDEO
from fastav_export.errors import FastAVError
from fastav_export.models.families.qwen2_5_omni.chunk_layout import (
    OmniChunkSettings,
    OmniClip,
    audio_tokens_for_feature_length,
    chunk_bounds,
    clip_for_duration,
    layout_for_duration,
    omni_layout,
    omni_positions,
)
from fastav_export.models.families.qwen2_5_omni.tiny_config import (
    TINY_TOKEN_IDS,
    tiny_thinker_config,
)

from .processor_inputs import omni_processor

FIRST_TEXT_ID = 10


@pytest.fixture(scope="module")
def thinker():
    return modeling_qwen2_5_omni.Qwen2_5OmniThinkerForConditionalGeneration(tiny_thinker_config()).eval()


def processor_input_ids(clip: OmniClip, mel_frames: int | None, prefix: int, suffix: int) -> list[int]:
    """The prompt the processor makes: text, <|vision_bos|>, its expansion of <|VIDEO|>, <|vision_eos|>, text.
    prefix/suffix include the specials, as `omni_layout` counts them."""
    processor = omni_processor()
    videos = {"video_grid_thw": [np.array([clip.grid_t, clip.grid_h, clip.grid_w])],
              "video_second_per_grid": [clip.second_per_grid]}
    if mel_frames is None:
        expansion = processor.replace_video_token(videos, 0, load_audio_from_video=False)
    else:
        audio = {"num_audio_tokens": [processing_qwen2_5_omni._get_feat_extract_output_lengths(np.array(mel_frames))]}
        expansion = processor.replace_video_with_audio_token(
            videos, 0, audio, 0, position_id_per_seconds=clip.settings.position_id_per_seconds,
            seconds_per_chunk=clip.settings.seconds_per_chunk)
    media = [TINY_TOKEN_IDS[token] for token in re.findall(r"<\|[A-Za-z_]+\|>", expansion)]
    # The chat template writes <|vision_bos|><|VIDEO|><|vision_eos|>; the rest is arbitrary text.
    before = list(range(FIRST_TEXT_ID, FIRST_TEXT_ID + prefix - clip.specials))
    after = list(range(FIRST_TEXT_ID, FIRST_TEXT_ID + suffix - clip.specials))
    return before + [TINY_TOKEN_IDS["<|vision_bos|>"]] + media + [TINY_TOKEN_IDS["<|vision_eos|>"]] + after


def transformers_positions(thinker, clip: OmniClip, mel_frames: int | None, input_ids: list[int]):
    """[3, N] int64 positions and the rope delta from the thinker's `get_rope_index`."""
    with_audio = mel_frames is not None
    positions, deltas = thinker.get_rope_index(
        torch.tensor([input_ids]), video_grid_thw=torch.tensor([[clip.grid_t, clip.grid_h, clip.grid_w]]),
        use_audio_in_video=with_audio, audio_seqlens=torch.tensor([mel_frames]) if with_audio else None,
        second_per_grids=torch.tensor([clip.second_per_grid]))
    return positions[:, 0].numpy(), int(deltas.reshape(-1)[0])


def make_clip(grid_t, grid_h, grid_w, second_per_grid, mel_frames):
    audio = None if mel_frames is None else audio_tokens_for_feature_length(mel_frames)
    return OmniClip(grid_t, grid_h, grid_w, second_per_grid, audio)


def check_against_transformers(thinker, clip, mel_frames, prefix, suffix):
    ids = processor_input_ids(clip, mel_frames, prefix, suffix)
    layout = omni_layout(clip, prefix, suffix)
    # Layout kinds token by token = the processor's expansion (media ids are video/audio, the rest text).
    kinds = np.select([np.array(ids) == TINY_TOKEN_IDS["<|VIDEO|>"], np.array(ids) == TINY_TOKEN_IDS["<|AUDIO|>"]],
                      [KIND_CODES[VIDEO], KIND_CODES[AUDIO]], KIND_CODES[TEXT])
    np.testing.assert_array_equal(layout.kind_codes(), kinds)
    expected, expected_delta = transformers_positions(thinker, clip, mel_frames, ids)
    ours = omni_positions(clip, prefix, suffix)
    assert ours.position_ids.dtype == np.int64 and ours.position_ids.shape == (3, len(ids))
    np.testing.assert_array_equal(ours.position_ids, expected)
    assert ours.rope_delta == expected_delta
    return layout, ours


# (grid_t, grid_h, grid_w, second_per_grid, mel frames or None): 2 fps unless said otherwise.
CLIPS = {
    "1s": (1, 4, 6, 1.0, 100),
    "1s-4-frames": (2, 4, 6, 0.5, 100),  # qwen-omni-utils' minimum of 4 frames: 4 fps for 1 s
    "2s": (2, 8, 4, 1.0, 200),
    "3s": (3, 4, 6, 1.0, 300),
    "5s": (5, 8, 4, 1.0, 500),
    "7s": (7, 4, 6, 1.0, 700),
    "7s-video-3s-audio": (7, 4, 6, 1.0, 300),
    "2s-video-5s-audio": (2, 8, 4, 1.0, 500),
    "odd-mel-count": (3, 4, 4, 1.0, 257),
    "1.6-fps": (4, 4, 6, 1.25, 480),
    "0.5-fps-frames-skip-chunks": (4, 4, 4, 4.0, 1600),
    "0.67-fps": (3, 4, 4, 3.0, 900),
    "5s-no-audio": (5, 4, 6, 1.0, None),
    "7s-no-audio": (7, 8, 4, 1.0, None),
}


@pytest.mark.parametrize("name", list(CLIPS))
@pytest.mark.parametrize("prefix,suffix", [(7, 6), (2, 2)])
def test_positions_equal_get_rope_index(thinker, name, prefix, suffix):
    grid_t, grid_h, grid_w, second_per_grid, mel = CLIPS[name]
    clip = make_clip(grid_t, grid_h, grid_w, second_per_grid, mel)
    if mel is None:
        prefix, suffix = prefix - 1, suffix - 1  # one special per side without audio
    layout, _ = check_against_transformers(thinker, clip, mel, prefix, suffix)
    assert layout.count(VIDEO) == grid_t * grid_h * grid_w // 4
    assert layout.count(AUDIO) == (0 if mel is None else (((mel - 1) // 2 + 1) - 2) // 2 + 1)


@pytest.mark.parametrize("name", [n for n, c in CLIPS.items() if c[3] * 25 <= 50])
def test_frame_is_the_chunk_of_the_temporal_position(thinker, name):
    """Where frames are at most one chunk apart, a media token's frame is its temporal position's
    50-position range (from the media start), as transformers' positions place it."""
    grid_t, grid_h, grid_w, second_per_grid, mel = CLIPS[name]
    clip = make_clip(grid_t, grid_h, grid_w, second_per_grid, mel)
    layout = omni_layout(clip, clip.specials + 3, clip.specials + 3)
    ids = processor_input_ids(clip, mel, clip.specials + 3, clip.specials + 3)
    temporal = transformers_positions(thinker, clip, mel, ids)[0][0]
    media = layout.kind_codes() != KIND_CODES[TEXT]
    np.testing.assert_array_equal(layout.frames()[media], (temporal[media] - temporal[media].min()) // 50)


def test_seven_second_layout_segments():
    """[text][v0][a0][v1][a1][v2][a2][v3][a3][text]: chunks of two grids and 50 audio tokens, the last
    chunk one grid and 25 audio tokens, each segment's frame its chunk."""
    layout = omni_layout(OmniClip(7, 4, 6, 1.0, 175), 7, 6)
    expected = [("text", 7, None)]
    for chunk, grids in enumerate((2, 2, 2, 1)):
        expected += [("video", 6 * grids, chunk), ("audio", 50 if grids == 2 else 25, chunk)]
    expected.append(("text", 6, None))
    assert [(s.kind, s.length, s.frame) for s in layout.segments] == expected
    assert layout.arrangement == "interleaved"


def test_chunk_ends_with_one_stream():
    # 2 s of video, 5 s of audio: chunks 1 and 2 hold audio only.
    layout = omni_layout(OmniClip(2, 8, 4, 1.0, 125), 2, 2)
    assert [(s.kind, s.length, s.frame) for s in layout.segments[1:-1]] == [
        ("video", 16, 0), ("audio", 50, 0), ("audio", 50, 1), ("audio", 25, 2)]
    # 7 s of video, 2 s of audio: chunks 1..3 hold video only.
    layout = omni_layout(OmniClip(7, 4, 6, 1.0, 50), 2, 2)
    assert [(s.kind, s.frame) for s in layout.segments[1:-1]] == [
        ("video", 0), ("audio", 0), ("video", 1), ("video", 2), ("video", 3)]


def test_no_audio_layout_is_cut_by_chunk_too():
    layout = omni_layout(OmniClip(5, 4, 6, 1.0, None), 1, 1)
    assert [(s.kind, s.length, s.frame) for s in layout.segments] == [
        ("text", 1, None), ("video", 12, 0), ("video", 12, 1), ("video", 6, 2), ("text", 1, None)]
    assert OmniClip(5, 4, 6, 1.0, 0).has_audio is False


def test_chunk_bounds_match_the_processors_rule():
    processor = omni_processor()
    for times in ([0, 0, 25, 25, 50, 50], [0, 100, 100, 100, 200], [0, 75, 150, 225], list(range(130)), [0]):
        assert chunk_bounds(np.array(times), 50) == processor.get_chunked_index(np.array(times), 50), times


def test_audio_tokens_for_feature_length_match_transformers(thinker):
    n = np.arange(0, 3001)
    expected = processing_qwen2_5_omni._get_feat_extract_output_lengths(n)
    _, tower = thinker.model.audio_tower._get_feat_extract_output_lengths(torch.from_numpy(n))
    np.testing.assert_array_equal(tower.numpy(), expected)
    assert [audio_tokens_for_feature_length(int(k)) for k in n] == expected.tolist()
    assert audio_tokens_for_feature_length(200) == 50  # 2 s: one chunk of audio
    with pytest.raises(FastAVError):
        audio_tokens_for_feature_length(-1)


def test_settings_follow_the_tiny_config(thinker):
    config = thinker.config
    defaults = OmniChunkSettings()
    assert (defaults.spatial_merge_size, defaults.position_id_per_seconds, defaults.seconds_per_chunk) == (
        thinker.spatial_merge_size, config.position_id_per_seconds, config.seconds_per_chunk)
    assert defaults.positions_per_chunk == 50


@pytest.mark.parametrize("kwargs,match", [
    ({"grid_t": 0, "grid_h": 4, "grid_w": 4, "second_per_grid": 1.0}, "grid_t"),
    ({"grid_t": 1, "grid_h": 5, "grid_w": 4, "second_per_grid": 1.0}, "merge"),
    ({"grid_t": 1, "grid_h": 4, "grid_w": 4, "second_per_grid": 0.0}, "second_per_grid"),
    ({"grid_t": 1, "grid_h": 4, "grid_w": 4, "second_per_grid": 1.0, "audio_tokens": -3}, "audio_tokens"),
])
def test_bad_clip_is_one_line(kwargs, match):
    with pytest.raises(FastAVError, match=match):
        OmniClip(**kwargs)


def test_prompt_ends_must_hold_the_specials():
    clip = OmniClip(2, 4, 4, 1.0, 50)
    with pytest.raises(FastAVError, match="at least 2"):
        omni_layout(clip, 1, 5)
    with pytest.raises(FastAVError, match="at least 2"):
        omni_positions(clip, 5, 1)
    omni_layout(OmniClip(2, 4, 4, 1.0), 1, 1)  # one special per side without audio


def test_layout_for_duration_640x360(thinker):
    """5 s at 2 fps: 10 frames -> 5 grids of 26 x 46 patches (364 x 644 px), 500 mel frames -> 125 audio."""
    clip = clip_for_duration(5.0, 360, 640)
    assert (clip.grid_t, clip.grid_h, clip.grid_w, clip.second_per_grid, clip.audio_tokens) == (5, 26, 46, 1.0, 125)
    layout, positions = layout_for_duration(5.0, 10, 8, 360, 640)
    assert layout.count(VIDEO) == 5 * 13 * 23 and layout.count(AUDIO) == 125
    assert layout.n_tokens == positions.position_ids.shape[1] == 10 + 5 * 13 * 23 + 125 + 8
    check_against_transformers(thinker, clip, 500, 10, 8)
    silent, _ = layout_for_duration(5.0, 9, 7, with_audio=False)
    assert silent.count(AUDIO) == 0 and silent.count(VIDEO) == layout.count(VIDEO)


@settings(max_examples=120, deadline=None)
@given(grid_t=st.integers(1, 12), merged_h=st.integers(1, 4), merged_w=st.integers(1, 4),
       second_per_grid=st.sampled_from([0.25, 0.5, 2 / 3, 0.8, 1.0, 1.25, 4 / 3, 2.0, 2.5, 3.0, 4.0]),
       mel=st.one_of(st.none(), st.integers(3, 1500)), text_before=st.integers(0, 4), text_after=st.integers(0, 4))
def test_positions_equal_get_rope_index_for_random_clips(thinker, grid_t, merged_h, merged_w, second_per_grid, mel,
                                                         text_before, text_after):
    clip = make_clip(grid_t, 2 * merged_h, 2 * merged_w, second_per_grid, mel)
    check_against_transformers(thinker, clip, mel, text_before + clip.specials, text_after + clip.specials)

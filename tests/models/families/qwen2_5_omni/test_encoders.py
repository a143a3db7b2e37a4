"""Qwen2.5-Omni's vision and audio towers: transformers' modules, tables computed in Python, one ONNX graph
each that equals the module at every clip size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastav_export.errors import FastAVError
from fastav_export.models.families.qwen2_5_omni.audio_tables import (
    AUDIO_TABLE_NAMES,
    audio_graph_inputs,
    audio_tables,
)
from fastav_export.models.families.qwen2_5_omni.encoders import (
    AUDIO_DYNAMIC_AXES,
    AUDIO_GRAPH_IO,
    VISION_DYNAMIC_AXES,
    VISION_GRAPH_IO,
    OmniAudioGraph,
    OmniVisionGraph,
    audio_export_sample,
    random_tiny_encoders,
    vision_export_sample,
)
from fastav_export.models.families.qwen2_5_omni.vision_tables import (
    VISION_TABLE_NAMES,
    vision_graph_inputs,
    vision_tables,
)

# (t, h, w) patch grids: one window a frame; 4 x 3 merged patches (windows cut short); 2 x 2 windows a frame.
GRIDS = [(2, 4, 4), (4, 8, 6), (2, 16, 12)]
# log-mel frames: one short chunk; two chunks with an odd tail; several full chunks (n_window 100 -> 200 frames).
FEATURE_LENGTHS = [100, 237, 700]
ATOL = 1e-4


@pytest.fixture(scope="module")
def encoders():
    return random_tiny_encoders(seed=0)


def _pixel_patches(grid, config, seed=0):
    width = config.in_channels * config.temporal_patch_size * config.patch_size ** 2
    return torch.randn(int(np.prod(grid)), width, generator=torch.Generator().manual_seed(seed))


def _features(length, config, seed=0):
    return torch.randn(config.num_mel_bins, length, generator=torch.Generator().manual_seed(seed))


def _vision_reference(vision, patches, grid):
    with torch.no_grad():
        return vision(patches, grid_thw=torch.tensor([grid])).pooler_output.numpy()


def _audio_reference(audio, features):
    with torch.no_grad():
        return audio(features, feature_lens=torch.tensor([features.shape[1]])).last_hidden_state.numpy()


def _ordered(feeds, io):
    return tuple(torch.from_numpy(feeds[name]) for name in io[0])


def test_random_tiny_encoders_are_seeded():
    (vision_a, audio_a), (vision_b, audio_b) = random_tiny_encoders(3), random_tiny_encoders(3)
    other, _ = random_tiny_encoders(4)
    for left, right in ((vision_a, vision_b), (audio_a, audio_b)):
        for (name, a), b in zip(left.state_dict().items(), right.state_dict().values()):
            assert torch.equal(a, b), name
    assert not torch.equal(vision_a.merger.mlp[0].weight, other.merger.mlp[0].weight)


def test_vision_tables_describe_windows_and_frames(encoders):
    vision, _ = encoders
    tables = vision_tables((2, 16, 12), vision.config)
    assert tuple(tables) == VISION_TABLE_NAMES
    patches = 2 * 16 * 12
    assert tables["position_ids"].shape == (patches, 2) and tables["position_ids"].dtype == np.int64
    assert sorted(tables["window_index"].tolist()) == list(range(patches // 4))
    assert tables["cu_seqlens"].tolist() == [0, 192, 384]
    # 8 x 6 merged patches a frame in 4 x 4 windows: 2 x 2 windows, the lower ones cut to 4 x 2.
    assert tables["cu_window_seqlens"].tolist() == [0, 64, 96, 160, 192, 256, 288, 352, 384]


def test_audio_tables_give_the_encoders_own_token_count(encoders):
    _, audio = encoders
    for length in FEATURE_LENGTHS:
        tables = audio_tables(length, audio.config)
        assert tuple(tables) == AUDIO_TABLE_NAMES
        assert tables["chunk_lengths"].sum() == length
        assert (tables["chunk_lengths"] <= 2 * audio.config.n_window).all()
        _, tokens = audio._get_feat_extract_output_lengths(torch.tensor(length))
        assert len(tables["pool_indices"]) == int(tokens)
        assert tables["cu_seqlens"][-1] == len(tables["valid_indices"])


@pytest.mark.parametrize("grid", GRIDS)
def test_vision_wrapper_equals_the_module(encoders, grid):
    vision, _ = encoders
    patches = _pixel_patches(grid, vision.config)
    with torch.no_grad():
        out = OmniVisionGraph(vision)(*_ordered(vision_graph_inputs(patches, grid, vision.config), VISION_GRAPH_IO))
    np.testing.assert_allclose(out.numpy(), _vision_reference(vision, patches, grid), atol=ATOL, rtol=0)
    assert vision.config._attn_implementation == "sdpa"  # the module's own choice, given back


@pytest.mark.parametrize("length", FEATURE_LENGTHS)
def test_audio_wrapper_equals_the_module(encoders, length):
    _, audio = encoders
    features = _features(length, audio.config)
    with torch.no_grad():
        out = OmniAudioGraph(audio)(*_ordered(audio_graph_inputs(features, audio.config), AUDIO_GRAPH_IO))
    np.testing.assert_allclose(out.numpy(), _audio_reference(audio, features), atol=ATOL, rtol=0)


@pytest.mark.parametrize("bad", [(2, 5, 4), (0, 4, 4), (2, 4), [[2.0, 4.0, 4.0]]])
def test_a_bad_grid_is_one_user_error(encoders, bad):
    vision, _ = encoders
    with pytest.raises(FastAVError):
        vision_tables(bad, vision.config)


def test_bad_audio_is_one_user_error(encoders):
    _, audio = encoders
    with pytest.raises(FastAVError, match="at least"):
        audio_tables(2, audio.config)
    with pytest.raises(FastAVError, match="log-mel"):
        audio_graph_inputs(torch.zeros(80, 300), audio.config)
    with pytest.raises(FastAVError, match="pixel patches"):
        vision_graph_inputs(torch.zeros(10, 1176), (2, 4, 4), encoders[0].config)


def _export(module, sample, name, io, axes, out_dir):
    import onnxruntime as ort

    from fastav_export.export.encoder_graphs import export_encoder

    graph = export_encoder(module, sample, name, io, out_dir, dynamic_axes=axes)
    assert graph.inputs == io[0] and graph.outputs == io[1]
    return ort.InferenceSession(str(graph.path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def vision_session(encoders, tmp_path_factory):
    vision, _ = encoders
    return _export(OmniVisionGraph(vision), vision_export_sample(vision.config), "vision", VISION_GRAPH_IO,
                   VISION_DYNAMIC_AXES, tmp_path_factory.mktemp("omni_vision"))


@pytest.fixture(scope="module")
def audio_session(encoders, tmp_path_factory):
    _, audio = encoders
    return _export(OmniAudioGraph(audio), audio_export_sample(audio.config), "audio_encoder", AUDIO_GRAPH_IO,
                   AUDIO_DYNAMIC_AXES, tmp_path_factory.mktemp("omni_audio"))


@pytest.mark.slow
def test_one_vision_graph_equals_the_module_at_every_grid(encoders, vision_session):
    vision, _ = encoders
    for seed, grid in enumerate(GRIDS):
        patches = _pixel_patches(grid, vision.config, seed)
        (out,) = vision_session.run(None, vision_graph_inputs(patches, grid, vision.config))
        np.testing.assert_allclose(out, _vision_reference(vision, patches, grid), atol=ATOL, rtol=0,
                                   err_msg=f"grid {grid}")


@pytest.mark.slow
def test_one_audio_graph_equals_the_module_at_every_length(encoders, audio_session):
    _, audio = encoders
    for seed, length in enumerate(FEATURE_LENGTHS):
        features = _features(length, audio.config, seed)
        (out,) = audio_session.run(None, audio_graph_inputs(features, audio.config))
        np.testing.assert_allclose(out, _audio_reference(audio, features), atol=ATOL, rtol=0,
                                   err_msg=f"{length} frames")

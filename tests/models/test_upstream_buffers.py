"""Buffers upstream's state dicts carry (position ids) load when they hold what the module computes, are
named in the loading report, and are refused in one line otherwise; any other unknown tensor is refused."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fastav_export.errors import FastAVError
from fastav_export.models import get_model_spec
from fastav_export.models.families.video_salmonn2 import encoders as video_salmonn2_av
from fastav_export.models.families.video_salmonn2.tiny_snapshot import QFORMER_POSITION_IDS
from fastav_export.models.families.video_salmonn2.window_qformer import QFormer, QFormerConfig
from fastav_export.models.families.videollama2 import encoders as videollama2_av
from fastav_export.models.snapshot_parts import Part, load_into
from fastav_export.testing.snapshots import write_tiny_video_salmonn2_snapshot, write_tiny_videollama2_av_snapshot

SALMONN = get_model_spec("video-salmonn2-tiny")
VIDEOLLAMA2 = get_model_spec("videollama2-tiny")
SIGLIP_POSITION_IDS = "model.vision_tower.vision_tower.vision_model.embeddings.position_ids"


@pytest.mark.parametrize("weights", ["safetensors", "all_parameters"])
def test_video_salmonn2_checkpoints_with_the_qformer_position_ids_load(tmp_path, weights):
    directory = write_tiny_video_salmonn2_snapshot(tmp_path / "vs2", seed=3, weights=weights)
    loaded = video_salmonn2_av.load_encoders(directory, SALMONN.dims.hidden_size)
    expected = video_salmonn2_av.random_encoders(video_salmonn2_av.tiny_shapes(SALMONN.dims.hidden_size), seed=3)[1]
    for key, value in expected.state_dict().items():
        assert torch.equal(loaded.audio.state_dict()[key], value), key
    report = loaded.sources["audio encoder"]
    assert "ignored speech_Qformer.bert.embeddings.position_ids [1, 512]" in report and "0..511" in report


@pytest.mark.parametrize("value, words", [
    (torch.arange(512).flip(0).unsqueeze(0), "not the positions 0..511"),
    (torch.ones(1, 512), "not the positions 0..511"),
    (torch.arange(6).reshape(2, 3), "shape [2, 3]"),
    (torch.zeros(1, 4, dtype=torch.bool), "bool"),
])
def test_qformer_position_ids_that_are_not_positions_are_refused(tmp_path, value, words):
    directory = write_tiny_video_salmonn2_snapshot(tmp_path / "vs2", extra_tensors={QFORMER_POSITION_IDS: value})
    with pytest.raises(FastAVError, match="speech_Qformer.bert.embeddings.position_ids") as caught:
        video_salmonn2_av.load_encoders(directory, SALMONN.dims.hidden_size)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_other_unknown_tensors_are_still_refused(tmp_path):
    unknown = {"speech_Qformer.bert.embeddings.token_type_ids": torch.zeros(1, 512, dtype=torch.long)}
    directory = write_tiny_video_salmonn2_snapshot(tmp_path / "vs2", extra_tensors=unknown)
    with pytest.raises(FastAVError, match=r"audio encoder does not match .*unexpected.*token_type_ids"):
        video_salmonn2_av.load_encoders(directory, SALMONN.dims.hidden_size)


def test_siglip_position_ids_that_older_transformers_saved_load(tmp_path):
    positions = _siglip_positions()
    directory = write_tiny_videollama2_av_snapshot(
        tmp_path / "vl2", seed=3, extra_tensors={SIGLIP_POSITION_IDS: torch.arange(positions).unsqueeze(0)})
    loaded = videollama2_av.load_encoders(directory, VIDEOLLAMA2.dims.hidden_size)
    assert f"ignored vision_tower.vision_model.embeddings.position_ids [1, {positions}]" in loaded.sources[
        "vision tower"]


def test_siglip_position_ids_of_another_image_size_are_refused(tmp_path):
    positions = _siglip_positions() + 1
    directory = write_tiny_videollama2_av_snapshot(
        tmp_path / "vl2", extra_tensors={SIGLIP_POSITION_IDS: torch.arange(positions).unsqueeze(0)})
    with pytest.raises(FastAVError, match=rf"vision tower's .*position_ids has shape \[1, {positions}\], expected "
                                          rf"\[1, {positions - 1}\]"):
        videollama2_av.load_encoders(directory, VIDEOLLAMA2.dims.hidden_size)


def _siglip_positions() -> int:
    """Patches per frame of the tiny SigLIP: the length of its position ids."""
    config = videollama2_av.tiny_shapes(VIDEOLLAMA2.dims.hidden_size).siglip
    return (config.image_size // config.patch_size) ** 2


def _qformer() -> QFormer:
    return QFormer(QFormerConfig.tiny())


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=-3, max_value=600), min_size=1, max_size=40))
def test_position_ids_load_only_when_they_count_up_from_zero(values):
    module = _qformer()
    state = {**module.state_dict(), "bert.embeddings.position_ids": torch.tensor([values])}
    if values == list(range(len(values))):
        assert "ignored bert.embeddings.position_ids" in load_into(module, Part(state, ""), "Q-Former", "snap")
    else:
        with pytest.raises(FastAVError, match="position_ids"):
            load_into(module, Part(state, ""), "Q-Former", "snap")


def test_position_ids_outside_an_embeddings_module_are_unknown():
    module = _qformer()
    state = {**module.state_dict(), "bert.encoder.position_ids": torch.arange(4).unsqueeze(0)}
    with pytest.raises(FastAVError, match=r"unexpected \['bert.encoder.position_ids'\]"):
        load_into(module, Part(state, ""), "Q-Former", "snap")

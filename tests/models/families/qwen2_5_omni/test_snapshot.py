"""A Qwen2.5-Omni snapshot in the released format loads its thinker; the speech parts are reported, not read."""

import json

import pytest
import torch

from fastav_export.errors import FastAVError
from fastav_export.models.families.qwen2_5_omni.snapshot import load_thinker
from fastav_export.models.families.qwen2_5_omni.thinker import tiny_thinker
from fastav_export.models.families.qwen2_5_omni.tiny_snapshot import write_tiny_snapshot


def _same_weights(loaded, original):
    expected = original.state_dict()
    state = loaded.state_dict()
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


@pytest.fixture(scope="module")
def original():
    return tiny_thinker(seed=3)


@pytest.mark.parametrize("thinker_only, weights", [(False, "safetensors"), (True, "safetensors"), (False, "bin")])
def test_snapshot_loads_the_thinker(tmp_path, original, thinker_only, weights):
    write_tiny_snapshot(tmp_path, seed=3, thinker_only=thinker_only, weights=weights)
    loaded = load_thinker(tmp_path)
    _same_weights(loaded.thinker, original)
    if thinker_only:
        assert "speech output" not in loaded.sources
    else:
        assert loaded.skipped == {"talker": 2, "token2wav": 1}
        assert "talker.* (2 tensors)" in loaded.sources["speech output"]
    if weights == "bin":
        assert "weights_only=True" in loaded.sources["thinker"]


def test_rotary_tables_are_computed_not_left_empty(tmp_path, original):
    write_tiny_snapshot(tmp_path, seed=3)
    thinker = load_thinker(tmp_path).thinker
    ours, theirs = thinker.model, original.model
    assert torch.equal(ours.language_model.rotary_emb.inv_freq, theirs.language_model.rotary_emb.inv_freq)
    assert torch.equal(ours.visual.rotary_pos_emb.inv_freq, theirs.visual.rotary_pos_emb.inv_freq)
    assert torch.equal(ours.audio_tower.positional_embedding.positional_embedding,
                       theirs.audio_tower.positional_embedding.positional_embedding)


def test_released_key_names_are_the_upstream_checkpoint_names(tmp_path):
    from safetensors import safe_open

    write_tiny_snapshot(tmp_path)
    keys = set()
    for shard in tmp_path.glob("model-*.safetensors"):
        with safe_open(str(shard), framework="pt") as handle:
            keys.update(handle.keys())
    assert {"thinker.model.layers.0.self_attn.q_proj.weight", "thinker.lm_head.weight",
            "thinker.visual.blocks.0.attn.q.weight", "thinker.audio_tower.conv1.weight",
            "thinker.model.embed_tokens.weight"} <= keys


def test_a_config_without_the_thinker_is_one_line(tmp_path):
    write_tiny_snapshot(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["thinker_config"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(FastAVError, match="not a Qwen2.5-Omni config"):
        load_thinker(tmp_path)


def test_a_missing_tensor_is_named(tmp_path):
    from safetensors.torch import load_file, save_file

    write_tiny_snapshot(tmp_path)
    shard = sorted(tmp_path.glob("model-*.safetensors"))[0]
    tensors = load_file(str(shard))
    dropped = sorted(k for k in tensors if k.startswith("thinker."))[0]
    del tensors[dropped]
    save_file(tensors, str(shard), metadata={"format": "pt"})
    with pytest.raises(FastAVError, match="does not match its architecture"):
        load_thinker(tmp_path)

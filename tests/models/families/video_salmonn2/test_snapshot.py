"""A tiny video-SALMONN 2 snapshot with the real key names loads: safetensors shards, or the training
script's all_parameters.bin (weights only, LoRA merged); a snapshot lacking a part is refused in one line."""

from __future__ import annotations

import json

import pytest
import torch

from fastav_export.errors import FastAVError
from fastav_export.models import get_model_spec
from fastav_export.models.checkpoint import checkpoint_family, load_qwen2_checkpoint
from fastav_export.models.families.video_salmonn2.spec import SalmonnOptions
from fastav_export.models.families.video_salmonn2.encoders import load_encoders, random_encoders, tiny_shapes
from fastav_export.testing.models import tiny_model
from fastav_export.testing.snapshots import write_tiny_video_salmonn2_snapshot

SPEC = get_model_spec("video-salmonn2-tiny")


def _same_module(got: torch.nn.Module, expected: torch.nn.Module) -> None:
    got_state, expected_state = got.state_dict(), expected.state_dict()
    assert got_state.keys() == expected_state.keys()
    for key, value in expected_state.items():
        torch.testing.assert_close(got_state[key], value, rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("weights, lora", [("safetensors", False), ("all_parameters", True)])
def test_a_tiny_snapshot_loads_with_the_real_key_names(tmp_path, weights, lora):
    directory = write_tiny_video_salmonn2_snapshot(tmp_path / "vs2", seed=3, weights=weights, lora=lora)
    assert checkpoint_family(directory) == ("video-salmonn2", "video_salmonn_2")
    loaded = load_encoders(directory, SPEC.dims.hidden_size)
    vision, audio = random_encoders(tiny_shapes(SPEC.dims.hidden_size), seed=3)
    _same_module(loaded.vision, vision)
    _same_module(loaded.audio, audio)
    if weights == "all_parameters":
        assert all("all_parameters.bin" in where and "weights_only=True" in where for where in loaded.sources.values())
    decoder = load_qwen2_checkpoint(directory)
    _same_module(decoder.model, tiny_model(SPEC.name))  # the LoRA pairs have B = 0: the merge changes nothing
    if lora:
        assert "LoRA merged" in decoder.source


def test_the_vision_tower_may_come_from_the_siglip_directory(tmp_path):
    directory = write_tiny_video_salmonn2_snapshot(tmp_path / "vs2", seed=3, vision_tower_in_shards=False)
    from safetensors.torch import save_file

    vision, _ = random_encoders(tiny_shapes(SPEC.dims.hidden_size), seed=3)
    tower = {key[len("vision_tower."):]: value.contiguous() for key, value in vision.tower.state_dict().items()}
    extra = tower["vision_model.encoder.layers.0.mlp.fc1.weight"]  # the full model's last layer, which upstream drops
    tower["vision_model.encoder.layers.2.mlp.fc1.weight"] = extra.clone()
    save_file(tower, str(directory / "siglip-tiny" / "model.safetensors"))
    loaded = load_encoders(directory, SPEC.dims.hidden_size)
    _same_module(loaded.vision.tower, vision.tower)
    assert "last layer and head dropped" in loaded.sources["vision tower"]


def test_a_snapshot_without_final_linear_needs_the_option(tmp_path):
    directory = write_tiny_video_salmonn2_snapshot(tmp_path / "vs2")
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    from safetensors.torch import load_file, save_file

    for shard in set(index["weight_map"].values()):
        state = {k: v for k, v in load_file(str(directory / shard)).items() if not k.startswith("final_linear.")}
        save_file(state, str(directory / shard), metadata={"format": "pt"})
    index["weight_map"] = {k: v for k, v in index["weight_map"].items() if not k.startswith("final_linear.")}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(FastAVError, match="--no-final-linear"):
        load_encoders(directory, SPEC.dims.hidden_size)
    loaded = load_encoders(directory, SPEC.dims.hidden_size, SalmonnOptions(use_final_linear=False))
    assert not hasattr(loaded.audio, "final_linear") or loaded.audio.final_linear is None


def test_llava_qwen_is_not_this_family(tmp_path):
    directory = write_tiny_video_salmonn2_snapshot(tmp_path / "vs2")
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "model_type": "llava_qwen"}))
    with pytest.raises(FastAVError, match="unsupported model_type 'llava_qwen'"):
        checkpoint_family(directory)


@pytest.mark.slow
def test_build_and_run_from_the_snapshot(tmp_path, media_clip, capsys):
    from fastav_export.cli import main

    directory = write_tiny_video_salmonn2_snapshot(tmp_path / "vs2", weights="all_parameters", lora=True)
    out = tmp_path / "engine"
    assert main(["build", "--checkpoint", str(directory), "--model", SPEC.name, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "all_parameters.bin" in printed
    manifest = json.loads((out / "config.json").read_text())
    assert manifest["media"]["options"]["window_seconds"] == 0.5 and manifest["media"]["interleave"]
    argv = ["--video", str(media_clip), "--question", "What is it?", "--max-new-tokens", "4"]
    assert main(["run", str(out), *argv, "--json", str(tmp_path / "e.json")]) == 0
    assert main(["run", "--checkpoint", str(directory), "--model", SPEC.name, *argv,
                 "--json", str(tmp_path / "t.json")]) == 0
    engine, torch_run = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("e", "t"))
    assert engine["token_ids"] == torch_run["token_ids"] and engine["kept"] == torch_run["kept"]

"""Checkpoint loading: tiny Qwen2 / VideoLLaMA2 / video-SALMONN 2 snapshots written into tmp_path.

Each test writes the on-disk format by hand (config.json + safetensors, sharded or not, or
`torch.save` .bin files) from a seeded tiny decoder and checks that `load_qwen2_checkpoint` rebuilds the same
logits, names the family, reports the skipped encoder/projector tensors, and turns
every bad snapshot into a one-line `FastAVError`.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import save_file

from fastav_export.cli import main
from fastav_export.contract.synthetic_inputs import synthetic_embeds
from fastav_export.errors import FastAVError
from fastav_export.models import get_model_spec
from fastav_export.models.checkpoint import load_qwen2_checkpoint
from fastav_export.models.families import get_family
from fastav_export.models.model_factory import random_qwen2
from fastav_export.reference.torch_reference import TorchReference
from fastav_export.runtime.generation import generate
from fastav_export.testing.snapshots import write_shards

TINY = get_model_spec("videollama2-tiny")
VIDEOLLAMA2_EXTRA = {
    "model_type": "videollama2_qwen2", "architectures": ["Videollama2Qwen2ForCausalLM"],
    "mm_vision_tower": "google/siglip-so400m-patch14-384", "mm_projector_type": "stc_connector_v35",
    "mm_audio_tower": "audio_tower.bin", "mm_hidden_size": 1152, "mm_hidden_size_a": 768, "num_frames": 16,
}
# The tiny model's layout for that config's 16 frames (a checkpoint's num_frames sets them): 8 video groups.
SNAPSHOT_LAYOUT = get_family(TINY.family).for_checkpoint(TINY, VIDEOLLAMA2_EXTRA, "vl2/config.json").default_layout()
VIDEOLLAMA2_ENCODERS = {  # key -> shape; component counts below
    "model.vision_tower.vision_tower.vision_model.embeddings.patch_embedding.weight": (8, 3, 2, 2),
    "model.vision_tower.vision_tower.vision_model.post_layernorm.weight": (8,),
    "model.mm_projector.readout.0.weight": (64, 8),
    "model.audio_tower.patch_embedding.weight": (4, 1, 2, 2),
    "model.mm_projector_a.0.weight": (64, 4),
    "model.mm_projector_a.0.bias": (64,),
}
SALMONN_ENCODERS = {
    "model.vision_tower.vision_tower.vision_model.post_layernorm.weight": (8,),
    "model.mm_projector.0.weight": (64, 8),
    "model.image_newline": (64,),
    "speech_encoder.conv1.weight": (8, 4, 3),
    "speech_Qformer.bert.embeddings.LayerNorm.weight": (8,),
    "speech_query_tokens": (1, 1, 8),
    "speech_llama_proj.weight": (64, 8),
}


# ---- writers -------------------------------------------------------------------------
def tiny_model(seed: int = 1, tie: bool = False):
    return random_qwen2(replace(TINY.dims, tie_word_embeddings=tie), seed=seed, std=0.2)


def config_dict(model, legacy_rope: bool = False, **extra) -> dict:
    config = json.loads(model.config.to_json_string(use_diff=False))
    if legacy_rope:  # transformers 4.x snapshots: top-level rope_theta, no rope_parameters
        config["rope_theta"] = config.pop("rope_parameters")["rope_theta"]
    return {**config, **extra}


def llm_tensors(model) -> dict[str, torch.Tensor]:
    """Decoder weights as safetensors wants them: contiguous, no shared storage."""
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight")
    return state


def fake_tensors(shapes: dict) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    return {key: torch.randn(shape, generator=generator) for key, shape in shapes.items()}


def write_single(directory, config: dict, tensors: dict):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    return directory


def write_sharded(directory, config: dict, tensors: dict, shards: int = 2):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    write_shards(directory, tensors, shards)
    return directory


def write_videollama2(directory, model):
    write_sharded(directory, config_dict(model, **VIDEOLLAMA2_EXTRA),
                  {**llm_tensors(model), **fake_tensors(VIDEOLLAMA2_ENCODERS)})
    (directory / "audio_tower.bin").write_bytes(b"\x80\x04not a real pickle")  # never read
    return directory


def write_pickle_only(directory, model, name: str = "model.pt"):
    """A snapshot whose only weights are a pickle file that is never read (not a .bin name the loader knows)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config_dict(model, **VIDEOLLAMA2_EXTRA)))
    (directory / name).write_bytes(b"\x80\x04arbitrary bytes")
    return directory


def write_bin(directory, config: dict, tensors: dict, name: str = "pytorch_model.bin"):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    torch.save(tensors, directory / name)
    return directory


def write_bin_shards(directory, config: dict, tensors: dict, shards: int = 2):
    """`tensors` as save_pretrained(..., safe_serialization=False) shards them, with pytorch_model.bin.index.json."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    keys, weight_map = sorted(tensors), {}
    for i in range(shards):
        name = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
        part = {key: tensors[key] for key in keys[i::shards]}
        torch.save(part, directory / name)
        weight_map.update(dict.fromkeys(part, name))
    (directory / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return directory


def assert_same_logits(model, loaded):
    embeds = torch.randn(2, 11, TINY.dims.hidden_size, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(loaded(inputs_embeds=embeds).logits, model(inputs_embeds=embeds).logits,
                                   atol=1e-6, rtol=0)


def assert_one_line_error(directory, *fragments) -> str:
    with pytest.raises(FastAVError) as info:
        load_qwen2_checkpoint(directory)
    message = str(info.value)
    assert "\n" not in message and message
    assert all(f in message for f in fragments), message
    return message


# ---- formats -------------------------------------------------------------------------
def test_plain_qwen2_save_pretrained(tmp_path):
    model = tiny_model(seed=1)
    model.save_pretrained(tmp_path / "qwen2", safe_serialization=True)
    loaded = load_qwen2_checkpoint(tmp_path / "qwen2")
    assert (loaded.family, loaded.model_type, loaded.skipped) == ("qwen2", "qwen2", {})
    assert loaded.source == "model.safetensors"
    assert loaded.describe_skipped() == "no non-decoder weights"
    assert_same_logits(model, loaded.model)


def test_videollama2_sharded_skips_encoders_and_never_reads_pickles(tmp_path, monkeypatch):
    model = tiny_model(seed=2)
    directory = write_videollama2(tmp_path / "vl2", model)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load called on a pickle"))
    loaded = load_qwen2_checkpoint(directory)
    assert (loaded.family, loaded.model_type) == ("videollama2", "videollama2_qwen2")
    assert loaded.skipped == {"model.vision_tower": 2, "model.mm_projector": 1,
                              "model.audio_tower": 1, "model.mm_projector_a": 2}
    assert "model.mm_projector_a.* (2 tensors)" in loaded.describe_skipped()
    assert loaded.source == "model-00001-of-00002.safetensors, model-00002-of-00002.safetensors"
    assert_same_logits(model, loaded.model)


def test_video_salmonn2_legacy_config(tmp_path):
    model = tiny_model(seed=3)
    config = config_dict(model, legacy_rope=True, model_type="video_salmonn_2",
                         architectures=["VideoSALMONN2ForCausalLM"])
    directory = write_single(tmp_path / "salmonn", config, {**llm_tensors(model), **fake_tensors(SALMONN_ENCODERS)})
    loaded = load_qwen2_checkpoint(directory)
    assert (loaded.family, loaded.model_type) == ("video-salmonn2", "video_salmonn_2")
    for group in ("model.vision_tower", "model.mm_projector", "speech_encoder", "speech_Qformer",
                  "speech_query_tokens", "speech_llama_proj"):
        assert loaded.skipped[group] == 1, loaded.skipped
    assert sum(loaded.skipped.values()) == len(SALMONN_ENCODERS)
    assert_same_logits(model, loaded.model)


def test_skipped_top_level_model_parameter_keeps_its_name(tmp_path):
    model = tiny_model(seed=3)
    config = config_dict(model, model_type="video_salmonn_2", architectures=["VideoSALMONN2ForCausalLM"])
    directory = write_single(tmp_path / "salmonn", config, {**llm_tensors(model), **fake_tensors(SALMONN_ENCODERS)})
    loaded = load_qwen2_checkpoint(directory)
    assert loaded.skipped.get("model.image_newline") == 1 and "model" not in loaded.skipped, loaded.skipped


def test_tied_embeddings_without_lm_head(tmp_path):
    model = tiny_model(seed=4, tie=True)
    tensors = llm_tensors(model)
    assert "lm_head.weight" not in tensors
    loaded = load_qwen2_checkpoint(write_single(tmp_path / "tied", config_dict(model), tensors))
    assert loaded.model.lm_head.weight is loaded.model.model.embed_tokens.weight
    assert_same_logits(model, loaded.model)


# ---- torch.save .bin files (read with torch.load(weights_only=True)) --------------------
@pytest.mark.parametrize("tie", [False, True])
def test_pytorch_model_bin(tmp_path, tie):
    model = tiny_model(seed=6, tie=tie)
    directory = write_bin(tmp_path / "bin", config_dict(model), llm_tensors(model))
    loaded = load_qwen2_checkpoint(directory)
    assert loaded.source == "pytorch_model.bin, read with torch.load(weights_only=True)"
    assert (loaded.family, loaded.skipped) == ("qwen2", {})
    assert_same_logits(model, loaded.model)


def test_sharded_bin_with_index_skips_encoders(tmp_path):
    model = tiny_model(seed=7)
    config = config_dict(model, **VIDEOLLAMA2_EXTRA)
    tensors = {**llm_tensors(model), **fake_tensors(VIDEOLLAMA2_ENCODERS)}
    directory = write_bin_shards(tmp_path / "shards", config, tensors, shards=3)
    (directory / "pytorch_model.bin").write_bytes(b"never read: the index comes first")
    loaded = load_qwen2_checkpoint(directory)
    assert loaded.source == ("pytorch_model-00001-of-00003.bin ... pytorch_model-00003-of-00003.bin (3 files), "
                             "read with torch.load(weights_only=True)")
    assert loaded.skipped == {"model.vision_tower": 2, "model.mm_projector": 1,
                              "model.audio_tower": 1, "model.mm_projector_a": 2}
    assert_same_logits(model, loaded.model)


def test_safetensors_win_over_bin_files(tmp_path, monkeypatch):
    model = tiny_model(seed=8)
    directory = write_single(tmp_path / "both", config_dict(model), llm_tensors(model))
    torch.save(llm_tensors(tiny_model(seed=9)), directory / "pytorch_model.bin")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load called although safetensors hold it"))
    assert_same_logits(model, load_qwen2_checkpoint(directory).model)


def test_decoder_in_bin_beside_encoder_safetensors(tmp_path):
    model = tiny_model(seed=10)
    directory = write_single(tmp_path / "split", config_dict(model, **VIDEOLLAMA2_EXTRA),
                             fake_tensors(VIDEOLLAMA2_ENCODERS))
    torch.save(llm_tensors(model), directory / "pytorch_model.bin")
    loaded = load_qwen2_checkpoint(directory)
    assert loaded.source.startswith("pytorch_model.bin") and sum(loaded.skipped.values()) == 6, loaded.skipped
    assert_same_logits(model, loaded.model)


class NotATensor:
    pass


def test_bin_holding_a_pickled_object_is_refused(tmp_path, capsys):
    model = tiny_model()
    directory = write_bin(tmp_path / "hostile", config_dict(model), {**llm_tensors(model), "extra": NotATensor()})
    message = assert_one_line_error(directory, "refused pytorch_model.bin", "weights_only=True", "NotATensor")
    assert "safetensors" in message
    assert main(["run", "--checkpoint", str(directory)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_bad_bin_files_are_one_line(tmp_path):
    model = tiny_model()
    corrupt = write_bin(tmp_path / "corrupt", config_dict(model), llm_tensors(model))
    (corrupt / "pytorch_model.bin").write_bytes((corrupt / "pytorch_model.bin").read_bytes()[:1000])
    assert_one_line_error(corrupt, "cannot read pytorch_model.bin")
    tensors = llm_tensors(model)
    del tensors["model.norm.weight"]
    partial = write_bin_shards(tmp_path / "partial", config_dict(model), tensors)
    assert_one_line_error(partial, "missing ['model.norm.weight']")
    (partial / "pytorch_model-00002-of-00002.bin").unlink()
    assert_one_line_error(partial, "missing shards")
    (partial / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": {"x": "../escape.bin"}}))
    assert_one_line_error(partial, "not a file name beside it")
    mismatch = write_bin(tmp_path / "mismatch", config_dict(model, intermediate_size=96), llm_tensors(model))
    assert_one_line_error(mismatch, "does not match the weights")
    twice = {**llm_tensors(model), "module.model.norm.weight": llm_tensors(model)["model.norm.weight"]}
    assert_one_line_error(write_bin(tmp_path / "twice", config_dict(model), twice), "two tensors", "model.norm.weight")


# ---- errors --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["model.pt", "model.pth", "model.ckpt", "weights.pkl", "adapter_model.bin"])
def test_other_pickle_files_are_refused(tmp_path, monkeypatch, name):
    directory = write_pickle_only(tmp_path / "pickle", tiny_model(), name)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load called on a pickle"))
    assert_one_line_error(directory, "pickle", "safetensors", name, "pytorch_model.bin", "all_parameters.bin")


def test_unsupported_missing_and_incomplete_checkpoints(tmp_path):
    model = tiny_model()
    llama = write_single(tmp_path / "llama", config_dict(model, model_type="llama"), llm_tensors(model))
    assert_one_line_error(llama, "unsupported model_type 'llama'")
    (tmp_path / "noconfig").mkdir()
    assert_one_line_error(tmp_path / "noconfig", "no config.json")
    assert_one_line_error(tmp_path / "absent", "does not exist")
    tensors = llm_tensors(model)
    del tensors["model.layers.3.mlp.down_proj.weight"]
    partial = write_single(tmp_path / "partial", config_dict(model), tensors)
    assert_one_line_error(partial, "model.layers.3.mlp.down_proj.weight")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_safetensors(tmp_path, damage):
    model = tiny_model()
    directory = write_single(tmp_path / "bad", config_dict(model), llm_tensors(model))
    path = directory / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(b"\x00\x01garbage" * 10 if damage == "garbage" else data[: len(data) // 2])
    assert_one_line_error(directory, "model.safetensors")


def test_index_naming_a_missing_shard(tmp_path):
    directory = write_videollama2(tmp_path / "vl2", tiny_model())
    (directory / "model-00002-of-00002.safetensors").unlink()
    assert_one_line_error(directory, "missing shards")


def test_config_that_does_not_match_the_weights(tmp_path):
    model = tiny_model()
    config = config_dict(model, intermediate_size=96)  # tensors are 128 wide
    assert_one_line_error(write_single(tmp_path / "mismatch", config, llm_tensors(model)), "does not match the weights")


def test_invalid_index_file(tmp_path):
    directory = write_videollama2(tmp_path / "vl2", tiny_model())
    (directory / "model.safetensors.index.json").write_text("{not json")
    assert_one_line_error(directory, "safetensors index", "is not valid JSON")


# ---- command line --------------------------------------------------------------------
def test_cli_runs_a_videollama2_checkpoint(tmp_path, capsys):
    directory = write_videollama2(tmp_path / "vl2", tiny_model(seed=5))
    out = tmp_path / "out.json"
    code = main(["run", "--checkpoint", str(directory), "--model", "videollama2-tiny",
                 "--max-new-tokens", "4", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    model = load_qwen2_checkpoint(directory).model
    layout = SNAPSHOT_LAYOUT
    embeds = synthetic_embeds(model.model.embed_tokens.weight, layout, 1, seed=0)
    expected = generate(TorchReference(model, layout, TINY.preset), embeds, 4)
    assert json.loads(out.read_text())["tokens"] == expected.tokens


def test_cli_refuses_a_pickle_checkpoint(tmp_path, capsys):
    directory = write_pickle_only(tmp_path / "pickle", tiny_model())
    assert main(["run", "--checkpoint", str(directory)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "pickle" in err, err


@pytest.mark.slow
def test_cli_builds_and_runs_an_engine_from_a_checkpoint(tmp_path, capsys):
    directory = write_videollama2(tmp_path / "vl2", tiny_model(seed=5))
    engine = tmp_path / "engine"
    code = main(["build", "--checkpoint", str(directory), "--model", "videollama2-tiny", "--decoder-only",
                 "--out", str(engine)])
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((engine / "config.json").read_text())
    # the engine is the model it was built as (not the checkpoint directory's name): its placeholder id is VideoLLaMA2's
    assert manifest["model"] == "videollama2-tiny"
    assert manifest["source"] == {"kind": "checkpoint", "path": str(directory.resolve())}
    assert main(["triton", str(engine), "--out", str(tmp_path / "repo")]) == 0
    assert 'string_value: "-201"' in (tmp_path / "repo" / "engine" / "config.pbtxt").read_text()
    out = tmp_path / "out.json"
    assert main(["run", str(engine), "--max-new-tokens", "4", "--json", str(out)]) == 0
    model = load_qwen2_checkpoint(directory).model
    layout = SNAPSHOT_LAYOUT
    embeds = synthetic_embeds(model.model.embed_tokens.weight, layout, 1, seed=0)
    expected = generate(TorchReference(model, layout, TINY.preset), embeds, 4)
    assert json.loads(out.read_text())["tokens"] == expected.tokens


# ---- hostile snapshots ------------------------------------------------------------------
def test_a_huge_dimension_is_refused_before_the_model_is_allocated(tmp_path, monkeypatch):
    """hidden_size 10**9 made `make_qwen2` allocate the model before any shape was checked."""
    import fastav_export.models.model_factory as factory

    model = tiny_model()
    monkeypatch.setattr(factory, "make_qwen2", lambda *a, **k: pytest.fail("the model was allocated"))
    big = write_single(tmp_path / "big", config_dict(model, hidden_size=10**9), llm_tensors(model))
    assert_one_line_error(big, "config.json")
    as_float = write_single(tmp_path / "float", config_dict(model, hidden_size=1e9), llm_tensors(model))
    assert_one_line_error(as_float, "hidden_size", "expected an integer")


@pytest.mark.parametrize("changes,fragments", [
    ({"hidden_size": -64}, ("hidden_size is -64", "integer >= 1")),
    ({"num_hidden_layers": 2.5}, ("num_hidden_layers is 2.5",)),
    ({"vocab_size": "256"}, ("vocab_size is '256'",)),
    ({"num_attention_heads": 3}, ("not a multiple",)),
    ({"num_key_value_heads": 0}, ("num_key_value_heads is 0",)),
    ({"rms_norm_eps": -1.0}, ("rms_norm_eps",)),
])
def test_bad_dimensions_are_one_line(tmp_path, changes, fragments):
    model = tiny_model()
    assert_one_line_error(write_single(tmp_path / "bad", config_dict(model, **changes), llm_tensors(model)),
                          *fragments)


def test_json_lists_where_objects_belong_are_one_line(tmp_path, capsys):
    """A JSON-list config.json (AttributeError) and a list weight_map (AttributeError) were tracebacks."""
    model = tiny_model()
    listed = write_single(tmp_path / "list", config_dict(model), llm_tensors(model))
    (listed / "config.json").write_text("[1, 2]")
    assert_one_line_error(listed, "JSON list", "not an object")
    assert main(["run", "--checkpoint", str(listed)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    sharded = write_videollama2(tmp_path / "vl2", model)
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": ["a", "b"]}))
    assert_one_line_error(sharded, "no weight_map object")
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"x": "../../etc/passwd"}}))
    assert_one_line_error(sharded, "not a file name beside it")


def test_unreadable_files_are_one_line(tmp_path, deny_reading):
    """An unreadable config.json or shard is a one-line error, not a PermissionError."""
    model = tiny_model()
    directory = write_videollama2(tmp_path / "vl2", model)
    deny_reading(directory / "model-00001-of-00002.safetensors")
    assert_one_line_error(directory, "cannot read", "model-00001-of-00002.safetensors")
    deny_reading(directory / "config.json")
    assert_one_line_error(directory, "cannot read checkpoint config", "Permission denied")

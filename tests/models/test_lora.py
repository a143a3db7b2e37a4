"""LoRA and training-checkpoint keys: video-SALMONN 2's `all_parameters.bin` and PEFT key names.

video-SALMONN 2's training saves the whole model as one `torch.save` state dict, its keys under
DeepSpeed's `module.` and PEFT's `base_model.model.`, with LoRA on the decoder's q/k/v
projections (`q_proj.base_layer.weight`, `q_proj.lora_A.default.weight` [r, in],
`q_proj.lora_B.default.weight` [out, r]). These tests write that format from a seeded tiny
decoder and check that the loaded model equals the base model with W + alpha/r * B @ A applied
by hand, and that what the merge cannot do right is refused in one line.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fastav_export.errors import FastAVError
from fastav_export.models.checkpoint import load_qwen2_checkpoint
from fastav_export.models.state_keys import canonical_key, merge_lora

from .test_checkpoint import (
    assert_one_line_error,
    assert_same_logits,
    config_dict,
    llm_tensors,
    tiny_model,
    write_single,
)

SALMONN = {"model_type": "video_salmonn_2", "architectures": ["VideoSALMONN2ForCausalLM"]}
ENCODERS = {"module.base_model.model.speech_encoder.conv1.weight": (8, 4, 3),
            "module.base_model.model.model.mm_projector.0.weight": (64, 8)}
TARGETS = ("q_proj", "k_proj", "v_proj")
RANK, ALPHA = 4, 8
PEFT = "module.base_model.model."
TINY_LAYERS = tiny_model().config.num_hidden_layers


def adapter_config(**changes) -> dict:
    """adapter_config.json as PEFT writes it (the fields the merge reads, and a few it ignores)."""
    return {"peft_type": "LORA", "r": RANK, "lora_alpha": ALPHA, "lora_dropout": 0.05, "bias": "none",
            "target_modules": list(TARGETS), "use_rslora": False, "use_dora": False, "fan_in_fan_out": False,
            "rank_pattern": {}, "alpha_pattern": {}, "task_type": "CAUSAL_LM", **changes}


def lora_pairs(model, seed: int = 11, rank: int = RANK) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """module name (`model.layers.0.self_attn.q_proj`) -> (A [r, in], B [out, r]), seeded, B non-zero."""
    generator, pairs = torch.Generator().manual_seed(seed), {}
    for name, module in model.named_modules():
        if name.endswith(TARGETS):
            out_features, in_features = module.weight.shape
            pairs[name] = (0.1 * torch.randn(rank, in_features, generator=generator),
                           0.1 * torch.randn(out_features, rank, generator=generator))
    return pairs


def peft_state(model, pairs, prefix: str = PEFT, adapter: str = ".default") -> dict[str, torch.Tensor]:
    """The decoder's state dict as a DeepSpeed-wrapped PEFT LoRA model names it."""
    state = {}
    for key, tensor in llm_tensors(model).items():
        module, _, leaf = key.rpartition(".")
        if module in pairs:
            state[f"{prefix}{module}.base_layer.{leaf}"] = tensor
            if leaf == "weight":
                a, b = pairs[module]
                state[f"{prefix}{module}.lora_A{adapter}.weight"] = a.clone()
                state[f"{prefix}{module}.lora_B{adapter}.weight"] = b.clone()
        else:
            state[prefix + key] = tensor
    return state


def merged_by_hand(model, pairs, scale: float):
    """The reference: `model` with W + scale * B @ A applied to every LoRA target."""
    with torch.no_grad():
        for name, (a, b) in pairs.items():
            model.get_submodule(name).weight += scale * (b @ a)
    return model


def write_salmonn(directory, model, pairs, adapter: dict | None = None, extra: dict | None = None,
                  dtype=torch.float32):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config_dict(model, **SALMONN)))
    state = {**peft_state(model, pairs), **{key: torch.randn(shape) for key, shape in ENCODERS.items()},
             **(extra or {})}
    torch.save({key: value.to(dtype) for key, value in state.items()}, directory / "all_parameters.bin")
    if adapter is not None:
        (directory / "adapter_config.json").write_text(json.dumps(adapter))
    return directory


# ---- loads ---------------------------------------------------------------------------
def test_all_parameters_bin_with_lora_equals_the_merge_by_hand(tmp_path):
    model = tiny_model(seed=21)
    pairs = lora_pairs(model)
    directory = write_salmonn(tmp_path / "salmonn", model, pairs, adapter_config())
    loaded = load_qwen2_checkpoint(directory)
    assert (loaded.family, loaded.model_type) == ("video-salmonn2", "video_salmonn_2")
    assert loaded.skipped == {"speech_encoder": 1, "model.mm_projector": 1}
    assert loaded.source == ("all_parameters.bin, read with torch.load(weights_only=True); "
                             f"LoRA merged into {len(pairs)} modules (alpha/r = 2)")
    assert len(pairs) == 3 * TINY_LAYERS
    before = tiny_model(seed=21)
    embeds = torch.randn(1, 5, 64)
    with torch.no_grad():
        assert not torch.allclose(loaded.model(inputs_embeds=embeds).logits, before(inputs_embeds=embeds).logits)
    assert_same_logits(merged_by_hand(model, pairs, ALPHA / RANK), loaded.model)


def test_bf16_all_parameters_merges_in_fp32_and_keeps_bf16(tmp_path):
    model = tiny_model(seed=22)
    with torch.no_grad():  # bf16 values held in fp32 (model.to(bf16) would also round the rotary buffers)
        for parameter in model.parameters():
            parameter.copy_(parameter.bfloat16().float())
    pairs = {name: (a.bfloat16(), b.bfloat16()) for name, (a, b) in lora_pairs(model).items()}
    directory = write_salmonn(tmp_path / "bf16", model, pairs, adapter_config(), dtype=torch.bfloat16)
    loaded = load_qwen2_checkpoint(directory)
    with torch.no_grad():
        for name, (a, b) in pairs.items():
            weight = model.get_submodule(name).weight
            weight.copy_((weight + (ALPHA / RANK) * (b.float() @ a.float())).bfloat16().float())
    assert_same_logits(model, loaded.model)


def test_rslora_scale(tmp_path):
    model = tiny_model(seed=23)
    pairs = lora_pairs(model)
    directory = write_salmonn(tmp_path / "rslora", model, pairs, adapter_config(use_rslora=True))
    loaded = load_qwen2_checkpoint(directory)
    assert loaded.source.endswith(f"(alpha/sqrt(r) = {ALPHA / math.sqrt(RANK):g})"), loaded.source
    assert_same_logits(merged_by_hand(model, pairs, ALPHA / math.sqrt(RANK)), loaded.model)


def test_peft_keys_in_safetensors_and_adapter_without_name(tmp_path):
    """save_pretrained of a PEFT-wrapped model: `base_model.model.` keys, `lora_A.weight` (no adapter name)."""
    model = tiny_model(seed=24)
    pairs = lora_pairs(model)
    tensors = peft_state(model, pairs, prefix="base_model.model.", adapter="")
    directory = write_single(tmp_path / "peft", config_dict(model), tensors)
    (directory / "adapter_config.json").write_text(json.dumps(adapter_config(lora_alpha=16)))
    loaded = load_qwen2_checkpoint(directory)
    assert loaded.source == f"model.safetensors; LoRA merged into {len(pairs)} modules (alpha/r = 4)"
    assert_same_logits(merged_by_hand(model, pairs, 16 / RANK), loaded.model)


def test_plain_all_parameters_without_lora_needs_no_adapter_config(tmp_path):
    model = tiny_model(seed=25)
    directory = write_salmonn(tmp_path / "full", model, {})
    loaded = load_qwen2_checkpoint(directory)
    assert loaded.source == "all_parameters.bin, read with torch.load(weights_only=True)"
    assert_same_logits(model, loaded.model)


# ---- refusals ------------------------------------------------------------------------
def test_lora_without_adapter_config_is_refused(tmp_path):
    model = tiny_model()
    directory = write_salmonn(tmp_path / "noconfig", model, lora_pairs(model))
    assert_one_line_error(directory, "no adapter_config.json", "r and lora_alpha", "merge_and_unload")


@pytest.mark.parametrize("changes,fragment", [
    ({"use_dora": True}, "DoRA"),
    ({"fan_in_fan_out": True}, "fan_in_fan_out"),
    ({"rank_pattern": {"q_proj": 8}}, "rank_pattern"),
    ({"alpha_pattern": {"q_proj": 8}}, "alpha_pattern"),
    ({"r": 0}, "r is 0"),
    ({"r": 8}, "says r 8"),
    ({"lora_alpha": "8"}, "lora_alpha is '8'"),
    ({"peft_type": "IA3"}, "peft_type is 'IA3'"),
])
def test_unsupported_adapter_configs_are_refused(tmp_path, changes, fragment):
    model = tiny_model()
    directory = write_salmonn(tmp_path / "bad", model, lora_pairs(model), adapter_config(**changes))
    assert_one_line_error(directory, fragment)


def test_adapter_config_that_is_not_an_object(tmp_path):
    model = tiny_model()
    directory = write_salmonn(tmp_path / "bad", model, lora_pairs(model))
    (directory / "adapter_config.json").write_text("[4, 8]")
    assert_one_line_error(directory, "adapter_config.json", "JSON list")
    (directory / "adapter_config.json").write_text("{r: 4")
    assert_one_line_error(directory, "adapter_config.json", "not valid JSON")


Q = "model.layers.0.self_attn.q_proj"


@pytest.mark.parametrize("damage,fragments", [
    ("no lora_B", ("lora_A without its lora_B",)),
    ("no lora_A", ("lora_B without its lora_A",)),
    ("no base weight", ("missing", f"{Q}.weight")),  # the decoder check comes first
    ("wrong shape", ("does not match its weight",)),
    ("embedding", ("LoRA on embeddings",)),
    ("dora", ("lora_magnitude_vector",)),
    ("two adapters", ("several LoRA adapters", "default", "other")),
])
def test_inconsistent_lora_tensors_are_refused(tmp_path, damage, fragments):
    model = tiny_model()
    directory = write_salmonn(tmp_path / "bad", model, lora_pairs(model), adapter_config())
    path = directory / "all_parameters.bin"
    state = torch.load(path, weights_only=True)
    a, b = f"{PEFT}{Q}.lora_A.default.weight", f"{PEFT}{Q}.lora_B.default.weight"
    if damage == "no lora_B":
        del state[b]
    elif damage == "no lora_A":
        del state[a]
    elif damage == "no base weight":
        del state[f"{PEFT}{Q}.base_layer.weight"]
    elif damage == "wrong shape":
        state[b] = state[b][:-1]
    elif damage == "embedding":
        state[f"{PEFT}model.embed_tokens.lora_embedding_A.default"] = torch.zeros(RANK, 256)
    elif damage == "dora":
        state[f"{PEFT}{Q}.lora_magnitude_vector.default.weight"] = torch.ones(64)
    else:
        state[f"{PEFT}{Q}.lora_A.other.weight"] = state[a].clone()
        state[f"{PEFT}{Q}.lora_B.other.weight"] = state[b].clone()
    torch.save(state, path)
    assert_one_line_error(directory, *fragments)


# ---- properties ----------------------------------------------------------------------
@pytest.mark.parametrize("prefix", ["", "module.", "base_model.model.", "module.base_model.model."])
def test_canonical_key_undoes_every_wrapper(prefix):
    for key in tiny_model().state_dict():
        module, _, leaf = key.rpartition(".")
        assert canonical_key(prefix + key) == key
        assert canonical_key(f"{prefix}{module}.base_layer.{leaf}") == key
    assert canonical_key("model.module.x") == "model.module.x"  # only leading wrappers are removed
    assert canonical_key("speech_encoder.conv1.weight") == "speech_encoder.conv1.weight"


@settings(max_examples=40, deadline=None)
@given(out_features=st.integers(1, 6), in_features=st.integers(1, 6), rank=st.integers(1, 4),
       alpha=st.sampled_from([1, 2, 8, 16, 0.5]), seed=st.integers(0, 2**16),
       dtype=st.sampled_from([torch.float32, torch.bfloat16, torch.float16]), named=st.booleans())
def test_merge_lora_is_w_plus_scale_b_at_a(tmp_path_factory, out_features, in_features, rank, alpha, seed, dtype,
                                           named):
    directory = tmp_path_factory.mktemp("adapter")
    (directory / "adapter_config.json").write_text(json.dumps({"r": rank, "lora_alpha": alpha}))
    generator = torch.Generator().manual_seed(seed)
    weight, bias = (torch.randn(out_features, in_features, generator=generator).to(dtype),
                    torch.randn(out_features, generator=generator).to(dtype))
    a, b = (torch.randn(rank, in_features, generator=generator).to(dtype),
            torch.randn(out_features, rank, generator=generator).to(dtype))
    name = ".default" if named else ""
    state = {"m.weight": weight, "m.bias": bias, f"m.lora_A{name}.weight": a, f"m.lora_B{name}.weight": b,
             "n.weight": weight.clone()}
    merged, count = merge_lora(state, directory)
    assert count == 1 and set(merged) == {"m.weight", "m.bias", "n.weight"}
    expected = (weight.float() + alpha / rank * (b.float() @ a.float())).to(dtype)
    assert merged["m.weight"].dtype == dtype and torch.equal(merged["m.weight"], expected)
    assert merged["m.bias"] is bias and merged["n.weight"] is state["n.weight"]
    assert set(state) == {"m.weight", "m.bias", f"m.lora_A{name}.weight", f"m.lora_B{name}.weight", "n.weight"}
    zero, _ = merge_lora({**state, f"m.lora_B{name}.weight": torch.zeros_like(b)}, directory)
    assert torch.equal(zero["m.weight"], weight)  # PEFT's initial B = 0 changes nothing


def test_merge_lora_edge_cases(tmp_path):
    state = {"m.weight": torch.ones(2, 2)}
    assert merge_lora(state, tmp_path / "absent") == (state, 0)  # no LoRA: adapter_config.json is not read
    pair = {"m.lora_A.weight": torch.ones(1, 2), "m.lora_B.weight": torch.ones(2, 1)}
    with pytest.raises(FastAVError, match="no adapter_config.json"):
        merge_lora({**state, **pair}, tmp_path)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 1, "lora_alpha": 2}))
    with pytest.raises(FastAVError, match="no base weight m.weight"):
        merge_lora(pair, tmp_path)
    merged, count = merge_lora({**state, **pair}, tmp_path)
    assert count == 1 and torch.equal(merged["m.weight"], torch.full((2, 2), 3.0))

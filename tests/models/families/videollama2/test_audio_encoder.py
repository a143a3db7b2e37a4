"""VideoLLaMA2-AV's audio tower (BEATs) and projector: key names, the maths against an
upstream-shaped reference, checkpoint loading, and the ONNX export."""

from __future__ import annotations

import math

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fastav_export.errors import FastAVError
from fastav_export.media.filterbank import audio_features
from fastav_export.media.settings import AudioSettings
from fastav_export.models.families.videollama2.audio_projector import CHECKPOINT_PREFIX as PROJECTOR_PREFIX
from fastav_export.models.families.videollama2.audio_projector import AudioProjector, projector_state_dict
from fastav_export.models.families.videollama2.beats import (
    CHECKPOINT_PREFIX,
    BEATs,
    load_beats_state_dict,
    real_beats_config,
    tiny_beats_config,
    token_count,
)
from fastav_export.models.families.videollama2.beats_layers import WeightNormConv1d, relative_position_buckets

TWO_SECONDS = AudioSettings(seconds=2.0)

# Representative keys of VideoLLaMA2-AV's audio tower (upstream BEATs.py / backbone.py module
# paths; the checkpoint prefixes them with `model.audio_tower.`) with their shapes.
REAL_TOWER_KEYS = {
    "patch_embedding.weight": (512, 1, 16, 16),
    "layer_norm.weight": (512,),
    "layer_norm.bias": (512,),
    "post_extract_proj.weight": (768, 512),
    "post_extract_proj.bias": (768,),
    "encoder.pos_conv.0.weight_g": (1, 1, 128),
    "encoder.pos_conv.0.weight_v": (768, 48, 128),
    "encoder.pos_conv.0.bias": (768,),
    "encoder.layer_norm.weight": (768,),
    "encoder.layer_norm.bias": (768,),
    "encoder.layers.0.self_attn.relative_attention_bias.weight": (320, 12),
    "encoder.layers.11.self_attn.relative_attention_bias.weight": (320, 12),
    "encoder.layers.0.self_attn.grep_linear.weight": (8, 64),
    "encoder.layers.0.self_attn.grep_linear.bias": (8,),
    "encoder.layers.7.self_attn.grep_a": (1, 12, 1, 1),
    "encoder.layers.0.self_attn.q_proj.weight": (768, 768),
    "encoder.layers.0.self_attn.k_proj.bias": (768,),
    "encoder.layers.5.self_attn.v_proj.weight": (768, 768),
    "encoder.layers.11.self_attn.out_proj.weight": (768, 768),
    "encoder.layers.3.self_attn_layer_norm.weight": (768,),
    "encoder.layers.3.fc1.weight": (3072, 768),
    "encoder.layers.3.fc2.weight": (768, 3072),
    "encoder.layers.11.final_layer_norm.bias": (768,),
    "predictor.weight": (527, 768),
    "predictor.bias": (527,),
}


def _tiny_tower(seed: int = 0) -> BEATs:
    torch.manual_seed(seed)
    model = BEATs(tiny_beats_config()).eval()
    with torch.no_grad():  # non-trivial gates, magnitudes and tables
        for layer in model.encoder.layers:
            layer.self_attn.grep_a.uniform_(0.5, 1.5)
        model.encoder.pos_conv[0].weight_g.uniform_(0.5, 2.0)
        model.encoder.layers[0].self_attn.relative_attention_bias.weight.normal_(std=0.5)
    return model


def _two_second_fbank(seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    t = np.arange(2 * 16_000) / 16_000
    wave = 0.3 * np.sin(2 * np.pi * 660 * t) + 0.05 * rng.standard_normal(t.shape)
    return audio_features(wave.astype(np.float32), TWO_SECONDS)


# ---- key names -------------------------------------------------------------------------------

def test_real_tower_keys_are_the_checkpoints() -> None:
    with torch.device("meta"):
        model = BEATs(real_beats_config())
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert {key: shapes.get(key) for key in REAL_TOWER_KEYS} == REAL_TOWER_KEYS
    # 5 front-end + 3 pos_conv + 2 encoder norm + 12 layers x 20 + 2 predictor; no conv bias, no 13th layer.
    assert len(shapes) == 252
    assert "patch_embedding.bias" not in shapes and not any(k.startswith("encoder.layers.12.") for k in shapes)
    assert all(len([k for k in shapes if k.startswith(f"encoder.layers.{i}.")]) == 20 for i in range(12))


def test_real_projector_keys_are_the_checkpoints() -> None:
    with torch.device("meta"):
        projector = AudioProjector()
    shapes = {key: tuple(value.shape) for key, value in projector.state_dict().items()}
    assert shapes == {"0.weight": (3584, 768), "0.bias": (3584,), "2.weight": (3584, 3584), "2.bias": (3584,)}


def test_projector_weights_are_cut_after_their_name() -> None:
    checkpoint = {PROJECTOR_PREFIX + "0.weight": torch.ones(2), "model.mm_projector.readout.0.weight": torch.zeros(2),
                  PROJECTOR_PREFIX + "2.bias": torch.ones(3)}
    assert set(projector_state_dict(checkpoint)) == {"0.weight", "2.bias"}


def test_relative_position_table_is_shared_by_every_layer() -> None:
    model = _tiny_tower()
    tables = [layer.self_attn.relative_attention_bias.weight for layer in model.encoder.layers]
    assert all(table is tables[0] for table in tables)
    keys = [k for k in model.state_dict() if k.endswith("relative_attention_bias.weight")]
    assert len(keys) == len(model.encoder.layers)


# ---- relative position bias --------------------------------------------------------------------

def reference_bucket(offset: int, num_buckets: int, max_distance: int) -> int:
    """T5/WavLM bidirectional bucket of key - query = offset, in plain float64 arithmetic."""
    half = num_buckets // 2
    bucket = half if offset > 0 else 0
    distance = abs(offset)
    exact = half // 2
    if distance < exact:
        return bucket + distance
    far = exact + int(math.log(distance / exact) / math.log(max_distance / exact) * (half - exact))
    return bucket + min(far, half - 1)


@pytest.mark.parametrize("length, num_buckets, max_distance", [(1496, 320, 800), (24, 16, 32), (300, 16, 32)])
def test_relative_position_buckets_match_the_formula(length: int, num_buckets: int, max_distance: int) -> None:
    offsets = np.arange(-(length - 1), length)
    table = np.array([reference_bucket(int(d), num_buckets, max_distance) for d in offsets])
    i, j = np.meshgrid(np.arange(length), np.arange(length), indexing="ij")
    expected = table[(j - i) + length - 1]
    ours = relative_position_buckets(length, num_buckets, max_distance).numpy()
    np.testing.assert_array_equal(ours, expected)
    assert ours.min() >= 0 and ours.max() < num_buckets


def test_position_bias_looks_up_the_shared_table() -> None:
    model = _tiny_tower()
    attn = model.encoder.layers[1].self_attn
    bias = attn.position_bias(24, 32)
    weight = model.encoder.layers[0].self_attn.relative_attention_bias.weight
    for i, j in [(0, 0), (3, 20), (20, 3), (5, 6), (23, 0)]:
        torch.testing.assert_close(bias[:, i, j], weight[reference_bucket(j - i, 16, 32)])


# ---- the forward pass --------------------------------------------------------------------------

def reference_forward(model: BEATs, fbank: torch.Tensor) -> torch.Tensor:
    """Upstream's extract_features (backbone.py), functional, in its T x B x C layout."""
    cfg, sd = model.config, model.state_dict()
    x = ((fbank - 15.41663) / (2 * 6.55582)).unsqueeze(1)
    x = F.conv2d(x, sd["patch_embedding.weight"], stride=cfg.input_patch_size)
    x = x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2)
    x = F.layer_norm(x, (cfg.embed_dim,), sd["layer_norm.weight"], sd["layer_norm.bias"])
    x = F.linear(x, sd["post_extract_proj.weight"], sd["post_extract_proj.bias"])
    g, v = sd["encoder.pos_conv.0.weight_g"], sd["encoder.pos_conv.0.weight_v"]
    w = g * (v * torch.rsqrt(v.pow(2).sum([0, 1], keepdim=True) + 1e-6))
    conv = F.conv1d(x.transpose(1, 2), w, sd["encoder.pos_conv.0.bias"], padding=cfg.conv_pos // 2,
                    groups=cfg.conv_pos_groups)
    x = x + F.gelu(conv[:, :, :-1] if cfg.conv_pos % 2 == 0 else conv).transpose(1, 2)
    dim = cfg.encoder_embed_dim
    x = F.layer_norm(x, (dim,), sd["encoder.layer_norm.weight"], sd["encoder.layer_norm.bias"]).transpose(0, 1)
    tgt, bsz, _ = x.shape
    heads, head_dim = cfg.encoder_attention_heads, dim // cfg.encoder_attention_heads
    scaling, alpha, deep = head_dim ** -0.5, 32, (2 * cfg.encoder_layers) ** 0.25
    table = sd["encoder.layers.0.self_attn.relative_attention_bias.weight"]
    buckets = torch.tensor([[reference_bucket(j - i, cfg.num_buckets, cfg.max_distance) for j in range(tgt)]
                            for i in range(tgt)])
    pos_bias = table[buckets].permute(2, 0, 1).unsqueeze(0).repeat(bsz, 1, 1, 1).view(bsz * heads, tgt, tgt)
    for n in range(cfg.encoder_layers):
        p = f"encoder.layers.{n}."

        def lin(name, t, p=p):
            return F.linear(t, sd[p + name + ".weight"], sd[p + name + ".bias"])

        def norm(name, t, p=p):
            return F.layer_norm(t, (dim,), sd[p + name + ".weight"], sd[p + name + ".bias"])

        q = lin("self_attn.q_proj", x) * scaling / alpha
        k, val = lin("self_attn.k_proj", x), lin("self_attn.v_proj", x)
        q = q.contiguous().view(tgt, bsz * heads, head_dim).transpose(0, 1)
        k = k.contiguous().view(-1, bsz * heads, head_dim).transpose(0, 1)
        val = val.contiguous().view(-1, bsz * heads, head_dim).transpose(0, 1)
        weights = torch.bmm(q, k.transpose(1, 2))
        weights = (weights - weights.max(dim=-1, keepdim=True)[0]) * alpha
        query = q.view(bsz, heads, tgt, head_dim) * alpha / scaling
        gate_a, gate_b = torch.sigmoid(lin("self_attn.grep_linear", query).view(bsz, heads, tgt, 2, 4)
                                       .sum(-1)).chunk(2, dim=-1)
        gate = gate_a * (gate_b * sd[p + "self_attn.grep_a"] - 1.0) + 2.0
        weights = weights + (gate.view(bsz * heads, tgt, 1) * pos_bias).view(weights.size())
        attn = torch.bmm(F.softmax(weights, dim=-1), val).transpose(0, 1).contiguous().view(tgt, bsz, dim)
        x = norm("self_attn_layer_norm", x * deep + lin("self_attn.out_proj", attn))
        x = norm("final_layer_norm", x * deep + lin("fc2", F.gelu(lin("fc1", x))))
    return x.transpose(0, 1)


def test_two_seconds_give_24_time_major_tokens() -> None:
    model, fbank = _tiny_tower(), _two_second_fbank()
    assert fbank.shape == (1, 198, 128) and token_count(198, 128, model.config) == 24
    with torch.no_grad():
        assert model(fbank).shape == (1, 24, 32)
    # Changing the patch of time step 2, mel band 1 changes only token 2 * 4 + 1 of the patch features.
    features = []
    hook = model.post_extract_proj.register_forward_hook(lambda _m, _i, out: features.append(out))
    changed = fbank.clone()
    changed[0, 64:96, 32:64] += 3.0
    with torch.no_grad():
        model(fbank), model(changed)
    hook.remove()
    moved = (features[0] - features[1]).abs().amax(-1)[0]
    assert moved.nonzero().flatten().tolist() == [9]


def test_forward_matches_upstreams_extract_features() -> None:
    model = _tiny_tower()
    fbank = torch.cat([_two_second_fbank(0), _two_second_fbank(1)])
    with torch.no_grad():
        ours, expected = model(fbank), reference_forward(model, fbank)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    # Batch rows are independent.
    with torch.no_grad():
        torch.testing.assert_close(model(fbank[1:]), ours[1:], rtol=1e-5, atol=1e-5)


def test_weight_norm_reads_both_storage_names_and_matches_torch() -> None:
    torch.manual_seed(0)
    conv = torch.nn.utils.parametrizations.weight_norm(nn.Conv1d(8, 8, 6, padding=3, groups=2), name="weight", dim=2)
    state = conv.state_dict()
    assert {"parametrizations.weight.original0", "parametrizations.weight.original1"} <= set(state)
    ours = WeightNormConv1d(8, 6, 2)
    ours.load_state_dict(state)
    x = torch.randn(2, 8, 20)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), conv(x), rtol=1e-5, atol=1e-5)
    legacy = {"weight_g": state["parametrizations.weight.original0"],
              "weight_v": state["parametrizations.weight.original1"], "bias": state["bias"]}
    again = WeightNormConv1d(8, 6, 2)
    again.load_state_dict(legacy)
    torch.testing.assert_close(again.weight(), ours.weight())


# ---- checkpoint loading ------------------------------------------------------------------------

def _checkpoint(model: BEATs, keep_tables: tuple[int, ...] = (0,)) -> dict[str, torch.Tensor]:
    """The tower's weights as a full-model checkpoint stores them, shared table under some layers only."""
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("relative_attention_bias.weight") and int(key.split(".")[2]) not in keep_tables:
            continue
        state[CHECKPOINT_PREFIX + key] = value.clone()
    state["model.layers.0.mlp.up_proj.weight"] = torch.zeros(1)  # decoder weights are ignored
    return state


def test_loads_a_checkpoint_with_the_shared_table_saved_once() -> None:
    source, target = _tiny_tower(0), _tiny_tower(1)
    load_beats_state_dict(target, _checkpoint(source, keep_tables=(0,)))
    fbank = _two_second_fbank()
    with torch.no_grad():
        torch.testing.assert_close(target(fbank), source(fbank), rtol=0, atol=0)
    again = _tiny_tower(2)
    load_beats_state_dict(again, _checkpoint(source, keep_tables=(0, 1)))
    torch.testing.assert_close(again.state_dict(), source.state_dict(), rtol=0, atol=0)


def test_refuses_checkpoints_that_do_not_fit() -> None:
    source = _tiny_tower()
    broken = _checkpoint(source)
    del broken[CHECKPOINT_PREFIX + "encoder.layers.1.fc1.weight"]
    with pytest.raises(FastAVError, match="do not fit"):
        load_beats_state_dict(_tiny_tower(), broken)
    with pytest.raises(FastAVError, match="no audio tower"):
        load_beats_state_dict(_tiny_tower(), {"model.layers.0.x": torch.zeros(1)})
    different = _checkpoint(source, keep_tables=(0, 1))
    different[CHECKPOINT_PREFIX + "encoder.layers.1.self_attn.relative_attention_bias.weight"] += 1.0
    with pytest.raises(FastAVError, match="relative position"):
        load_beats_state_dict(_tiny_tower(), different)


# ---- ONNX --------------------------------------------------------------------------------------

class _AudioEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.tower = _tiny_tower()
        torch.manual_seed(3)
        self.projector = AudioProjector(32, 48)

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        return self.projector(self.tower(fbank))


@pytest.mark.slow  # an ONNX export
def test_onnx_export_reproduces_torch(tmp_path) -> None:
    # Opset 23, as the project's encoder graphs (export/encoder_graphs.py).
    encoder = _AudioEncoder().eval()
    fbank = _two_second_fbank()
    with torch.no_grad():
        expected = encoder(fbank).numpy()
        program = torch.onnx.export(encoder, (fbank,), dynamo=True, opset_version=23, input_names=["fbank"],
                                    output_names=["audio_embeds"], verbose=False)
    path = tmp_path / "audio.onnx"
    program.save(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"fbank": fbank.numpy()})
    assert got.shape == (1, 24, 48)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)

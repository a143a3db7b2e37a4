"""VideoLLaMA2's vision path: SigLIP tower, RegNet stage, STC connector (key names, shapes, numerics, ONNX)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fastav_export.errors import FastAVError
from fastav_export.models.encoders import siglip_tower
from fastav_export.models.families.videollama2 import stc_connector
from fastav_export.models.families.videollama2.regnet_stage import Bottleneck, RegStage, tiny_stage_config
from fastav_export.models.encoders.siglip_tower import SiglipTower, real_siglip_config, tiny_siglip_config
from fastav_export.models.families.videollama2.stc_connector import (
    STCConnectorV35,
    pooled_side,
    real_stc_config,
    tiny_stc_config,
)

# The parameters of one timm RegNet Bottleneck as the STC connector builds it (upstream names).
BLOCK_KEYS = [
    "conv1.conv.weight", "conv1.bn.weight", "conv1.bn.bias",
    "conv2.conv.weight", "conv2.bn.weight", "conv2.bn.bias",
    "se.fc1.weight", "se.fc1.bias", "se.fc2.weight", "se.fc2.bias",
    "conv3.conv.weight", "conv3.bn.weight", "conv3.bn.bias",
]
SHORTCUT_KEYS = ["downsample.conv.weight", "downsample.bn.weight", "downsample.bn.bias"]
# s1.b1 is the only block that changes width (encoder -> LLM), so the only one with a conv shortcut.
STC_KEYS = (
    [f"s1.b1.{k}" for k in BLOCK_KEYS + SHORTCUT_KEYS]
    + [f"s1.b{i}.{k}" for i in (2, 3, 4) for k in BLOCK_KEYS]
    + ["sampler.0.weight", "sampler.0.bias"]
    + [f"s2.b{i}.{k}" for i in (1, 2, 3, 4) for k in BLOCK_KEYS]
    + ["readout.0.weight", "readout.0.bias", "readout.2.weight", "readout.2.bias"]
)


@torch.no_grad()
def randomize(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every parameter random (norm scales near 1), so no test passes on ones and zeros."""
    gen = torch.Generator().manual_seed(seed)
    for name, param in module.named_parameters():
        noise = torch.randn(param.shape, generator=gen)
        if param.dim() == 1:
            param.copy_(1 + 0.2 * noise if name.endswith("bn.weight") else 0.1 * noise)
        else:
            param.copy_(noise / math.sqrt(param[0].numel()))
    return module.eval()


def ort_run(module: torch.nn.Module, trace_input: torch.Tensor, run_input: torch.Tensor, tmp_path, **export_kwargs):
    import onnxruntime as ort

    path = tmp_path / "model.onnx"
    torch.onnx.export(module, (trace_input,), str(path), dynamo=True, opset_version=18, **export_kwargs)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: run_input.numpy()})
    return output, path


# ---------------------------------------------------------------- STC connector: structure and shapes


def test_stc_state_dict_keys_are_upstreams():
    model = STCConnectorV35.from_config(tiny_stc_config())
    assert list(model.state_dict()) == STC_KEYS
    assert stc_connector.CHECKPOINT_PREFIX + "s1.b1.conv1.conv.weight" == "model.mm_projector.s1.b1.conv1.conv.weight"


def test_stc_real_parameter_shapes():
    """The real connector (1152 -> 3584), built on the meta device: timm's defaults show in the shapes."""
    with torch.device("meta"):
        model = STCConnectorV35.from_config(real_stc_config())
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert list(shapes) == STC_KEYS
    assert shapes["s1.b1.conv1.conv.weight"] == (3584, 1152, 1, 1)  # bottle_ratio 1: no narrowing
    assert shapes["s1.b1.conv2.conv.weight"] == (3584, 1, 3, 3)  # group_size 1: depthwise
    assert shapes["s1.b1.se.fc1.weight"] == (288, 3584, 1, 1)  # se width round(0.25 * in): 1152 / 4
    assert shapes["s1.b2.se.fc1.weight"] == (896, 3584, 1, 1)  # 3584 / 4
    assert shapes["s1.b1.downsample.conv.weight"] == (3584, 1152, 1, 1)
    assert shapes["s1.b1.conv1.bn.weight"] == (3584,)
    assert shapes["sampler.0.weight"] == (3584, 3584, 2, 2, 2)
    assert shapes["readout.0.weight"] == shapes["readout.2.weight"] == (3584, 3584)


def test_pooled_side():
    assert [pooled_side(s) for s in (27, 6, 2, 3)] == [13, 3, 1, 1]


@pytest.mark.parametrize("frames, side, enc, hidden, rows", [
    (16, 27, 8, 16, 8 * 13 * 13),  # VideoLLaMA2.1-AV's real token count, narrow channels
    (8, 6, 32, 64, 4 * 3 * 3),  # the tiny model
    (5, 7, 8, 16, 2 * 3 * 3),  # odd frame and patch counts: the leftovers are dropped
])
def test_stc_output_shape(frames, side, enc, hidden, rows):
    model = randomize(STCConnectorV35(enc, hidden))
    with torch.no_grad():
        out = model(torch.randn(frames, side * side, enc))
    assert out.shape == (rows, hidden)
    assert model.output_tokens(frames, side * side) == rows
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("shape, message", [
    ((8, 35, 32), "not a square grid"),
    ((8, 36, 16), "pass one clip as"),
    ((1, 8, 36, 32), "pass one clip as"),
    ((1, 36, 32), "at least 2 frames"),
    ((8, 1, 32), "at least 2 frames"),
])
def test_stc_rejects_bad_input(shape, message):
    model = STCConnectorV35.from_config(tiny_stc_config())
    with pytest.raises(FastAVError, match=message):
        model(torch.zeros(shape))


# ---------------------------------------------------------------- RegNet stage: numerics


def channel_norm(x, weight, bias, act):
    """LayerNorm over dim 1 of NCHW, written out (eps 1e-5 as timm's LayerNormAct2d)."""
    mean = x.mean(dim=1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=1, keepdim=True)
    y = (x - mean) / torch.sqrt(var + 1e-5) * weight[None, :, None, None] + bias[None, :, None, None]
    return F.silu(y) if act else y


def reference_block(x, p, has_shortcut_conv):
    """timm's RegNet Bottleneck (bottle_ratio 1, group_size 1, se 0.25, SiLU, LayerNorm2d), by hand."""
    def conv_norm(h, name, act=True, **conv):
        return channel_norm(F.conv2d(h, p[f"{name}.conv.weight"], **conv), p[f"{name}.bn.weight"],
                            p[f"{name}.bn.bias"], act)

    h = conv_norm(x, "conv1")
    h = conv_norm(h, "conv2", padding=1, groups=h.shape[1])
    squeeze = F.silu(F.conv2d(h.mean(dim=(2, 3), keepdim=True), p["se.fc1.weight"], p["se.fc1.bias"]))
    h = h * torch.sigmoid(F.conv2d(squeeze, p["se.fc2.weight"], p["se.fc2.bias"]))
    h = conv_norm(h, "conv3", act=False)
    shortcut = conv_norm(x, "downsample", act=False) if has_shortcut_conv else x
    return F.silu(h + shortcut)


def test_regstage_matches_handwritten_reference():
    stage = randomize(tiny_stage_config().build(), seed=1)
    params = stage.state_dict()
    x = torch.randn(3, 32, 6, 6)
    expected = x
    for i in range(1, 5):
        block = {k[len(f"b{i}."):]: v for k, v in params.items() if k.startswith(f"b{i}.")}
        expected = reference_block(expected, block, has_shortcut_conv=(i == 1))
    with torch.no_grad():
        actual = stage(x)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_block_with_zeroed_last_norm_is_silu_of_its_input():
    """conv3's norm scale and shift at 0 (timm's zero_init_last): the block reduces to SiLU(shortcut)."""
    block = randomize(Bottleneck(16, 16), seed=2)
    with torch.no_grad():
        block.conv3.bn.weight.zero_()
        block.conv3.bn.bias.zero_()
        x = torch.randn(2, 16, 5, 5)
        torch.testing.assert_close(block(x), F.silu(x))
    assert isinstance(block.downsample, torch.nn.Identity)  # same width, stride 1: identity shortcut


def test_regstage_block_names():
    stage = RegStage(4, 8, 16)
    assert [name for name, _ in stage.named_children()] == ["b1", "b2", "b3", "b4"]


# ---------------------------------------------------------------- STC connector: layout against a slow reference


def test_stc_matches_a_frame_by_frame_reference():
    """s1 per frame, the sampler as an explicit sum over each 2 x 2 x 2 window, tokens in (t, row, col) order."""
    model = randomize(STCConnectorV35.from_config(tiny_stc_config()), seed=3)
    frames, side, enc, hidden = 8, 6, 32, 64
    x = torch.randn(frames, side * side, enc)
    with torch.no_grad():
        actual = model(x)
        grids = [model.s1(x[t].reshape(side, side, enc).permute(2, 0, 1)[None])[0] for t in range(frames)]
        weight, bias = model.sampler[0].weight, model.sampler[0].bias  # [H, H, 2, 2, 2], [H]
        out_side = pooled_side(side)
        rows = []
        for t in range(frames // 2):
            pooled = torch.empty(hidden, out_side, out_side)
            for i in range(out_side):
                for j in range(out_side):
                    acc = bias.clone()
                    for dt in range(2):
                        for di in range(2):
                            for dj in range(2):
                                acc += weight[:, :, dt, di, dj] @ grids[2 * t + dt][:, 2 * i + di, 2 * j + dj]
                    pooled[:, i, j] = F.silu(acc)
            mixed = model.s2(pooled[None])[0]
            rows += [mixed[:, i, j] for i in range(out_side) for j in range(out_side)]
        expected = model.readout(torch.stack(rows))
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- SigLIP tower


def test_siglip_configs():
    real, tiny = real_siglip_config(), tiny_siglip_config()
    assert (real.hidden_size, real.intermediate_size, real.num_hidden_layers, real.num_attention_heads,
            real.image_size, real.patch_size) == (1152, 4304, 27, 16, 384, 14)
    assert (real.image_size // real.patch_size) ** 2 == 729  # 27 x 27 (384 = 27 * 14 + 6: the rest is cut)
    assert (tiny.hidden_size, tiny.num_hidden_layers, tiny.num_attention_heads, tiny.intermediate_size,
            tiny.image_size, tiny.patch_size) == (32, 2, 2, 64, 48, 8)


def test_siglip_keys_are_the_checkpoints():
    """Real tower on the meta device: every key under `vision_tower.vision_model.`, 27 layers, head included."""
    with torch.device("meta"):
        tower = SiglipTower(real_siglip_config())
    keys = list(tower.state_dict())
    assert all(k.startswith("vision_tower.vision_model.") for k in keys)
    # The key DAMO-NLP-SG/VideoLLaMA2.1-7B-AV's checkpoint stores its first vision weight under:
    assert siglip_tower.CHECKPOINT_PREFIX + keys[0] == (
        "model.vision_tower.vision_tower.vision_model.embeddings.patch_embedding.weight")
    for key in ("embeddings.position_embedding.weight", "encoder.layers.26.mlp.fc2.bias",
                "encoder.layers.0.self_attn.q_proj.weight", "post_layernorm.weight", "head.probe",
                "head.attention.in_proj_weight", "head.mlp.fc1.weight"):
        assert f"vision_tower.vision_model.{key}" in keys
    assert "vision_tower.vision_model.encoder.layers.27.mlp.fc1.weight" not in keys
    assert len(keys) == 3 + 27 * 16 + 2 + 11  # embeddings, layers, post_layernorm, head
    assert tower.layers_run == 26 and tower.num_patches == 729


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_siglip_returns_the_penultimate_hidden_state(attn):
    torch.manual_seed(0)
    tower = SiglipTower(tiny_siglip_config(), attn_implementation=attn).eval()
    frames = torch.randn(3, 3, 48, 48)
    with torch.no_grad():
        out = tower(frames)
        hidden_states = tower.hf_model(frames, output_hidden_states=True).hidden_states
        truncated = tower.truncated()(frames)
    assert out.shape == (3, 36, 32)
    assert len(hidden_states) == 3  # embeddings + 2 layers
    torch.testing.assert_close(out, hidden_states[-2], rtol=0, atol=0)
    torch.testing.assert_close(truncated, out, rtol=0, atol=0)
    assert not torch.allclose(out, hidden_states[-1])


def test_siglip_select_layer():
    torch.manual_seed(0)
    tower = SiglipTower(tiny_siglip_config(), select_layer=-1).eval()
    frames = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(tower(frames), tower.forward_reference(frames), rtol=0, atol=0)
    with pytest.raises(FastAVError, match="outside the 2-layer vision tower"):
        SiglipTower(tiny_siglip_config(), select_layer=-4)


@pytest.mark.parametrize("shape, message", [
    ((2, 3, 40, 40), "resize them to 48 x 48"),
    ((2, 1, 48, 48), r"pass frames as \[frames, 3, 48, 48\]"),
    ((3, 48, 48), "pass frames as"),
])
def test_siglip_rejects_bad_frames(shape, message):
    tower = SiglipTower(tiny_siglip_config())
    with pytest.raises(FastAVError, match=message):
        tower(torch.zeros(shape))


# ---------------------------------------------------------------- ONNX


@pytest.mark.slow  # an ONNX export
def test_stc_exports_to_onnx(tmp_path):
    model = randomize(STCConnectorV35.from_config(tiny_stc_config()), seed=4)
    x = torch.randn(8, 36, 32)
    with torch.no_grad():
        expected = model(x).numpy()
    output, _ = ort_run(model, x, x, tmp_path)
    assert output.shape == (36, 64)
    np.testing.assert_allclose(output, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow  # an ONNX export
def test_siglip_exports_to_onnx_without_the_unused_layer(tmp_path):
    import onnx

    torch.manual_seed(0)
    tower = SiglipTower(tiny_siglip_config()).eval()
    frames = torch.randn(3, 3, 48, 48)  # run with 3 frames, traced with 2: the frame axis is dynamic
    with torch.no_grad():
        expected = tower(frames).numpy()
    output, path = ort_run(tower, frames[:2], frames, tmp_path,
                           dynamic_shapes={"pixel_values": {0: torch.export.Dim("frames")}})
    assert output.shape == (3, 36, 32)
    np.testing.assert_allclose(output, expected, rtol=1e-4, atol=1e-4)
    names = [init.name for init in onnx.load(str(path)).graph.initializer]
    assert any("layers.0." in n for n in names)
    assert not [n for n in names if "layers.1." in n or "post_layernorm" in n or "head" in n]

"""video-SALMONN 2's audio encoder: checkpoint key names, token counts, window order, the chunk
position embedding, the Q-Former against explicit matmuls, and the ONNX export."""

from __future__ import annotations

import math

import numpy as np
import onnxruntime as ort
import pytest
import torch

from fastav_export.errors import FastAVError
from fastav_export.export.encoder_graphs import export_encoder
from fastav_export.media.whisper_features import whisper_chunks
from fastav_export.models.families.video_salmonn2.salmonn_audio import (
    CHECKPOINT_PREFIXES,
    SalmonnAudioConfig,
    SalmonnAudioEncoder,
    chunk_position_embedding,
    real_salmonn_audio_config,
    tiny_salmonn_audio_config,
)
from fastav_export.models.families.video_salmonn2.window_qformer import QFormer, QFormerConfig

SR = 16_000

# Layer 0 of upstream's keys, written out; other layers are the same with the index replaced.
WHISPER_LAYER0 = [
    "speech_encoder.layers.0.self_attn.k_proj.weight",  # Whisper's k_proj has no bias
    "speech_encoder.layers.0.self_attn.v_proj.weight", "speech_encoder.layers.0.self_attn.v_proj.bias",
    "speech_encoder.layers.0.self_attn.q_proj.weight", "speech_encoder.layers.0.self_attn.q_proj.bias",
    "speech_encoder.layers.0.self_attn.out_proj.weight", "speech_encoder.layers.0.self_attn.out_proj.bias",
    "speech_encoder.layers.0.self_attn_layer_norm.weight", "speech_encoder.layers.0.self_attn_layer_norm.bias",
    "speech_encoder.layers.0.fc1.weight", "speech_encoder.layers.0.fc1.bias",
    "speech_encoder.layers.0.fc2.weight", "speech_encoder.layers.0.fc2.bias",
    "speech_encoder.layers.0.final_layer_norm.weight", "speech_encoder.layers.0.final_layer_norm.bias",
]
QFORMER_LAYER0 = [
    "speech_Qformer.bert.encoder.layer.0.attention.self.query.weight",
    "speech_Qformer.bert.encoder.layer.0.attention.self.query.bias",
    "speech_Qformer.bert.encoder.layer.0.attention.self.key.weight",
    "speech_Qformer.bert.encoder.layer.0.attention.self.key.bias",
    "speech_Qformer.bert.encoder.layer.0.attention.self.value.weight",
    "speech_Qformer.bert.encoder.layer.0.attention.self.value.bias",
    "speech_Qformer.bert.encoder.layer.0.attention.output.dense.weight",
    "speech_Qformer.bert.encoder.layer.0.attention.output.dense.bias",
    "speech_Qformer.bert.encoder.layer.0.attention.output.LayerNorm.weight",
    "speech_Qformer.bert.encoder.layer.0.attention.output.LayerNorm.bias",
    "speech_Qformer.bert.encoder.layer.0.crossattention.self.query.weight",
    "speech_Qformer.bert.encoder.layer.0.crossattention.self.query.bias",
    "speech_Qformer.bert.encoder.layer.0.crossattention.self.key.weight",
    "speech_Qformer.bert.encoder.layer.0.crossattention.self.key.bias",
    "speech_Qformer.bert.encoder.layer.0.crossattention.self.value.weight",
    "speech_Qformer.bert.encoder.layer.0.crossattention.self.value.bias",
    "speech_Qformer.bert.encoder.layer.0.crossattention.output.dense.weight",
    "speech_Qformer.bert.encoder.layer.0.crossattention.output.dense.bias",
    "speech_Qformer.bert.encoder.layer.0.crossattention.output.LayerNorm.weight",
    "speech_Qformer.bert.encoder.layer.0.crossattention.output.LayerNorm.bias",
    "speech_Qformer.bert.encoder.layer.0.intermediate_query.dense.weight",
    "speech_Qformer.bert.encoder.layer.0.intermediate_query.dense.bias",
    "speech_Qformer.bert.encoder.layer.0.output_query.dense.weight",
    "speech_Qformer.bert.encoder.layer.0.output_query.dense.bias",
    "speech_Qformer.bert.encoder.layer.0.output_query.LayerNorm.weight",
    "speech_Qformer.bert.encoder.layer.0.output_query.LayerNorm.bias",
]
OTHER_KEYS = [
    "speech_encoder.conv1.weight", "speech_encoder.conv1.bias", "speech_encoder.conv2.weight",
    "speech_encoder.conv2.bias", "speech_encoder.embed_positions.weight",
    "speech_encoder.layer_norm.weight", "speech_encoder.layer_norm.bias",
    "ln_speech.weight", "ln_speech.bias",
    "speech_Qformer.bert.embeddings.LayerNorm.weight", "speech_Qformer.bert.embeddings.LayerNorm.bias",
    "speech_query_tokens", "speech_llama_proj.weight", "speech_llama_proj.bias",
]
FINAL_LINEAR_KEYS = ["final_linear.0.weight", "final_linear.0.bias", "final_linear.2.weight", "final_linear.2.bias"]


def expected_keys(whisper_layers: int, qformer_layers: int, final_linear: bool) -> set[str]:
    keys = set(OTHER_KEYS) | (set(FINAL_LINEAR_KEYS) if final_linear else set())
    for i in range(whisper_layers):
        keys |= {k.replace(".layers.0.", f".layers.{i}.") for k in WHISPER_LAYER0}
    for i in range(qformer_layers):
        keys |= {k.replace(".layer.0.", f".layer.{i}.") for k in QFORMER_LAYER0}
    return keys


def randomise(module: torch.nn.Module) -> torch.nn.Module:
    """Every parameter random (LayerNorms included, so a swapped weight/bias or norm shows)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("LayerNorm.weight") or "layer_norm.weight" in name or name == "ln_speech.weight":
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(std=0.2)
    return module


def tiny_encoder(seed: int = 0, **kwargs) -> SalmonnAudioEncoder:
    torch.manual_seed(seed)
    return randomise(SalmonnAudioEncoder(tiny_salmonn_audio_config(**kwargs))).eval()


def tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.fixture(scope="module")
def features() -> dict[float, torch.Tensor]:
    return {10: whisper_chunks(tone(10)), 30: whisper_chunks(np.zeros(30 * SR, np.float32)),
            45: whisper_chunks(tone(45, 660))}


# ---------------------------------------------------------------- key names


@pytest.mark.parametrize("final_linear", [True, False])
def test_state_dict_keys_are_the_checkpoints(final_linear):
    model = SalmonnAudioEncoder(tiny_salmonn_audio_config(use_final_linear=final_linear))
    assert set(model.state_dict()) == expected_keys(2, 2, final_linear)
    assert hasattr(model, "final_linear") == final_linear
    assert all(key.startswith(CHECKPOINT_PREFIXES) for key in model.state_dict())


def test_real_config_shapes_on_meta():
    with torch.device("meta"):
        model = SalmonnAudioEncoder(real_salmonn_audio_config())
    sd = model.state_dict()
    assert set(sd) == expected_keys(32, 2, True)
    shapes = {
        "speech_encoder.conv1.weight": (1280, 128, 3), "speech_encoder.embed_positions.weight": (1500, 1280),
        "speech_encoder.layers.31.fc1.weight": (5120, 1280), "ln_speech.weight": (1280,),
        "speech_Qformer.bert.encoder.layer.1.crossattention.self.key.weight": (768, 1280),
        "speech_Qformer.bert.encoder.layer.1.attention.self.key.weight": (768, 768),
        "speech_Qformer.bert.encoder.layer.0.intermediate_query.dense.weight": (3072, 768),
        "speech_Qformer.bert.encoder.layer.0.output_query.dense.weight": (768, 3072),
        "speech_query_tokens": (1, 1, 768), "speech_llama_proj.weight": (3584, 768),
        "final_linear.0.weight": (3584, 3584), "final_linear.2.bias": (3584,),
    }
    assert {k: tuple(sd[k].shape) for k in shapes} == shapes
    assert model.speech_Qformer.bert.embeddings.LayerNorm.eps == 1e-12


def test_checkpoint_round_trip_strict():
    source, target = tiny_encoder(seed=1), tiny_encoder(seed=2)
    target.load_state_dict(source.state_dict(), strict=True)
    x = torch.randn(1, 128, 3000)
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x), rtol=0, atol=0)


def test_config_json_round_trip():
    config = tiny_salmonn_audio_config(llm_hidden=48, second_per_window=1 / 3, use_final_linear=False)
    assert SalmonnAudioConfig.from_json(config.to_json()) == config
    assert real_salmonn_audio_config().to_json()["whisper"]["d_model"] == 1280


# ---------------------------------------------------------------- token counts


@pytest.mark.parametrize("seconds, chunks", [(30, 1), (10, 1), (45, 2)])
def test_token_counts(features, seconds, chunks):
    x = features[seconds]
    assert tuple(x.shape) == (chunks, 128, 3000)
    for spw, kernel, per_chunk in [(0.5, 25, 60), (1 / 3, 17, 88)]:
        model = tiny_encoder(second_per_window=spw)
        assert (model.window_kernel, model.tokens_per_chunk) == (kernel, per_chunk)
        with torch.no_grad():
            out = model(x)
        assert tuple(out.shape) == (per_chunk * chunks, 64)
        assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_query_tokens_multiply_the_count():
    model = tiny_encoder(num_query_tokens=3)
    assert model.tokens_per_chunk == 180
    with torch.no_grad():
        assert tuple(model(torch.randn(2, 128, 3000)).shape) == (360, 64)


def test_wrong_input_shape_is_a_user_error():
    with pytest.raises(FastAVError, match="chunks, 128, 3000"):
        tiny_encoder()(torch.zeros(1, 80, 3000))


# ---------------------------------------------------------------- window order


@pytest.mark.parametrize("spw", [0.5, 1 / 3])
def test_windows_are_consecutive_slices_chunk_major(spw):
    model = tiny_encoder(second_per_window=spw)
    kernel, per_chunk = model.window_kernel, model.tokens_per_chunk
    # each position holds its own (chunk, position): the window tells where it came from
    chunk = torch.arange(3).view(3, 1, 1).expand(3, 1500, 1)
    pos = torch.arange(1500).view(1, 1500, 1).expand(3, 1500, 1)
    windows = model.windows(torch.cat([chunk, pos], dim=-1))
    assert tuple(windows.shape) == (3 * per_chunk, kernel, 2)
    for c in range(3):
        for w in range(per_chunk):
            row = windows[c * per_chunk + w]
            assert (row[:, 0] == c).all()
            assert row[:, 1].tolist() == list(range(w * kernel, (w + 1) * kernel))


def _loop_reference(model: SalmonnAudioEncoder, x: torch.Tensor) -> torch.Tensor:
    """The encoder with one Q-Former call per window, windows read by hand from the encoder states."""
    kernel, count = model.window_kernel, model.tokens_per_chunk
    states = model.ln_speech(model.speech_encoder(x).last_hidden_state)
    rows = []
    for c in range(x.shape[0]):
        for w in range(count):
            window = states[c:c + 1, w * kernel:(w + 1) * kernel]
            token = model.final_linear(model.speech_llama_proj(model.speech_Qformer(model.speech_query_tokens, window)))
            rows.append(token[0, 0] + chunk_position_embedding(c + 1, token.shape[-1])[c])
    return torch.stack(rows)


def test_encoder_matches_a_per_window_loop():
    model = tiny_encoder(second_per_window=1 / 3)  # 88 windows of 17: the last 4 positions are dropped
    x = torch.randn(2, 128, 3000)
    with torch.no_grad():
        torch.testing.assert_close(model(x), _loop_reference(model, x), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- chunk position embedding


def _upstream_table(dim: int) -> torch.Tensor:
    pe = torch.zeros(201, dim)
    div = torch.exp(torch.arange(0, dim, 2).float() * (-math.log(10000.0) / dim))
    for p in range(200):
        pe[p + 1, 0::2] = torch.sin(p * div)
        pe[p + 1, 1::2] = torch.cos(p * div)
    return pe


def test_chunk_position_table_matches_upstreams():
    torch.testing.assert_close(chunk_position_embedding(201, 64), _upstream_table(64), rtol=0, atol=1e-6)
    assert chunk_position_embedding(1, 64).abs().max() == 0


def test_identical_chunks_differ_by_the_position_embedding():
    model = tiny_encoder()
    x = torch.randn(1, 128, 3000).expand(2, -1, -1).contiguous()
    with torch.no_grad():
        out = model(x)
    step = torch.zeros(64)
    step[1::2] = 1.0  # pe[1] - pe[0] = [sin 0, cos 0, ...]
    torch.testing.assert_close(out[60:] - out[:60], step.expand(60, -1), rtol=0, atol=1e-5)


# ---------------------------------------------------------------- Q-Former against explicit matmuls


def _layer_norm(x, sd, name, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * sd[f"{name}.weight"] + sd[f"{name}.bias"]


def _linear(x, sd, name):
    return x @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]


def _attention(x, context, sd, name, heads):
    b, q_len, hidden = x.shape
    head = hidden // heads
    q = _linear(x, sd, f"{name}.self.query").view(b, q_len, heads, head).permute(0, 2, 1, 3)
    k = _linear(context, sd, f"{name}.self.key").view(b, -1, heads, head).permute(0, 2, 1, 3)
    v = _linear(context, sd, f"{name}.self.value").view(b, -1, heads, head).permute(0, 2, 1, 3)
    probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head), dim=-1)
    merged = (probs @ v).permute(0, 2, 1, 3).reshape(b, q_len, hidden)
    return _layer_norm(_linear(merged, sd, f"{name}.output.dense") + x, sd, f"{name}.output.LayerNorm", 1e-12)


def _qformer_reference(sd, queries, enc, config: QFormerConfig):
    x = _layer_norm(queries, sd, "bert.embeddings.LayerNorm", 1e-12)
    for i in range(config.num_layers):
        p = f"bert.encoder.layer.{i}"
        x = _attention(x, x, sd, f"{p}.attention", config.num_heads)
        x = _attention(x, enc, sd, f"{p}.crossattention", config.num_heads)
        h = _linear(x, sd, f"{p}.intermediate_query.dense")
        h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))
        x = _layer_norm(_linear(h, sd, f"{p}.output_query.dense") + x, sd, f"{p}.output_query.LayerNorm", 1e-12)
    return x


def test_qformer_matches_explicit_matmuls():
    # encoder width 24 != hidden 32 and 4 heads: a key/value width or head split mix-up shows
    config = QFormerConfig(hidden_size=32, num_layers=2, num_heads=4, intermediate_size=48, encoder_width=24)
    torch.manual_seed(0)
    qformer = randomise(QFormer(config)).eval()
    queries, enc = torch.randn(3, 2, 32), torch.randn(3, 7, 24)
    with torch.no_grad():
        out = qformer(queries, enc)
        ref = _qformer_reference(qformer.state_dict(), queries, enc, config)
    assert tuple(out.shape) == (3, 2, 32)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


# ---------------------------------------------------------------- ONNX export


@pytest.mark.slow
def test_onnx_export_with_dynamic_chunks(tmp_path):
    model = tiny_encoder()
    torch.manual_seed(1)
    graph = export_encoder(model, torch.randn(2, 128, 3000), "salmonn_audio", (["input_features"], ["audio_embeds"]),
                           tmp_path, dynamic_first_axis=True)
    session = ort.InferenceSession(str(graph.path), providers=["CPUExecutionProvider"])
    for chunks in (1, 3):
        x = torch.randn(chunks, 128, 3000)
        with torch.no_grad():
            expected = model(x).numpy()
        (got,) = session.run(None, {"input_features": x.numpy()})
        assert got.shape == (60 * chunks, 64)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)

"""video-SALMONN 2's audio encoder (Whisper + window Q-Former + projections), with the checkpoint's key names.

Upstream (bytedance video-SALMONN 2, llava/model/language_model/video_salmonn_2.py), per 30 s
chunk of Whisper log-mel features [C, 128, 3000]:

    speech_encoder       transformers' WhisperEncoder (whisper-large-v3), last_hidden_state [C, 1500, 1280]
    ln_speech            LayerNorm over it
    windows              consecutive, non-overlapping windows of `kernel` positions
                         (round(1500 * second_per_window / 30): 0.5 s -> 25 -> 60 windows a chunk);
                         positions after the last full window are dropped. Upstream uses F.unfold,
                         chunk-major then window order; here a slice and a reshape (same order).
    speech_Qformer       a 2-layer BERT Q-Former (window_qformer.py): `speech_query_tokens` [1, Q, 768]
                         cross-attend to each window's encoder states
    speech_llama_proj    Linear(768, llm_hidden)
    final_linear         Linear -> GELU -> Linear in llm_hidden (only with use_final_linear, as the
                         public scripts set it)
    + chunk position     sinusoid table in llm_hidden: chunk 0 gets zeros, chunk j the sinusoid of j - 1

Output [C * L * Q, llm_hidden], chunk-major then window order: the rows the decoder's audio
placeholders take. The checkpoint holds these modules with no prefix, so
`SalmonnAudioEncoder.state_dict()` keys are the checkpoint's keys (`CHECKPOINT_PREFIXES`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ....contract.interleave import window_kernel, windows_per_chunk
from ....errors import FastAVError
from .window_qformer import QFormer, QFormerConfig

# A checkpoint key belongs to the audio encoder if it starts with one of these (kept as is).
CHECKPOINT_PREFIXES = ("speech_encoder.", "ln_speech.", "speech_Qformer.", "speech_query_tokens",
                       "speech_llama_proj.", "final_linear.")
CHUNK_SECONDS = 30  # Whisper's window; max_source_positions encoder positions cover it
# Upstream tabulates 200 positions plus the zero row: longer audio (over 100 minutes) fails there.
MAX_CHUNKS = 201


@dataclass(frozen=True)
class WhisperEncoderConfig:
    """The WhisperConfig fields the encoder reads (the rest are decoder-side or defaults)."""

    d_model: int
    encoder_layers: int
    encoder_attention_heads: int
    encoder_ffn_dim: int
    num_mel_bins: int = 128
    max_source_positions: int = 1500

    def to_transformers(self, attn_implementation: str = "sdpa"):
        """A transformers WhisperConfig with these encoder sizes, dropout off."""
        from transformers import WhisperConfig

        config = WhisperConfig(d_model=self.d_model, encoder_layers=self.encoder_layers,
                               encoder_attention_heads=self.encoder_attention_heads,
                               encoder_ffn_dim=self.encoder_ffn_dim, num_mel_bins=self.num_mel_bins,
                               max_source_positions=self.max_source_positions)
        config._attn_implementation = attn_implementation
        return config


@dataclass(frozen=True)
class SalmonnAudioConfig:
    whisper: WhisperEncoderConfig
    qformer: QFormerConfig
    llm_hidden: int
    second_per_window: float = 0.5
    num_query_tokens: int = 1
    use_final_linear: bool = True
    attn_implementation: str = field(default="sdpa", compare=False)

    @property
    def window_kernel(self) -> int:
        """Encoder positions per window (= the stride): 25 for 0.5 s, 17 for 1/3 s."""
        return window_kernel(self.second_per_window, self.whisper.max_source_positions, CHUNK_SECONDS)

    @property
    def windows_per_chunk(self) -> int:
        return windows_per_chunk(self.window_kernel, self.whisper.max_source_positions)

    @property
    def tokens_per_chunk(self) -> int:
        return self.windows_per_chunk * self.num_query_tokens

    def to_json(self) -> dict:
        """Plain dicts and numbers (for an engine manifest); `from_json` reads it back."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> SalmonnAudioConfig:
        data = dict(data)
        return cls(whisper=WhisperEncoderConfig(**data.pop("whisper")), qformer=QFormerConfig(**data.pop("qformer")),
                   **data)


def real_salmonn_audio_config(llm_hidden: int = 3584, **settings) -> SalmonnAudioConfig:
    """whisper-large-v3's encoder, the 2-layer speech Q-Former, Qwen2-7B's width; `settings`: the other
    SalmonnAudioConfig fields (second_per_window, num_query_tokens, use_final_linear)."""
    whisper = WhisperEncoderConfig(d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120)
    return SalmonnAudioConfig(whisper, QFormerConfig.real(encoder_width=whisper.d_model), llm_hidden, **settings)


def tiny_salmonn_audio_config(llm_hidden: int = 64, **settings) -> SalmonnAudioConfig:
    """A tiny encoder for tests, with the real input and window geometry (128 x 3000 mels, 1500 positions)."""
    whisper = WhisperEncoderConfig(d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64)
    return SalmonnAudioConfig(whisper, QFormerConfig.tiny(encoder_width=whisper.d_model), llm_hidden, **settings)


def chunk_position_embedding(chunks: int, dim: int, device=None) -> torch.Tensor:
    """[chunks, dim] fp32: row 0 zeros, row j the sinusoid of position j - 1 (sin at even, cos at odd features).

    Upstream's table is zeros(201, dim) with rows 1..200 filled; computed here from the chunk
    count, so an exported graph takes any count (matching upstream's rows while j <= 200).
    """
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim))
    index = torch.arange(chunks, dtype=torch.float32, device=device)
    angles = (index - 1).unsqueeze(1) * div  # [chunks, ceil(dim / 2)]
    table = torch.stack((torch.sin(angles), torch.cos(angles)), dim=-1).flatten(1)[:, :dim]  # interleave
    return table * (index > 0).to(table.dtype).unsqueeze(1)


class SalmonnAudioEncoder(nn.Module):
    """Whisper log-mels of 30 s chunks -> audio tokens in the LLM's space.

    forward(input_features [C, num_mel_bins, 2 * max_source_positions]) -> [C * tokens_per_chunk, llm_hidden]
    """

    def __init__(self, config: SalmonnAudioConfig | None = None):
        super().__init__()
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        config = config if config is not None else real_salmonn_audio_config()
        if config.qformer.encoder_width != config.whisper.d_model:
            raise FastAVError(f"Q-Former encoder_width {config.qformer.encoder_width} differs from Whisper's "
                              f"d_model {config.whisper.d_model}: build the Q-Former config with "
                              f"encoder_width={config.whisper.d_model}")
        if not 1 <= config.window_kernel <= config.whisper.max_source_positions:
            raise FastAVError(f"second_per_window {config.second_per_window} gives windows of {config.window_kernel} "
                              f"positions: use a value between 1/50 s and {CHUNK_SECONDS} s")
        self.config = config
        d_model, hidden, llm = config.whisper.d_model, config.qformer.hidden_size, config.llm_hidden
        self.speech_encoder = WhisperEncoder(config.whisper.to_transformers(config.attn_implementation))
        self.ln_speech = nn.LayerNorm(d_model)
        self.speech_Qformer = QFormer(config.qformer)
        self.speech_query_tokens = nn.Parameter(torch.empty(1, config.num_query_tokens, hidden).normal_(std=0.02))
        self.speech_llama_proj = nn.Linear(hidden, llm)
        if config.use_final_linear:  # absent otherwise: the checkpoint then has no final_linear.* keys
            self.final_linear = nn.Sequential(nn.Linear(llm, llm), nn.GELU(), nn.Linear(llm, llm))

    @property
    def window_kernel(self) -> int:
        return self.config.window_kernel

    @property
    def tokens_per_chunk(self) -> int:
        return self.config.tokens_per_chunk

    def _check(self, input_features: torch.Tensor) -> None:
        mels, frames = self.config.whisper.num_mel_bins, 2 * self.config.whisper.max_source_positions
        if input_features.dim() != 3 or tuple(input_features.shape[1:]) != (mels, frames):
            raise FastAVError(f"audio encoder input has shape {tuple(input_features.shape)}: pass Whisper "
                              f"features as [chunks, {mels}, {frames}] (media/whisper_features.py whisper_chunks)")
        if not torch.compiler.is_compiling() and input_features.shape[0] > MAX_CHUNKS:
            raise FastAVError(f"{input_features.shape[0]} audio chunks of {CHUNK_SECONDS} s: video-SALMONN 2 "
                              f"takes at most {MAX_CHUNKS}; shorten the audio")

    def windows(self, encoder_states: torch.Tensor) -> torch.Tensor:
        """[C, P, W] -> [C * L, kernel, W]: window w of chunk c is positions [w * kernel, (w + 1) * kernel) of c."""
        kernel, count = self.window_kernel, self.config.windows_per_chunk
        width = encoder_states.shape[-1]
        # stride == kernel, so upstream's unfold is a slice of the full windows and a reshape.
        return encoder_states[:, : count * kernel].reshape(-1, kernel, width)

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:
        """[C, num_mel_bins, 3000] -> [C * L * Q, llm_hidden], chunk-major, then window, then query."""
        self._check(input_features)
        chunks = input_features.shape[0]
        states = self.ln_speech(self.speech_encoder(input_features).last_hidden_state)  # [C, P, W]
        windows = self.windows(states)  # [C * L, kernel, W]
        queries = self.speech_query_tokens.expand(windows.shape[0], -1, -1)
        tokens = self.speech_llama_proj(self.speech_Qformer(queries, windows))  # [C * L, Q, D]
        if self.config.use_final_linear:
            tokens = self.final_linear(tokens)
        tokens = tokens.reshape(chunks, self.tokens_per_chunk, -1)
        position = chunk_position_embedding(chunks, tokens.shape[-1], tokens.device).to(tokens.dtype)
        return (tokens + position.unsqueeze(1)).flatten(0, 1)

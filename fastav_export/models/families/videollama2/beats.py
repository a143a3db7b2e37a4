"""VideoLLaMA2-AV's audio tower: BEATs, with the checkpoint's key names.

Upstream (DAMO-NLP-SG/VideoLLaMA2, branch `audio_visual`):
* videollama2/model/beats/BEATs.py: `BEATsConfig` (its defaults are the configuration
  VideoLLaMA2 builds: `build_audio_tower` finds no `cfg` in `audio_tower.bin`, a flat state
  dict) and `BEATs.extract_features`.
* videollama2/model/encoder.py `build_audio_tower`: loads `audio_tower.bin` keeping the keys
  under `model.audio_tower.` with that prefix stripped. The tower is
  `Videollama2MetaModel.audio_tower` (`model.audio_tower` of the causal LM), so the full
  model's weights carry the same prefix.
* videollama2/model/videollama2_arch.py: `extract_features(fbank, padding_mask=zeros(fbank.shape))`
  - an all-False mask, which masks nothing: the same as no mask - then `mm_projector_a` on all
  (T // 16) * (128 // 16) = 187 * 8 = 1496 patch features of a 30 s window.

`BEATs.state_dict()` keys are the checkpoint's less CHECKPOINT_PREFIX; `load_beats_state_dict`
also takes the variants a saver may produce (see there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from ....errors import FastAVError
from ....media.filterbank import normalize_fbank
from .beats_layers import TransformerEncoder

# Checkpoint key = CHECKPOINT_PREFIX + BEATs key.
CHECKPOINT_PREFIX = "model.audio_tower."
_REL_POS_KEY = re.compile(r"^encoder\.layers\.(\d+)\.self_attn\.relative_attention_bias\.weight$")


@dataclass(frozen=True)
class BEATsConfig:
    """The fields of upstream's BEATsConfig that shape the weights or the forward pass
    (dropouts, layer drop and gradient decay do neither at inference). Defaults: the real model."""

    input_patch_size: int = 16  # Conv2d kernel = stride over (time, mel)
    embed_dim: int = 512  # patch embedding width
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    conv_pos: int = 128  # kernel of the convolutional positional embedding
    conv_pos_groups: int = 16
    num_buckets: int = 320  # relative position buckets (both directions)
    max_distance: int = 800
    finetuned_model: bool = True  # keeps the AudioSet classifier `predictor` (unused for features)
    predictor_class: int = 527


def real_beats_config() -> BEATsConfig:
    """VideoLLaMA2-AV's BEATs (BEATsConfig() defaults upstream: the iter3+ AS2M fine-tuned model).

    Also upstream and fixed in this implementation: relative_position_embedding and gru_rel_pos
    on, deep_norm on, layer_norm_first off, activation gelu.
    """
    return BEATsConfig()


def tiny_beats_config() -> BEATsConfig:
    """A tiny tower for tests: 32 x 32 patches, so 2 s (198 frames x 128 mels) -> 6 x 4 = 24 tokens of width 32."""
    return BEATsConfig(input_patch_size=32, embed_dim=16, encoder_layers=2, encoder_embed_dim=32,
                       encoder_ffn_embed_dim=64, encoder_attention_heads=2, conv_pos=8, conv_pos_groups=4,
                       num_buckets=16, max_distance=32, predictor_class=5)


def token_count(frames: int, mel_bins: int, config: BEATsConfig) -> int:
    """Patch tokens of a [frames, mel_bins] filterbank: the Conv2d drops incomplete patches."""
    return (frames // config.input_patch_size) * (mel_bins // config.input_patch_size)


class BEATs(nn.Module):
    """Raw log-mel filterbank -> BEATs' patch features (upstream `extract_features(fbank)[0]`).

    forward(fbank [B, T, M]) -> [B, (T // P) * (M // P), encoder_embed_dim], P = input_patch_size,
    time-major: token t * (M // P) + f is the patch of time step t and mel band f.
    The filterbank is normalised here, as upstream's `BEATs.preprocess`.
    """

    def __init__(self, config: BEATsConfig):
        super().__init__()
        self.config = config
        patch = config.input_patch_size
        self.patch_embedding = nn.Conv2d(1, config.embed_dim, kernel_size=patch, stride=patch, bias=config.conv_bias)
        self.layer_norm = nn.LayerNorm(config.embed_dim)
        # Upstream has no projection when the widths agree; the real model's differ (512 -> 768).
        self.post_extract_proj = (nn.Linear(config.embed_dim, config.encoder_embed_dim)
                                  if config.embed_dim != config.encoder_embed_dim else None)
        self.encoder = TransformerEncoder(config)
        self.predictor = (nn.Linear(config.encoder_embed_dim, config.predictor_class)
                          if config.finetuned_model else None)

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        x = normalize_fbank(fbank).unsqueeze(1)
        x = self.patch_embedding(x)  # [B, E, T // P, M // P]
        x = x.flatten(2).transpose(1, 2)  # [B, N, E], row-major over (time, mel): time-major tokens
        x = self.layer_norm(x)
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        return self.encoder(x)


def load_beats_state_dict(model: BEATs, state_dict: dict[str, torch.Tensor], prefix: str = CHECKPOINT_PREFIX) -> None:
    """Load a checkpoint's audio tower into `model`, strictly.

    Takes the keys under `prefix` (all keys if prefix is ""), and accepts what savers vary in:
    the shared relative position table under any subset of the layers (a safetensors save keeps
    one name for shared tensors), the weight norm as torch's parametrization names
    (`parametrizations.weight.original0/1`), and a `predictor.*` the model does not keep.
    """
    tower = {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
    if not tower:
        raise FastAVError(f"the checkpoint has no audio tower weights under '{prefix}': "
                          "pass VideoLLaMA2-AV's model weights (its tower is model.audio_tower.*)")
    tables = {key: value for key, value in tower.items() if _REL_POS_KEY.match(key)}
    if tables:
        first = next(iter(tables.values()))
        if any(not torch.equal(first, table) for table in tables.values()):
            raise FastAVError("the checkpoint's audio tower holds different relative position tables per layer: "
                              "BEATs shares one; is this a VideoLLaMA2-AV checkpoint?")
        for i in range(len(model.encoder.layers)):
            tower[f"encoder.layers.{i}.self_attn.relative_attention_bias.weight"] = first
    if model.predictor is None:
        tower = {key: value for key, value in tower.items() if not key.startswith("predictor.")}
    try:
        model.load_state_dict(tower, strict=True)
    except RuntimeError as error:
        # torch's message: a header line, then one line per kind of problem (missing, unexpected, size).
        problems = " ".join(line.strip() for line in str(error).splitlines()[1:])
        raise FastAVError(f"the audio tower weights do not fit BEATs ({problems[:400]}): "
                          "pass VideoLLaMA2-AV's checkpoint") from error

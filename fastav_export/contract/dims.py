"""DecoderDims: the Qwen2 decoder's sizes, checked before they size anything."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..errors import FastAVError

MAX_DIM = 2**31 - 1
# DecoderDims field -> transformers Qwen2Config attribute, where the conversion is a plain copy
QWEN2_CONFIG_NAMES = {"hidden_size": "hidden_size", "intermediate_size": "intermediate_size",
                      "num_layers": "num_hidden_layers", "num_heads": "num_attention_heads",
                      "num_kv_heads": "num_key_value_heads", "vocab_size": "vocab_size",
                      "rms_norm_eps": "rms_norm_eps", "max_position_embeddings": "max_position_embeddings"}


@dataclass(frozen=True)
class DecoderDims:
    """The Qwen2 decoder's shape: everything needed to build a config or count FLOPs."""

    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    vocab_size: int
    head_dim: int | None = None
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    max_position_embeddings: int = 32768

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    def parameter_count(self) -> int:
        """Parameters of the Qwen2 decoder with these dimensions (q/k/v biases, norms, lm_head unless tied)."""
        d, hd = self.hidden_size, self.head_size
        q, kv = self.num_heads * hd, self.num_kv_heads * hd
        attention = d * q + q + 2 * (d * kv + kv) + q * d
        layer = attention + 3 * d * self.intermediate_size + 2 * d
        embeddings = self.vocab_size * d * (1 if self.tie_word_embeddings else 2)
        return self.num_layers * layer + embeddings + d

    def check(self, where: str) -> "DecoderDims":
        """One-line FastAVError unless every dimension is a sane positive value; returns self.

        where: what the dimensions were read from, e.g. "checkpoint x/config.json".
        Each dimension sizes an allocation, so the upper bound keeps a typo (hidden_size
        1e9) from reaching the allocator; real models are many orders of magnitude below it.
        """
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name in ("rope_theta", "rms_norm_eps"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                        or value <= 0:
                    raise FastAVError(f"{where}: {spec.name} is {value!r}, expected a finite number > 0")
            elif spec.name == "tie_word_embeddings":
                if not isinstance(value, bool):
                    raise FastAVError(f"{where}: {spec.name} is {value!r}, expected true or false")
            elif not (value is None and spec.name == "head_dim"):
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIM:
                    raise FastAVError(f"{where}: {spec.name} is {value!r}, expected an integer in 1..{MAX_DIM}")
        if self.head_dim is None and self.hidden_size % self.num_heads:
            raise FastAVError(f"{where}: hidden_size {self.hidden_size} is not a multiple of the "
                              f"{self.num_heads} attention heads")
        if self.num_heads % self.num_kv_heads:
            raise FastAVError(f"{where}: the {self.num_heads} attention heads are not a multiple of the "
                              f"{self.num_kv_heads} key/value heads")
        return self

    def to_qwen2_config(self, **overrides):
        """A transformers `Qwen2Config` with these dimensions."""
        from transformers import Qwen2Config

        kwargs = {theirs: getattr(self, ours) for ours, theirs in QWEN2_CONFIG_NAMES.items()}
        kwargs.update(rope_theta=self.rope_theta, tie_word_embeddings=self.tie_word_embeddings,
                      use_sliding_window=False)
        if self.head_dim is not None:
            kwargs["head_dim"] = self.head_dim
        kwargs.update(overrides)
        return Qwen2Config(**kwargs)

    @classmethod
    def from_qwen2_config(cls, config) -> "DecoderDims":
        rope = getattr(config, "rope_parameters", None) or {}
        return cls(**{ours: getattr(config, theirs) for ours, theirs in QWEN2_CONFIG_NAMES.items()},
                   head_dim=getattr(config, "head_dim", None),
                   rope_theta=rope.get("rope_theta", getattr(config, "rope_theta", 10000.0)),
                   tie_word_embeddings=bool(config.tie_word_embeddings))

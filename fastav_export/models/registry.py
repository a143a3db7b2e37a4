"""Model registry: one declarative `ModelSpec` per supported model.

A family module (e.g. `videollama2.py`) declares the decoder dimensions, the default
token layout and the paper-like pruning preset, and calls `register`. Adding a family
is one small module plus its import in `models/__init__.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Callable

from ..errors import FastAVError
from ..layout import TokenLayout
from ..pruning_config import PruningConfig


MAX_DIM = 2**31 - 1


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

        kwargs = dict(
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_kv_heads,
            vocab_size=self.vocab_size,
            rope_theta=self.rope_theta,
            rms_norm_eps=self.rms_norm_eps,
            tie_word_embeddings=self.tie_word_embeddings,
            max_position_embeddings=self.max_position_embeddings,
            use_sliding_window=False,
        )
        if self.head_dim is not None:
            kwargs["head_dim"] = self.head_dim
        kwargs.update(overrides)
        return Qwen2Config(**kwargs)

    @classmethod
    def from_qwen2_config(cls, config) -> "DecoderDims":
        rope = getattr(config, "rope_parameters", None) or {}
        return cls(
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_layers=config.num_hidden_layers,
            num_heads=config.num_attention_heads,
            num_kv_heads=config.num_key_value_heads,
            vocab_size=config.vocab_size,
            head_dim=getattr(config, "head_dim", None),
            rope_theta=rope.get("rope_theta", getattr(config, "rope_theta", 10000.0)),
            rms_norm_eps=config.rms_norm_eps,
            tie_word_embeddings=bool(config.tie_word_embeddings),
            max_position_embeddings=config.max_position_embeddings,
        )


@dataclass(frozen=True)
class ModelSpec:
    """One registered model.

    name:             registry name (`videollama2`, `videollama2-tiny`, ...).
    family:           the family module's name; checkpoints map to it by model_type.
    dims:             decoder dimensions.
    default_layout:   builds the model's default layout (keyword arguments allowed).
    preset:           the paper-like pruning config (positional rule) for this model.
    hf_id:            the upstream checkpoint this spec describes (documentation only).
    random_init_std:  tiny variants: std of the seeded random weights (None: real model,
                      needs --checkpoint for real weights).
    """

    name: str
    family: str
    dims: DecoderDims
    default_layout: Callable[..., TokenLayout]
    preset: PruningConfig = field(default_factory=PruningConfig)
    hf_id: str = ""
    description: str = ""
    random_init_std: float | None = None

    @property
    def is_tiny(self) -> bool:
        return self.random_init_std is not None


_REGISTRY: dict[str, ModelSpec] = {}
# config.json `model_type` -> family, declared by each family module.
_CHECKPOINT_TYPES: dict[str, str] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def register_checkpoint_type(model_type: str, family: str) -> None:
    _CHECKPOINT_TYPES[model_type] = family


def get_model_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise FastAVError(f"unknown model {name!r}: choose one of {', '.join(model_names())}") from None


def model_names() -> list[str]:
    return sorted(_REGISTRY)


def all_specs() -> list[ModelSpec]:
    return [_REGISTRY[n] for n in model_names()]


def family_for_model_type(model_type: str) -> str | None:
    return _CHECKPOINT_TYPES.get(model_type)


def full_size_spec(family: str) -> ModelSpec | None:
    """The real (non-tiny) spec of a family, used for checkpoints of that family."""
    for spec in all_specs():
        if spec.family == family and not spec.is_tiny:
            return spec
    return None

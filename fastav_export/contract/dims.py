"""DecoderDims: the Qwen2 decoder's sizes, checked before they size anything.

A decoder with M-RoPE (Qwen2.5-Omni's thinker) differs only in its rotary embedding: its
`mrope_section` splits the hd/2 rotary frequencies over three position rows (temporal,
height, width), so its position ids are [3, B, N] instead of [B, N] (`contract/positions.py`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

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
    # M-RoPE: how many rotary frequencies take the temporal, height and width position rows (they
    # sum to head_size // 2); None for the default RoPE over one row.
    mrope_section: tuple[int, int, int] | None = None

    def __post_init__(self):
        if isinstance(self.mrope_section, list):  # read back from JSON
            object.__setattr__(self, "mrope_section", tuple(self.mrope_section))

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    @property
    def position_rows(self) -> int:
        """Rows of the position ids: 1 ([B, N]) or 3 with M-RoPE ([3, B, N])."""
        return 1 if self.mrope_section is None else 3

    def to_json(self) -> dict:
        """The fields as JSON; `mrope_section` only when set, so a 1-D decoder's form (and the hash of a
        manifest holding it) is the same as before the field existed."""
        data = asdict(self)
        if self.mrope_section is None:
            del data["mrope_section"]
        else:
            data["mrope_section"] = list(self.mrope_section)
        return data

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
            elif spec.name == "mrope_section":
                self._check_mrope_section(where)
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

    def _check_mrope_section(self, where: str) -> None:
        section = self.mrope_section
        if section is None:
            return
        if not isinstance(section, tuple) or len(section) != 3 or any(
                isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in section):
            raise FastAVError(f"{where}: mrope_section is {section!r}, expected three integers >= 0 "
                              "(temporal, height, width)")
        head_size = self.head_dim or (self.hidden_size // self.num_heads if self.num_heads else 0)
        if sum(section) * 2 != head_size:
            raise FastAVError(f"{where}: mrope_section {list(section)} covers {sum(section)} rotary frequencies, "
                              f"expected head_size / 2 = {head_size // 2}")

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
        """The dims of a transformers Qwen2 config, or of a Qwen2-shaped text config with M-RoPE
        (Qwen2.5-Omni's `Qwen2_5OmniTextConfig`: `rope_parameters["mrope_section"]`)."""
        rope = getattr(config, "rope_parameters", None) or {}
        section = rope.get("mrope_section")
        return cls(**{ours: getattr(config, theirs) for ours, theirs in QWEN2_CONFIG_NAMES.items()},
                   head_dim=getattr(config, "head_dim", None),
                   rope_theta=rope.get("rope_theta", getattr(config, "rope_theta", 10000.0)),
                   tie_word_embeddings=bool(config.tie_word_embeddings),
                   mrope_section=None if section is None else tuple(section))

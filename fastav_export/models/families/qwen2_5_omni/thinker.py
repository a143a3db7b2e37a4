"""The thinker's decoder as the Qwen2 decoder the reference and the export take.

Qwen2.5-Omni's thinker (`Qwen2_5OmniThinkerForConditionalGeneration`) decodes with a Qwen2
decoder whose only difference is M-RoPE: its rotary embedding turns three position rows
([3, B, N]) into cos/sin. `ThinkerDecoder` presents that decoder with the attributes of a
`Qwen2ForCausalLM` (`.model.layers / .rotary_emb / .norm / .embed_tokens`, `.lm_head`,
`.config`), holding the thinker's own modules (no copies), so `TorchReference` and
`export_graphs` run it unchanged; `DecoderDims.from_qwen2_config(decoder.config)` carries the
M-RoPE section that makes them use three position rows.
"""

from __future__ import annotations

import torch
from torch import nn

from ....contract.dims import DecoderDims
from ...model_factory import seed_decoder_weights
from ...seeded_weights import draw_weights
from .tiny_config import tiny_thinker_config

TINY_STD = 0.1  # the tiny Qwen2 families' random-weight scale


class ThinkerDecoder(nn.Module):
    """The thinker's text decoder, Qwen2ForCausalLM-shaped.

    .model:  the thinker's `Qwen2_5OmniThinkerTextModel` (layers, rotary_emb with mrope_section,
             norm, embed_tokens); .lm_head: [V, D]; .config: the text config.
    Parameter names are `model.layers.<i>...`, `model.norm.weight`, `lm_head.weight`: the released
    checkpoint's `thinker.`-prefixed names without the prefix.
    """

    def __init__(self, thinker: nn.Module | None = None, text_model: nn.Module | None = None,
                 lm_head: nn.Module | None = None):
        """From a whole thinker, or from its text model and lm_head alone (`random_decoder`)."""
        super().__init__()
        self.model = text_model if thinker is None else thinker.model.language_model
        self.lm_head = lm_head if thinker is None else thinker.lm_head
        self.config = self.model.config

    @property
    def dims(self) -> DecoderDims:
        return DecoderDims.from_qwen2_config(self.config)

    def forward(self, inputs_embeds: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        """Dense logits, as the thinker computes them: inputs_embeds [B, N, D], position_ids [3, B, N]
        -> [B, N, V]."""
        hidden = self.model(inputs_embeds=inputs_embeds, position_ids=position_ids).last_hidden_state
        return self.lm_head(hidden)


def tiny_thinker(seed: int = 0, attn_implementation: str = "sdpa"):
    """The tiny `Qwen2_5OmniThinkerForConditionalGeneration` (`tiny_thinker_config`) with seeded weights.

    Decoder weights as the tiny Qwen2 models draw theirs: N(0, 0.1) in parameter-name order from a
    CPU generator seeded with `seed`, norm weights 1 + N(0, 0.1), unit-scale embeddings (like the
    synthetic audio-visual rows). The vision and audio towers take `draw_weights(seed)`.
    """
    from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniThinkerForConditionalGeneration

    config = tiny_thinker_config()
    for sub in (config, config.text_config, config.vision_config, config.audio_config):
        sub._attn_implementation = attn_implementation
    with torch.random.fork_rng(devices=[]):  # module construction draws from the global RNG: leave it as it was
        thinker = Qwen2_5OmniThinkerForConditionalGeneration(config)
    seed_decoder_weights(ThinkerDecoder(thinker), seed, TINY_STD)
    draw_weights((thinker.model.visual, thinker.model.audio_tower), seed=seed, std=TINY_STD)
    return thinker.eval()


def random_decoder(dims: DecoderDims, seed: int = 0, std: float = 0.02,
                   attn_implementation: str = "sdpa") -> ThinkerDecoder:
    """A full-size thinker decoder of `dims` with seeded random weights and no towers (`build --random-weights`:
    benchmarks and graph checks at the real sizes)."""
    from transformers.models.qwen2_5_omni.configuration_qwen2_5_omni import Qwen2_5OmniTextConfig
    from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniThinkerTextModel

    config = Qwen2_5OmniTextConfig(
        vocab_size=dims.vocab_size, hidden_size=dims.hidden_size, intermediate_size=dims.intermediate_size,
        num_hidden_layers=dims.num_layers, num_attention_heads=dims.num_heads, num_key_value_heads=dims.num_kv_heads,
        max_position_embeddings=dims.max_position_embeddings, rms_norm_eps=dims.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": dims.rope_theta,
                         "mrope_section": list(dims.mrope_section)},
        tie_word_embeddings=dims.tie_word_embeddings)
    config._attn_implementation = attn_implementation
    with torch.device("meta"):  # no init cost: every parameter is drawn below
        text_model = Qwen2_5OmniThinkerTextModel(config)
        lm_head = nn.Linear(dims.hidden_size, dims.vocab_size, bias=False)
    decoder = ThinkerDecoder(text_model=text_model.to_empty(device="cpu"), lm_head=lm_head.to_empty(device="cpu"))
    decoder.model.rotary_emb = type(decoder.model.rotary_emb)(config=config)  # not a parameter: computed again
    seed_decoder_weights(decoder, seed, std)
    if dims.tie_word_embeddings:
        decoder.lm_head.weight = decoder.model.embed_tokens.weight
    return decoder.eval()

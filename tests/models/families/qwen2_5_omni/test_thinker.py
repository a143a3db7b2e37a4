"""The tiny thinker and its decoder view."""

from __future__ import annotations

import torch

from fastav_export.models.families.qwen2_5_omni.thinker import ThinkerDecoder, tiny_thinker


def test_the_decoder_view_holds_the_thinkers_own_modules_with_qwen2_names():
    thinker = tiny_thinker(0)
    decoder = ThinkerDecoder(thinker)
    assert decoder.model is thinker.model.language_model and decoder.lm_head is thinker.lm_head
    assert decoder.config is thinker.config.text_config
    assert decoder.dims.mrope_section == (2, 3, 3) and decoder.dims.num_layers == 6
    names = {name for name, _ in decoder.named_parameters()}
    assert {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.bias", "model.norm.weight",
            "lm_head.weight"} <= names


def test_weights_are_seeded():
    first, again, other = (ThinkerDecoder(tiny_thinker(seed)) for seed in (0, 0, 1))
    weight = lambda d: d.model.layers[2].mlp.up_proj.weight  # noqa: E731
    assert torch.equal(weight(first), weight(again)) and not torch.equal(weight(first), weight(other))
    assert 0.08 < float(weight(first).detach().std()) < 0.12
    tower = lambda seed: next(tiny_thinker(seed).model.audio_tower.parameters())  # noqa: E731
    assert torch.equal(tower(0), tower(0))

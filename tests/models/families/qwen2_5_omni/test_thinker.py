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


def test_a_random_full_size_decoder_has_the_specs_dims_and_three_position_rows():
    """`build --random-weights` of a full-size Qwen2.5-Omni: the thinker's own text model at the spec's dims
    (tiny dims here), no towers, seeded."""
    import torch

    from fastav_export.models.families.qwen2_5_omni.spec import TINY_DIMS
    from fastav_export.models.families.qwen2_5_omni.thinker import random_decoder

    first, again = random_decoder(TINY_DIMS, seed=1), random_decoder(TINY_DIMS, seed=1)
    assert first.dims == TINY_DIMS
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    embeds = torch.randn(1, 4, TINY_DIMS.hidden_size)
    same_rows = torch.arange(4).expand(3, 1, 4)
    other_rows = same_rows.clone()
    other_rows[1] = torch.tensor([0, 0, 1, 1])  # the height row alone differs: M-RoPE must see it
    with torch.no_grad():
        assert not torch.allclose(first(embeds, same_rows), first(embeds, other_rows))

"""Every registered family has a tiny variant with the same structure and rules."""

import pytest

from fastav_export.errors import FastAVError
from fastav_export.models import all_specs, get_model_spec
from fastav_export.models.registry import family_for_model_type


def test_every_full_size_model_has_a_tiny_twin():
    """Each full-size model (a family may have several sizes) has its family's tiny model beside it."""
    specs = all_specs()
    tiny_of = {s.family: s for s in specs if s.is_tiny}
    for spec in (s for s in specs if not s.is_tiny):
        tiny = tiny_of[spec.family]
        assert tiny.name == f"{spec.name.removesuffix('-3b')}-tiny"
        assert tiny.family == spec.family
        assert tiny.preset.global_policy == spec.preset.global_policy
        full_kinds = [s.kind for s in spec.default_layout().segments]
        tiny_kinds = [s.kind for s in tiny.default_layout().segments]
        # Same segment pattern (contiguous or interleaved), fewer frames allowed.
        assert tiny_kinds[:3] == full_kinds[:3] and tiny_kinds[-2:] == full_kinds[-2:]


def test_seed_model_facts():
    for name in ("videollama2", "video-salmonn2"):
        dims = get_model_spec(name).dims
        assert (dims.hidden_size, dims.intermediate_size, dims.num_layers) == (3584, 18944, 28)
        assert (dims.num_heads, dims.num_kv_heads, dims.head_size, dims.vocab_size) == (28, 4, 128, 152064)
        assert dims.rope_theta == 1e6 and not dims.tie_word_embeddings


def test_checkpoint_types_map_to_families():
    assert family_for_model_type("videollama2_qwen2") == "videollama2"
    assert family_for_model_type("video_salmonn_2") == "video-salmonn2"
    assert family_for_model_type("qwen2") == "qwen2"


def test_unknown_model_lists_the_choices():
    with pytest.raises(FastAVError, match="choose one of .*videollama2-tiny"):
        get_model_spec("llama")

"""The tiny random-weight Qwen2.5-Omni thinker: transformers' own config classes at tiny sizes.

The structure is the released model's (windowed 2-D-rotary vision tower with a 2 x 2 patch
merger, Whisper-style audio tower with 2x pooling, M-RoPE decoder with three position rows);
only the widths, depths and the vocabulary are small. The special tokens keep their roles but
get ids inside the tiny vocabulary: 256 byte ids, then Qwen2's three chat specials, then
Qwen2.5-Omni's seven media specials (`TINY_SPECIAL_TOKENS`, in this order).
"""

from __future__ import annotations

# The media specials of Qwen2.5-Omni's tokenizer, in id order after the chat specials.
TINY_SPECIAL_TOKENS = ("<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>", "<|vision_bos|>", "<|vision_eos|>",
                       "<|IMAGE|>", "<|VIDEO|>")
TINY_VOCAB_SIZE = 256 + 3 + len(TINY_SPECIAL_TOKENS)
_FIRST_MEDIA_ID = 256 + 3
TINY_TOKEN_IDS = {token: _FIRST_MEDIA_ID + i for i, token in enumerate(TINY_SPECIAL_TOKENS)}

TINY_HIDDEN = 64
# head_dim 16 -> 8 rotary frequencies, split over (temporal, height, width) as the real [16, 24, 24]
# splits 64: same proportions are impossible at 8, so [2, 3, 3] keeps three non-empty sections.
TINY_MROPE_SECTION = [2, 3, 3]


def tiny_thinker_config():
    """A `Qwen2_5OmniThinkerConfig` at tiny sizes (decoder 6 layers x 64, vision 2 blocks, audio 2 layers)."""
    from transformers.models.qwen2_5_omni.configuration_qwen2_5_omni import (
        Qwen2_5OmniAudioEncoderConfig,
        Qwen2_5OmniTextConfig,
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniVisionEncoderConfig,
    )

    text = Qwen2_5OmniTextConfig(
        vocab_size=TINY_VOCAB_SIZE, hidden_size=TINY_HIDDEN, intermediate_size=128, num_hidden_layers=6,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32768, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": TINY_MROPE_SECTION},
        tie_word_embeddings=False,
    )
    vision = Qwen2_5OmniVisionEncoderConfig(
        depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=14, spatial_merge_size=2,
        temporal_patch_size=2, window_size=112, out_hidden_size=TINY_HIDDEN, fullatt_block_indexes=[1],
    )
    audio = Qwen2_5OmniAudioEncoderConfig(
        num_mel_bins=128, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64, d_model=32,
        max_source_positions=1500, n_window=100, output_dim=TINY_HIDDEN,
    )
    ids = TINY_TOKEN_IDS
    return Qwen2_5OmniThinkerConfig(
        audio_config=audio.to_dict(), vision_config=vision.to_dict(), text_config=text.to_dict(),
        audio_token_index=ids["<|AUDIO|>"], image_token_index=ids["<|IMAGE|>"],
        video_token_index=ids["<|VIDEO|>"], audio_start_token_id=ids["<|audio_bos|>"],
        audio_end_token_id=ids["<|audio_eos|>"], vision_start_token_id=ids["<|vision_bos|>"],
        vision_end_token_id=ids["<|vision_eos|>"], position_id_per_seconds=25, seconds_per_chunk=2,
    )

"""DecoderDims: the M-RoPE section, read from a text config and written only when set."""

from __future__ import annotations

import pytest

from fastav_export.contract.dims import DecoderDims
from fastav_export.errors import FastAVError

QWEN2 = DecoderDims(hidden_size=64, intermediate_size=128, num_layers=6, num_heads=4, num_kv_heads=2, vocab_size=300)


def test_a_one_row_decoder_is_written_as_before():
    assert QWEN2.position_rows == 1
    assert "mrope_section" not in QWEN2.to_json()
    assert DecoderDims(**QWEN2.to_json()) == QWEN2
    assert DecoderDims.from_qwen2_config(QWEN2.to_qwen2_config()) == QWEN2


def test_the_mrope_section_is_read_from_qwen2_5_omnis_text_config_and_round_trips():
    from transformers.models.qwen2_5_omni.configuration_qwen2_5_omni import Qwen2_5OmniTextConfig

    config = Qwen2_5OmniTextConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, vocab_size=300,
                                   rope_parameters={"rope_type": "default", "rope_theta": 1e6,
                                                    "mrope_section": [2, 3, 3]})
    dims = DecoderDims.from_qwen2_config(config).check("config")
    assert dims.mrope_section == (2, 3, 3) and dims.position_rows == 3
    assert dims.to_json()["mrope_section"] == [2, 3, 3]
    assert DecoderDims(**dims.to_json()) == dims  # JSON's list comes back as the tuple


@pytest.mark.parametrize("section", [[2, 3], [2, 3, 4], "abc", [2, 3, True]])
def test_a_wrong_mrope_section_is_a_one_line_error(section):
    with pytest.raises(FastAVError, match="mrope_section"):
        DecoderDims(**{**QWEN2.to_json(), "mrope_section": section}).check("dims")

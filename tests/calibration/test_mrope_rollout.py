"""Calibration on an M-RoPE decoder (Qwen2.5-Omni's thinker) runs the rollout at the prompt's own TMRoPE
positions: the importance equals the rollout of transformers' own attention maps at those positions."""

from __future__ import annotations

import pytest
import torch

from fastav_export.calibration.calibrate import Sample, sample_importance
from fastav_export.contract.pruning_config import PruningConfig
from fastav_export.contract.synthetic_inputs import synthetic_embeds
from fastav_export.models.families.qwen2_5_omni.thinker import ThinkerDecoder, tiny_thinker
from fastav_export.reference.torch_reference import TorchReference
from tests.thinker_prompts import thinker_prompt

pytestmark = pytest.mark.slow  # the eager thinker with its attention maps: about 6 s

K, ALPHA = 3, 0.5


def _transformers_rollout(decoder, embeds, positions) -> torch.Tensor:
    """[N]: u^T (alpha A_{K-1} + (1 - alpha) I) ... (alpha A_0 + (1 - alpha) I), u the mean over all query
    rows, A_l the head-mean of the thinker's own eager attention probabilities."""
    with torch.no_grad():
        out = decoder.model(inputs_embeds=embeds, position_ids=positions, output_attentions=True)
    n = embeds.shape[1]
    product = torch.eye(n, dtype=torch.float64)
    for attention in out.attentions[:K]:
        product = (ALPHA * attention[0].mean(0).double() + (1 - ALPHA) * torch.eye(n, dtype=torch.float64)) @ product
    return product.mean(0)


def test_rollout_importance_uses_the_prompts_positions_as_transformers_does():
    thinker = tiny_thinker(0, attn_implementation="eager")
    decoder = ThinkerDecoder(thinker)
    prompt = thinker_prompt(thinker, seed=3)
    embeds = synthetic_embeds(decoder.model.embed_tokens.weight, prompt.layout, 1, 3)
    reference = TorchReference(decoder, prompt.layout, PruningConfig(global_layer=K))
    sample = Sample("clip", embeds, prompt.layout, prompt.position_ids[:, 0])
    got = torch.from_numpy(sample_importance(reference, embeds, K, [ALPHA], position_ids=sample.position_ids())[ALPHA])
    torch.testing.assert_close(got, _transformers_rollout(decoder, embeds, prompt.position_ids), atol=1e-5, rtol=0)
    # The TMRoPE rows matter: 0..N-1 in every row gives another importance.
    contiguous = torch.from_numpy(sample_importance(reference, embeds, K, [ALPHA])[ALPHA])
    assert (contiguous - got).abs().max() > 1e-4

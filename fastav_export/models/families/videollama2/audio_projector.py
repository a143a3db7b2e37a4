"""VideoLLaMA2-AV's audio projector `mm_projector_a`, with the checkpoint's key names.

Upstream (DAMO-NLP-SG/VideoLLaMA2, branch `audio_visual`, videollama2/model/projector.py
`build_audio_projector`): `mm_projector_a_type` "mlp2x_gelu" builds
nn.Sequential(Linear(mm_hidden_size_a, hidden_size_a), GELU(), Linear(hidden_size_a, hidden_size_a)),
so its keys are `0.{weight,bias}` and `2.{weight,bias}`. mm_hidden_size_a is BEATs'
encoder_embed_dim (768); hidden_size_a is the decoder's width (3584 for Qwen2-7B). The module
is `Videollama2MetaModel.mm_projector_a`, so the full model's keys read `model.mm_projector_a.*`;
`mm_projector_a.bin` is loaded (videollama2_arch.py `initialize_audio_modules`) by cutting each
key after its `mm_projector_a.`, strictly.
"""

from __future__ import annotations

import torch
from torch import nn

CHECKPOINT_PREFIX = "model.mm_projector_a."
REAL_IN_DIM = 768  # BEATs encoder_embed_dim
REAL_HIDDEN = 3584  # Qwen2-7B hidden_size


class AudioProjector(nn.Sequential):
    """Audio tower features -> decoder embeddings: [..., in_dim] -> [..., hidden].

    Linear -> GELU (exact erf) -> Linear, as nn.Sequential indices 0, 1, 2 (the checkpoint's keys).
    """

    def __init__(self, in_dim: int = REAL_IN_DIM, hidden: int = REAL_HIDDEN):
        super().__init__(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden))


def projector_state_dict(state_dict: dict[str, torch.Tensor],
                         marker: str = "mm_projector_a.") -> dict[str, torch.Tensor]:
    """The projector's weights from a checkpoint: every key containing `marker`, cut after it
    (upstream's rule for mm_projector_a.bin; also right for the full model's `model.mm_projector_a.*`)."""
    return {key.split(marker, 1)[1]: value for key, value in state_dict.items() if marker in key}

"""Buffers that upstream's state dicts carry although no weight of ours holds them: position ids.

BERT's embeddings register `position_ids` (arange(max_position_embeddings), [1, 512] int64) as a
persistent buffer. video-SALMONN 2 deletes its speech Q-Former's word and position embeddings but
not that buffer, and saves `model.state_dict()` whole, so its checkpoints carry
`speech_Qformer.bert.embeddings.position_ids`. transformers' SigLIP registers its own
`position_ids` ([1, patches]) non-persistent, but tensors saved by other versions or tools may
still hold `...vision_model.embeddings.position_ids`. No other buffer reaches these families'
checkpoints: BEATs' and Whisper's position tables are weights, the STC connector normalises with
LayerNorm (no running statistics), and Qwen2's rotary `inv_freq` has always been non-persistent.

Position ids hold no learned value, so such a tensor is accepted when it is what the module
computes (the positions 0..n-1; the shape of the module's own buffer where it has one), left out
of the load and named in the loading report; otherwise it is refused in one line. It must sit
under one of the module's `embeddings` submodules: anything else the module lacks is refused
by `snapshot_parts.load_into` as before.
"""

from __future__ import annotations

import torch

from ..errors import FastAVError

POSITION_IDS = "embeddings.position_ids"


def _is_position_ids(module: torch.nn.Module, key: str) -> bool:
    """`key` names the position ids of one of `module`'s embeddings submodules."""
    if key != POSITION_IDS and not key.endswith("." + POSITION_IDS):
        return False
    try:
        module.get_submodule(key[:-len(".position_ids")])
    except AttributeError:
        return False
    return True


def _check_position_ids(key: str, value: torch.Tensor, own: torch.Tensor | None, what: str) -> str:
    """One FastAVError line unless `value` is [1, n] positions 0..n-1 (and `own`'s shape, when the module has
    that buffer); else the report's words for it."""
    shape = list(value.shape)
    if own is not None and shape != list(own.shape):
        raise FastAVError(f"{what}'s {key} has shape {shape}, expected {list(own.shape)}: the config does not "
                          "match the weights")
    if value.dim() != 2 or shape[0] != 1 or shape[1] < 1:
        raise FastAVError(f"{what}'s {key} has shape {shape}, not upstream's [1, n] position ids: check the snapshot")
    if value.dtype == torch.bool or value.is_complex():
        raise FastAVError(f"{what}'s {key} is {str(value.dtype).replace('torch.', '')}, not upstream's integer "
                          "position ids: check the snapshot")
    n = shape[1]
    if not torch.equal(value.double(), torch.arange(n, dtype=torch.float64).unsqueeze(0)):
        raise FastAVError(f"{what}'s {key} holds {value.flatten()[:4].tolist()}..., not the positions 0..{n - 1} "
                          "that upstream saves there: check the snapshot")
    return f"{key} {shape} (upstream's buffer of the positions 0..{n - 1}, checked)"


def set_aside_position_ids(module: torch.nn.Module, state: dict[str, torch.Tensor],
                           what: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(`state` without the position ids buffers upstream saved and `module` does not load, the report's words
    for each). state: module key -> tensor; what: "DIR: the vision tower", for messages."""
    expected = module.state_dict().keys()
    own = dict(module.named_buffers())
    kept, ignored = {}, []
    for key, value in state.items():
        if key not in expected and _is_position_ids(module, key):
            ignored.append(_check_position_ids(key, value, own.get(key), what))
        else:
            kept[key] = value
    return kept, ignored

"""Registered models. Importing this package registers every family.

    registry.py        ModelSpec, one per model; checkpoint model_type -> family
    qwen2.py, videollama2.py, video_salmonn2.py   the families (dims, layout, preset, media settings)
    checkpoint.py      the decoder from a local snapshot's safetensors (or weights-only .bin: bin_weights.py)
    snapshot_files.py  decoder key prefixes, index shards, the skipped-tensor report
    state_keys.py      canonical keys (DeepSpeed / PEFT prefixes) and the LoRA merge
    model_factory.py   transformers Qwen2ForCausalLM, empty or with seeded random weights
    encoders/          SigLIP tower, STC connector (+ RegNet stage), BEATs, audio projector: real key names
    videollama2_av.py  VideoLLaMA2-AV's vision and audio encoders: shapes, random weights, snapshot loading
    video_salmonn2_av.py  video-SALMONN 2's encoders, the same for its keys and options
    seeded_weights.py  the tiny encoders' seeded random weights
    media_parts.py     a model's encoders + tokenizer (tiny: made here; checkpoint: read, with a report)
    snapshot_parts.py  one part of a snapshot by key prefix, from safetensors or a .bin file
    weights_only.py    `torch.save` files read with torch.load(weights_only=True) only
"""

from . import qwen2, video_salmonn2, videollama2  # noqa: F401  (registration side effects)
from .registry import (
    ModelSpec,
    all_specs,
    get_model_spec,
    model_names,
    placeholder_id_for,
)

__all__ = ["ModelSpec", "all_specs", "get_model_spec", "model_names", "placeholder_id_for"]

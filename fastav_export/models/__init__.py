"""Registered models. Importing this package registers every family.

    registry.py        ModelSpec, one per model; checkpoint model_type -> family name
    families/          one folder per family behind the `Family` interface (families/base.py): its specs,
                       snapshot loading, encoders, media preprocessing and layout rule, family-only options
    qwen2.py           plain Qwen2 checkpoints (no family folder: no media path) and the Qwen2-7B dims
    checkpoint.py      the decoder from a local snapshot's safetensors (or weights-only .bin: bin_weights.py)
    snapshot_files.py  decoder key prefixes, index shards, the skipped-tensor report
    state_keys.py      canonical keys (DeepSpeed / PEFT prefixes) and the LoRA merge
    model_factory.py   transformers Qwen2ForCausalLM, empty or with seeded random weights
    encoders/          encoders more than one family uses (SigLIP), with real key names
    seeded_weights.py  the tiny encoders' seeded random weights
    media_parts.py     MediaParts: a model's encoders + tokenizer + where they came from
    snapshot_parts.py  one part of a snapshot by key prefix, from safetensors or a .bin file
    snapshot_writing.py  tiny snapshots laid out as Hugging Face's (the families' tiny_snapshot.py)
    weights_only.py    `torch.save` files read with torch.load(weights_only=True) only
"""

from . import families, qwen2  # noqa: F401  (registration side effects)
from .registry import (
    ModelSpec,
    all_specs,
    get_model_spec,
    model_names,
    placeholder_id_for,
)

__all__ = ["ModelSpec", "all_specs", "get_model_spec", "model_names", "placeholder_id_for"]

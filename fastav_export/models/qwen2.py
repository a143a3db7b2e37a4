"""Plain Qwen2 decoders (`Qwen2ForCausalLM` checkpoints) with a caller-given layout.

No registered spec: a plain checkpoint has no multimodal layout of its own, so
`--checkpoint DIR` of this family needs `--layout FILE` (or `--model` of a family
whose layout applies).
"""

from .registry import register_checkpoint_type

FAMILY = "qwen2"

register_checkpoint_type("qwen2", FAMILY)

"""Plain Qwen2 decoders (`Qwen2ForCausalLM` checkpoints) with a caller-given layout.

No registered spec: a plain checkpoint has no multimodal layout of its own, so
`--checkpoint DIR` of this family needs `--layout FILE` (or `--model` of a family
whose layout applies).
"""

from ..contract.dims import DecoderDims
from .registry import register_checkpoint_type

FAMILY = "qwen2"

# The Qwen2-7B decoder both seed models use.
QWEN2_7B = DecoderDims(
    hidden_size=3584, intermediate_size=18944, num_layers=28, num_heads=28, num_kv_heads=4,
    vocab_size=152064, head_dim=128, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
    tie_word_embeddings=False, max_position_embeddings=32768,
)

register_checkpoint_type("qwen2", FAMILY)

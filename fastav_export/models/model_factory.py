"""Build the transformers `Qwen2ForCausalLM` a torch backend runs on.

Seeded random weights (tiny variants, benchmarks); `checkpoint.py` loads real ones
into the same empty model. Random weights come from a CPU generator seeded per run and are written in
parameter-name order, so the same seed gives the same model on any device.
"""

from __future__ import annotations

import torch

from ..contract.dims import DecoderDims
from .registry import ModelSpec


def make_qwen2(config, dtype=torch.float32, device="cpu"):
    """An uninitialised-on-meta Qwen2ForCausalLM materialised on `device` (no init cost)."""
    from transformers import Qwen2ForCausalLM

    with torch.device("meta"):
        model = Qwen2ForCausalLM(config)
    model = model.to_empty(device=device).to(dtype)
    # Non-persistent RoPE buffers are lost by to_empty(); rebuild them for real.
    with torch.device(device):
        model.model.rotary_emb = type(model.model.rotary_emb)(config=config)
    return model.eval()


def seed_decoder_weights(decoder: torch.nn.Module, seed: int, std: float) -> None:
    """Overwrite a Qwen2-shaped decoder's parameters with seeded N(0, std) values, drawn in parameter-name
    order from a CPU generator (the same seed gives the same model on any device); norm weights around 1."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(decoder.named_parameters()):
            values = torch.randn(param.shape, generator=generator)
            if name.endswith("norm.weight"):
                values = 1.0 + 0.1 * values
            elif "embed_tokens" in name:
                pass  # unit-scale embeddings, like the synthetic multimodal inputs
            else:
                values = values * std
            param.copy_(values)


def random_qwen2(dims: DecoderDims, seed: int = 0, std: float = 0.02, dtype=torch.float32,
                 device="cpu", attn_implementation: str = "sdpa"):
    """Qwen2ForCausalLM with seeded N(0, std) weights (norm weights around 1)."""
    config = dims.to_qwen2_config()
    config._attn_implementation = attn_implementation
    model = make_qwen2(config, torch.float32, device)
    seed_decoder_weights(model, seed, std)
    if dims.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    return model.to(dtype)


def build_model(spec: ModelSpec, seed: int = 0, dtype=torch.float32, device="cpu",
                attn_implementation: str = "sdpa"):
    """`spec`'s decoder with seeded random weights (real weights: `checkpoint.load_qwen2_checkpoint`)."""
    std = spec.random_init_std if spec.random_init_std is not None else 0.02
    return random_qwen2(spec.dims, seed=seed, std=std, dtype=dtype, device=device,
                        attn_implementation=attn_implementation)

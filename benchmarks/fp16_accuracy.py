"""fp16 ONNX Runtime engines against the fp32 PyTorch reference on the tiny seed models.

Builds each tiny model in fp16 (in a temporary directory), then for both global
policies and 4 seeds (batch 2) prints the largest first-step logit difference, the
logit scale, whether the kept token sets are identical, and whether 8 free-running
greedy tokens are identical (an argmax near-tie can flip under fp16 rounding).

    python benchmarks/fp16_accuracy.py
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from fastav_export.contract.synthetic_inputs import synthetic_embeds
from fastav_export.models import get_model_spec
from fastav_export.reference.torch_reference import TorchReference
from fastav_export.runtime.generation import generate
from fastav_export.runtime.ort.graphs import OrtPipeline
from fastav_export.testing.models import TINY_MODELS, build_tiny_engine, tiny_model


def main():
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name in TINY_MODELS:
            engine = build_tiny_engine(Path(tmp) / name, name, "fp16")
            spec = get_model_spec(name)
            layout = spec.default_layout()
            model = tiny_model(name)
            for policy in ("positional", "rollout"):
                config = replace(spec.preset, global_policy=policy).resolve(spec.dims.num_layers)
                for seed in range(4):
                    embeds = synthetic_embeds(model.model.embed_tokens.weight, layout, 2, seed)
                    ref = generate(TorchReference(model, layout, config), embeds, 8)
                    fp16 = generate(OrtPipeline(engine, layout, config), embeds, 8)
                    error = float(np.abs(ref.first_logits - fp16.first_logits).max())
                    worst = max(worst, error)
                    print(f"{name:>20} {policy:>10} seed {seed}: max |logit diff| {error:.4f} "
                          f"(max |logit| {np.abs(ref.first_logits).max():.2f}), kept sets equal "
                          f"{fp16.kept == ref.kept}, 8 tokens equal {fp16.tokens == ref.tokens}")
    print(f"largest first-step logit difference: {worst:.4f}")


if __name__ == "__main__":
    main()

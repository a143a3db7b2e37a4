"""Calibrated positional presets of the tiny models and the mid-size benchmark model.

For each model, `fastav-export calibrate`'s computation on seeded synthetic samples (text rows
from the embedding table, video/audio rows noise: `contract.synthetic_inputs`), K = L/2,
alpha 0.5, keep-mass 0.9: the rule, the candidates it keeps, the rollout mass it holds
(on the mean, and per sample), the rule of each half of the samples, its FLOPs ratio at
the 7B dims (this layout), and on held-out samples the Jaccard overlap of online rollout at
the same budget with the rule. Random weights and synthetic inputs: these say how the
method behaves on such models, not which preset a trained checkpoint needs.

    python benchmarks/calibration.py [--samples 8] [--held-out 4] [--json calibration.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from fastav_export.calibration.calibrate import Sample, calibrate, flops_at_7b, held_out_overlap
from fastav_export.contract.synthetic_inputs import synthetic_embeds
from fastav_export.models import get_model_spec
from fastav_export.models.model_factory import random_qwen2
from fastav_export.testing.models import MID_SIZE, tiny_model


def models():
    """name -> (decoder, layout)."""
    out = {name: (tiny_model(name), get_model_spec(name).default_layout())
           for name in ("videollama2-tiny", "video-salmonn2-tiny")}
    out["mid-size (VideoLLaMA2 layout)"] = (random_qwen2(MID_SIZE), get_model_spec("videollama2").default_layout())
    return out


def measure(model, layout, samples: int, held_out: int) -> dict:
    table = model.model.embed_tokens.weight.detach()
    rows = [Sample(f"seed{seed}", synthetic_embeds(table, layout, 1, seed)) for seed in range(samples + held_out)]
    K = model.config.num_hidden_layers // 2
    started = time.perf_counter()
    result = calibrate(model, layout, rows[:samples], K, [0.5], 0.9)
    seconds = time.perf_counter() - started
    rule = result.rule
    overlaps = held_out_overlap(model, layout, rule, rows[samples:], K, 0.5)
    flops = flops_at_7b(layout, rule)
    return {"rule": rule.describe(), "kept": rule.kept, "candidates": int(layout.candidate_mask().sum()),
            "mass": rule.mass, "per_sample_mass_min": min(result.per_sample_mass),
            "per_sample_mass_median": statistics.median(result.per_sample_mass),
            "halves": [half.describe() for half in result.halves], "flops_7b": flops.to_json(),
            "held_out_jaccard_mean": statistics.mean(overlaps), "held_out_jaccard_min": min(overlaps),
            "seconds_per_sample": seconds / samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--held-out", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {name: measure(model, layout, args.samples, args.held_out) for name, (model, layout) in models().items()}
    for name, r in results.items():
        print(f"{name}: {r['rule']}: keeps {r['kept']} of {r['candidates']} candidates, {r['mass']:.1%} of the mass "
              f"(per sample min {r['per_sample_mass_min']:.1%}, median {r['per_sample_mass_median']:.1%}); halves: "
              f"{' | '.join(r['halves'])}; FLOPs at 7B dims: paper {r['flops_7b']['paper']:.3f}, exact "
              f"{r['flops_7b']['exact_macs']:.3f}; held-out Jaccard mean {r['held_out_jaccard_mean']:.3f}, "
              f"min {r['held_out_jaccard_min']:.3f}; {r['seconds_per_sample']:.2f} s per sample")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

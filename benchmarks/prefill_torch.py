"""Dense vs pruned prefill of the torch backend: measured time ratio next to the FLOPs ratio.

Default: a mid-size random-weight Qwen2 (hidden 512, 8 layers, 8/2 heads, FFN 1536)
on the full VideoLLaMA2 layout (2,892 tokens) with the paper-like preset, on CPU.
`--full-size --device cuda --dtype bfloat16` runs the real 7B dimensions on a GPU and
also reports time per decoded token and peak memory.

    python benchmarks/prefill_torch.py
    python benchmarks/prefill_torch.py --full-size --device cuda --dtype bfloat16 --decode-steps 32 \
        --policies positional rollout --json torch-7b.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from fastav_export.contract.flops import flops_report
from fastav_export.contract.pruning_config import PruningConfig
from fastav_export.contract.synthetic_inputs import synthetic_embeds
from fastav_export.models import get_model_spec
from fastav_export.models.model_factory import random_qwen2
from fastav_export.reference.torch_reference import TorchReference
from fastav_export.testing.models import MID_SIZE


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_prefill(backend, embeds, repeats, device, max_new_tokens=0):
    backend.prefill(embeds, max_new_tokens=max_new_tokens)  # warm-up
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        backend.prefill(embeds, max_new_tokens=max_new_tokens)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_decode(backend, embeds, steps, device):
    out = backend.prefill(embeds, max_new_tokens=steps + 1)
    ids = out.logits.argmax(-1)
    backend.decode(ids)  # warm-up step
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        ids = backend.decode(ids).argmax(-1)
    synchronize(device)
    return (time.perf_counter() - start) / steps


def random_model(dims, dtype, device):
    """Seeded random weights; at full size on a GPU they are drawn there (the CPU would take minutes)."""
    if device.type != "cuda":
        return random_qwen2(dims, seed=0, std=0.02, dtype=dtype, device=device)
    from fastav_export.models.model_factory import make_qwen2

    config = dims.to_qwen2_config()
    config._attn_implementation = "sdpa"
    model = make_qwen2(config, dtype, device)
    generator = torch.Generator(device=device).manual_seed(0)
    for name, param in sorted(model.named_parameters()):
        if name.endswith("norm.weight"):
            param.normal_(1.0, 0.1, generator=generator)
        else:
            param.normal_(0.0, 1.0 if "embed_tokens" in name else 0.02, generator=generator)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full-size", action="store_true", help="real Qwen2-7B dimensions (needs a GPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--decode-steps", type=int, default=0, help="also time this many decode steps")
    parser.add_argument("--policies", nargs="+", default=["positional"], choices=("positional", "rollout"),
                        help="global policies of the pruned runs (default positional)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()

    spec = get_model_spec("videollama2")
    dims = spec.dims if args.full_size else MID_SIZE
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    layout = spec.default_layout()
    torch.set_grad_enabled(False)
    model = random_model(dims, dtype, device)
    embeds = synthetic_embeds(model.model.embed_tokens.weight, layout, 1, seed=0).to(device, dtype)
    # K = L/2 of this model, with the paper-like preset's rules.
    variants = [("dense", PruningConfig.dense())] + [
        (policy, replace(spec.preset, global_policy=policy)) for policy in args.policies]
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"model: {'Qwen2-7B dims' if args.full_size else 'mid-size'} {dims.hidden_size}d x {dims.num_layers} layers, "
          f"{args.dtype} on {device} ({device_name}); layout {layout.describe()}")
    results, figures = {}, {"device": device_name, "dtype": args.dtype, "full_size": args.full_size, "variants": {}}
    for label, config in variants:
        backend = TorchReference(model, layout, config)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        seconds = time_prefill(backend, embeds, args.repeats, device)
        peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
        decode = time_decode(backend, embeds, args.decode_steps, device) if args.decode_steps else float("nan")
        report = flops_report(dims, backend.schedule)
        results[label] = (seconds, decode, report)
        figures["variants"][label] = {"prefill_ms": seconds * 1e3, "decode_ms_per_token": decode * 1e3,
                                      "peak_gib": peak, "flops_ratio": report.to_json()}
        print(f"{label:>10}: prefill {seconds * 1e3:9.1f} ms   decode {decode * 1e3:7.2f} ms/token   "
              f"peak {peak:6.2f} GiB   tokens/layer {backend.schedule.tokens[0]} -> {backend.schedule.tokens[-1]}")
    dense_s, dense_decode, _ = results["dense"]
    for label in args.policies:
        seconds, decode, report = results[label]
        print(f"{label}: measured prefill time ratio (pruned / dense) {seconds / dense_s:.3f}, decode "
              f"{decode / dense_decode:.3f}; FLOPs ratio {report.describe()} (the reference has no early drop)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()

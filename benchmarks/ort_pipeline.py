"""ONNX Runtime engines on CPU: dense vs pruned prefill and decode, next to the FLOPs ratio.

Builds (once, into --engine) a mid-size random-weight Qwen2 (hidden 512, 8 layers,
8/2 heads, FFN 1536) for the full VideoLLaMA2 layout (2,892 tokens) with the paper-like
positional preset, then runs the same engine with pruning off and on:

* prefill: median of --repeats runs; the measured time ratio against the exact FLOPs
  ratio (the difference is the runtime's overhead: switching graphs, gathering, KV);
* decode: ms per token over the first and the last quarter of --decode-steps steps
  (growth beyond attention would mean the past is being copied);
* the export + build time of the tiny default engine (`fastav-export build`).

    python benchmarks/ort_pipeline.py
    python benchmarks/ort_pipeline.py --global-policy rollout --engine engines/bench-mid-rollout
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from prefill_torch import MID_SIZE  # noqa: E402

from fastav_export.build import build_engine  # noqa: E402
from fastav_export.engine_dir import load_engine_dir  # noqa: E402
from fastav_export.flops import flops_report  # noqa: E402
from fastav_export.models import get_model_spec  # noqa: E402
from fastav_export.ort_backend.pipeline import OrtPipeline  # noqa: E402
from fastav_export.pruning_config import PruningConfig  # noqa: E402
from fastav_export.synthetic_inputs import synthetic_embeds  # noqa: E402
from fastav_export.torch_backend.model_factory import build_model, random_qwen2  # noqa: E402


def time_prefill(pipeline, embeds, repeats, max_new_tokens):
    pipeline.prefill(embeds, max_new_tokens=max_new_tokens)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        pipeline.prefill(embeds, max_new_tokens=max_new_tokens)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_decode(pipeline, embeds, steps):
    """ms per token over the first and the last quarter of `steps` decode steps."""
    ids = pipeline.prefill(embeds, max_new_tokens=steps + 1).logits.argmax(-1)
    ids = pipeline.decode(ids).argmax(-1)  # warm-up step
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        ids = pipeline.decode(ids).argmax(-1)
        times.append(time.perf_counter() - start)
    quarter = max(1, steps // 4)
    return statistics.median(times[:quarter]) * 1e3, statistics.median(times[-quarter:]) * 1e3


def tiny_build_seconds() -> float:
    spec = get_model_spec("videollama2-tiny")
    model = build_model(spec, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        build_engine(model, model_name=spec.name, source={"kind": "random", "seed": 0}, dims=spec.dims,
                     precision="fp32", layout=spec.default_layout(), config=spec.preset.resolve(spec.dims.num_layers),
                     max_tokens=spec.default_layout().n_tokens, max_new_tokens=64, out=Path(tmp) / "engine")
        # model creation is excluded; the CLI adds about 3 s of imports
        return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", type=Path, default=Path("engines/bench-mid-fp32"),
                        help="engine directory, built on first use (default engines/bench-mid-fp32)")
    parser.add_argument("--global-policy", default="positional", choices=("positional", "rollout"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--decode-steps", type=int, default=64)
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (default: all cores)")
    args = parser.parse_args()

    spec = get_model_spec("videollama2")
    layout = spec.default_layout()
    torch.set_grad_enabled(False)
    model = random_qwen2(MID_SIZE, seed=0, std=0.02)
    pruned = replace(spec.preset, global_policy=args.global_policy).resolve(MID_SIZE.num_layers)
    if not (args.engine / "config.json").is_file():
        start = time.perf_counter()
        build_engine(model, model_name="videollama2-mid", source={"kind": "random", "seed": 0}, dims=MID_SIZE,
                     precision="fp32", layout=layout, config=pruned, max_tokens=layout.n_tokens,
                     max_new_tokens=args.decode_steps + 2, out=args.engine, progress=print)
        print(f"built {args.engine} in {time.perf_counter() - start:.1f} s")
    manifest = load_engine_dir(args.engine)
    embeds = synthetic_embeds(model.model.embed_tokens.weight, layout, 1, seed=0)
    dense = replace(PruningConfig.dense(), global_layer=manifest.global_layer)
    print(f"model: mid-size {MID_SIZE.hidden_size}d x {MID_SIZE.num_layers} layers, fp32, ONNX Runtime CPU "
          f"({args.threads or 'all'} threads); layout {layout.describe()}")
    results = {}
    for label, config in (("dense", dense), ("pruned", pruned)):
        pipeline = OrtPipeline(manifest, layout, config, threads=args.threads)
        prefill = time_prefill(pipeline, embeds, args.repeats, args.decode_steps + 2)
        first, last = time_decode(pipeline, embeds, args.decode_steps)
        results[label] = (prefill, first, last, flops_report(MID_SIZE, pipeline.schedule))
        print(f"{label:>6}: prefill {prefill * 1e3:8.1f} ms   decode {first:6.2f} ms/token (first "
              f"{args.decode_steps // 4} steps) -> {last:6.2f} ms/token (last {args.decode_steps // 4})   "
              f"tokens/layer {pipeline.schedule.tokens[0]} -> {pipeline.schedule.tokens[-1]}")
    (dense_s, dense_first, _, _), (pruned_s, pruned_first, _, report) = results["dense"], results["pruned"]
    print(f"measured prefill time ratio (pruned / dense): {pruned_s / dense_s:.3f}")
    print(f"FLOPs ratio: paper formula {report.paper_ratio:.3f}, exact MACs {report.exact_ratio:.3f} "
          f"(difference to the measured ratio: {pruned_s / dense_s - report.exact_ratio:+.3f})")
    print(f"decode time ratio (pruned / dense, first steps): {pruned_first / dense_first:.3f}")
    print(f"export + build of the tiny default engine: {tiny_build_seconds():.1f} s")


if __name__ == "__main__":
    main()

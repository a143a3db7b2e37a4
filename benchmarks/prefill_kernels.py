"""What a long prefill costs on ONNX Runtime's CPU, piece by piece, at the mid-size model's shapes.

    python benchmarks/prefill_kernels.py            # after `python benchmarks/peers.py` built engines/peers

Prints, each the best of several runs on all cores:
  attention   one layer's causal attention over 2,892 tokens (8 query / 2 KV heads, head size 64):
              com.microsoft GroupQueryAttention (what the ort-contrib graphs and genai run), opset-23
              Attention, com.microsoft MultiHeadAttention (KV heads repeated), torch's SDPA;
  rollout     one fastav::RolloutStep over 2,892 tokens per block size (query rows per block);
  windows     the fastav positional engine's prefill (engines/peers/fastav-positional), positional
              and with pruning off, per chunked-prefill window (`GraphPipeline.prefill_chunk`; none: one call).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
N, HEADS, KV_HEADS, HEAD = 2892, 8, 2, 64


def best_ms(call, runs: int) -> float:
    call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1e3)
    return min(times)


def _session(nodes, inputs, opsets, functions=()):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(name, kind, shape)
                                           for name, kind, shape in inputs],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
                              functions=list(functions))
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def attention(runs: int) -> None:
    import torch
    from onnx import TensorProto as T
    from onnx import helper

    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, N, HEADS * HEAD), np.float32)
    k, v = (rng.standard_normal((1, N, KV_HEADS * HEAD), np.float32) for _ in range(2))
    opsets = [("", 23), ("com.microsoft", 1)]
    gqa = _session([helper.make_node("GroupQueryAttention", ["q", "k", "v", "", "", "seqlens", "total"], ["out"],
                                     domain="com.microsoft", num_heads=HEADS, kv_num_heads=KV_HEADS)],
                   [("q", T.FLOAT, [1, N, HEADS * HEAD]), ("k", T.FLOAT, [1, N, KV_HEADS * HEAD]),
                    ("v", T.FLOAT, [1, N, KV_HEADS * HEAD]), ("seqlens", T.INT32, [1]), ("total", T.INT32, [])], opsets)
    feeds = {"q": q, "k": k, "v": v, "seqlens": np.array([N - 1], np.int32), "total": np.array(N, np.int32)}
    print(f"attention, one layer, {N} tokens, causal")
    print(f"  GroupQueryAttention (com.microsoft)   {best_ms(lambda: gqa.run(None, feeds), runs):8.1f} ms")

    def heads4(x, n):
        return np.ascontiguousarray(x.reshape(1, N, n, HEAD).transpose(0, 2, 1, 3))

    standard = _session([helper.make_node("Attention", ["q", "k", "v"], ["out"], is_causal=1)],
                        [("q", T.FLOAT, [1, HEADS, N, HEAD]), ("k", T.FLOAT, [1, KV_HEADS, N, HEAD]),
                         ("v", T.FLOAT, [1, KV_HEADS, N, HEAD])], opsets)
    feeds4 = {"q": heads4(q, HEADS), "k": heads4(k, KV_HEADS), "v": heads4(v, KV_HEADS)}
    print(f"  Attention (opset 23)                  {best_ms(lambda: standard.run(None, feeds4), runs):8.1f} ms")
    repeat = HEADS // KV_HEADS
    mha = _session([helper.make_node("MultiHeadAttention", ["q", "k", "v"], ["out"], domain="com.microsoft",
                                     num_heads=HEADS, unidirectional=1)],
                   [(name, T.FLOAT, [1, N, HEADS * HEAD]) for name in "qkv"], opsets)
    wide = {name: np.repeat(x.reshape(1, N, KV_HEADS, HEAD), repeat, axis=2).reshape(1, N, HEADS * HEAD)
            for name, x in (("k", k), ("v", v))}
    print(f"  MultiHeadAttention (com.microsoft)    {best_ms(lambda: mha.run(None, {'q': q, **wide}), runs):8.1f} ms")
    tq, tk, tv = (torch.from_numpy(feeds4[name]) for name in "qkv")
    with torch.no_grad():
        sdpa = best_ms(lambda: torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True,
                                                                                enable_gqa=True), runs)
    print(f"  torch scaled_dot_product_attention    {sdpa:8.1f} ms")


def rollout(runs: int, blocks) -> None:
    from onnx import TensorProto as T
    from onnx import helper

    from fastav_export.export.custom_ops import FASTAV_DOMAIN
    from fastav_export.export.rollout_function import rollout_function

    rng = np.random.default_rng(0)
    feeds = {"vector": np.full((1, N), 1.0 / N, np.float32),
             "query": rng.standard_normal((1, N, HEADS * HEAD), np.float32) * 0.3,
             "key": rng.standard_normal((1, N, KV_HEADS * HEAD), np.float32) * 0.3,
             "alpha": np.array(0.5, np.float32), "enabled": np.array(True)}
    inputs = [("vector", T.FLOAT, [1, N]), ("query", T.FLOAT, [1, N, HEADS * HEAD]),
              ("key", T.FLOAT, [1, N, KV_HEADS * HEAD]), ("alpha", T.FLOAT, []), ("enabled", T.BOOL, [])]
    print(f"rollout, one RolloutStep over {N} tokens")
    for block in blocks:
        node = helper.make_node("RolloutStep", list(feeds), ["out"], domain=FASTAV_DOMAIN, num_heads=HEADS,
                                kv_heads=KV_HEADS, scale=HEAD ** -0.5, block=block)
        session = _session([node], inputs, [("", 23), (FASTAV_DOMAIN, 1)], [rollout_function(23)])
        print(f"  block {block:>5} rows   {best_ms(lambda: session.run(None, feeds), runs):8.1f} ms")


def windows(runs: int, work: Path, sizes) -> None:
    import torch

    from fastav_export.contract.pruning_config import PruningConfig
    from fastav_export.engine.manifest import load_engine_dir
    from fastav_export.runtime.ort.graphs import OrtGraphs, OrtPipeline

    manifest = load_engine_dir(work / "fastav-positional")
    embeds = torch.from_numpy(np.load(work / "embeds.npy"))
    graphs = OrtGraphs(manifest)
    dense = replace(PruningConfig.dense(), global_layer=manifest.global_layer)
    print(f"prefill of {work / 'fastav-positional'} per window")
    for name, config in (("positional", manifest.pruning), ("pruning off", dense)):
        for size in sizes:
            pipeline = OrtPipeline(manifest, manifest.layout, config.resolve(manifest.dims.num_layers), graphs=graphs)
            pipeline.prefill_chunk = size
            shown = "one call" if size is None else f"{size} tokens"
            print(f"  {name:<12} {shown:<11} {best_ms(lambda: pipeline.prefill(embeds, 2), runs):8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=4, help="timed runs per figure (default 4)")
    parser.add_argument("--work", type=Path, default=ROOT / "engines" / "peers",
                        help="peers.py's work folder (default engines/peers)")
    args = parser.parse_args()
    attention(args.runs)
    rollout(args.runs, (16, 32, 64, 128, 256, 1024))
    if (args.work / "fastav-positional" / "config.json").is_file():
        windows(args.runs, args.work, (None, 128, 256, 512, 1024))
    else:
        print(f"windows: no engine in {args.work}: run `python benchmarks/peers.py` first")


if __name__ == "__main__":
    main()

"""TopKGather kernels vs the GPU's copy bandwidth (GPU only).

Times the whole TopKGather call (radix select + compaction + row gather, through the
launcher API built as a PyTorch extension) and reports its effective bandwidth: the
bytes the gather must move (read and write each kept hidden row once) divided by the
time, as a fraction of a torch device-to-device copy of the same number of bytes.
Target: above 70% at N = 3000, D = 3584, batch 8 (the VideoLLaMA2 global cut).

    python benchmarks/topk_gather_kernel.py
    python benchmarks/topk_gather_kernel.py --dtype float32 --tokens 20000 --keep 8000
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch


def cuda_time_ms(fn, iterations: int) -> float:
    """Median milliseconds per call from CUDA events, after warm-up."""
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iterations):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=3000)
    parser.add_argument("--width", type=int, default=3584)
    parser.add_argument("--candidates", type=int, default=2848, help="video + audio tokens (the rest is protected)")
    parser.add_argument("--keep", type=int, default=1500, help="k: candidates kept")
    parser.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="float16")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("error: this benchmark needs a CUDA GPU and a CUDA build of PyTorch", file=sys.stderr)
        return 2

    from fastav_export.testing.topk_gather_extension import load_topk_gather_extension

    extension = load_topk_gather_extension()
    dtype = getattr(torch, args.dtype)
    device = torch.device("cuda")
    b, n, d = args.batch, args.tokens, args.width
    scores = torch.randn(b, n, device=device)
    hidden = torch.randn(b, n, d, device=device, dtype=dtype)
    positions = torch.arange(n, device=device).repeat(b, 1)
    protected_count = n - args.candidates
    protected = torch.arange(protected_count, device=device).repeat(b, 1)
    candidates = torch.arange(protected_count, n, device=device).repeat(b, 1)
    kept = protected_count + args.keep

    op_ms = cuda_time_ms(lambda: extension.topk_gather(scores, hidden, positions, candidates, protected, args.keep),
                         args.iterations)
    moved = 2 * b * kept * d * hidden.element_size()  # read + write of every kept row
    source = torch.empty(b * kept * d, device=device, dtype=dtype)
    target = torch.empty_like(source)
    copy_ms = cuda_time_ms(lambda: target.copy_(source), args.iterations)

    op_bandwidth = moved / op_ms / 1e6  # GB/s
    copy_bandwidth = moved / copy_ms / 1e6
    ratio = op_bandwidth / copy_bandwidth
    print(f"GPU: {torch.cuda.get_device_name()} | B={b} N={n} D={d} k={args.keep} kept={kept} {args.dtype}")
    print(f"TopKGather (select + gather): {op_ms * 1e3:.1f} us, {op_bandwidth:.0f} GB/s effective")
    print(f"torch copy of the same bytes: {copy_ms * 1e3:.1f} us, {copy_bandwidth:.0f} GB/s")
    print(f"fraction of copy bandwidth: {ratio:.0%} (target > 70%): {'PASSED' if ratio > 0.7 else 'FAILED'}")
    if args.json:
        args.json.write_text(json.dumps({
            "device": torch.cuda.get_device_name(), "batch": b, "tokens": n, "width": d, "keep": args.keep,
            "dtype": args.dtype, "op_us": op_ms * 1e3, "copy_us": copy_ms * 1e3, "op_gb_s": op_bandwidth,
            "copy_gb_s": copy_bandwidth, "fraction_of_copy": ratio, "passed": ratio > 0.7}, indent=1) + "\n")
    return 0 if ratio > 0.7 else 1


if __name__ == "__main__":
    sys.exit(main())

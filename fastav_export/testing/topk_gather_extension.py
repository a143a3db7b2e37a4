"""The TopKGather CUDA kernels as a PyTorch extension (GPU tests and benchmarks only).

Builds `plugins/topk_gather/topk_gather_kernels.cu` plus a small binding with
`torch.utils.cpp_extension.load` on first use (cached by torch under
TORCH_EXTENSIONS_DIR), so the kernels can be checked and timed without TensorRT.
"""

from __future__ import annotations

import functools
from pathlib import Path

from ..errors import FastAVError

SOURCES = Path(__file__).resolve().parents[2] / "plugins" / "topk_gather"


@functools.lru_cache(maxsize=None)
def load_topk_gather_extension():
    """The compiled module; its `topk_gather(scores, hidden, positions, candidates, protected, k)`
    returns (kept_index [B, M+k], kept_hidden_states [B, M+k, D], kept_position_ids [B, M+k])."""
    import torch
    from torch.utils.cpp_extension import load

    if not torch.cuda.is_available():
        raise FastAVError("the TopKGather kernels need a CUDA GPU and a CUDA build of PyTorch")
    if not (SOURCES / "topk_gather_kernels.cu").is_file():
        raise FastAVError(f"TopKGather kernel sources not found in {SOURCES}: use a source checkout")
    major, minor = torch.cuda.get_device_capability()
    return load(
        name="fastav_topk_gather",
        sources=[str(SOURCES / "torch_ext" / "topk_gather_torch.cpp"), str(SOURCES / "topk_gather_kernels.cu")],
        extra_include_paths=[str(SOURCES)],
        extra_cuda_cflags=["-O3", f"-gencode=arch=compute_{major}{minor},code=sm_{major}{minor}"],
        verbose=False,
    )

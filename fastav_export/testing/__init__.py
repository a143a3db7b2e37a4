"""Helpers the tests and the benchmarks share (imported normally, never by the package itself).

    models.py                 the tiny seed models and engines, and the mid-size benchmark dims
    topk_gather_extension.py  the TopKGather CUDA kernels as a PyTorch extension (GPU tests, benchmark)
"""

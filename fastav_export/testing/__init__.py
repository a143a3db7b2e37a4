"""Helpers the tests and the benchmarks share (imported normally, never by the package itself).

    models.py                 the tiny seed models and engines, and the mid-size benchmark dims
    snapshots.py              tiny VideoLLaMA2-AV snapshot directories with the real key names and file kinds
    media_clips.py            test clips and audio files written with PyAV (the sample clip: `fastav-export sample-clip`)
    topk_gather_extension.py  the TopKGather CUDA kernels as a PyTorch extension (GPU tests, benchmark)
"""

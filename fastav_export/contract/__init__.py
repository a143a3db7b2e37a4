"""The pruning contract (`docs/semantics.md`): what is kept, in which shapes,
at what cost. Pure Python/numpy/torch, no model and no runtime.

    dims.py              DecoderDims: the decoder's sizes (and its M-RoPE section, if any)
    positions.py         position ids through the cuts: one row or three (M-RoPE), decoding's next position
    precision.py         fp32/fp16/bf16 and their torch, ONNX and byte sizes
    layout.py            token layout: segments, JSON form, candidates
    pruning_config.py    PruningConfig: every number that decides what is kept
    selection.py         keep/drop decisions and their tie rules
    schedule.py          tokens per layer from layout + config (never from data)
    flops.py             paper formula and exact MACs (with and without early drop)
    graph_io.py          names and order of every graph's inputs and outputs, graph flavours
    kv_buffers.py        per-layer KV buffers (N before K, |T_l| after, + the generated tokens)
    backend_protocol.py  PrefillOutput and the interface every backend (reference or engine) offers
    synthetic_inputs.py  seeded embeddings over a layout
"""

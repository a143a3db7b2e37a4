"""The PyTorch reference of the contract, on transformers' own Qwen2 modules: what every
engine backend is checked against.

    torch_reference.py  TorchReference: prefill with the cuts between layers, decode
    scoring.py          last-query scores and head-mean attention rows
    rollout.py          streaming attention rollout (no N x N maps)
(The per-layer KV cache is contract/kv_buffers.py, shared with the engine runtime.)
"""

"""The PyTorch reference of the contract, on transformers' own Qwen2 modules: what every
engine backend is checked against.

    torch_reference.py  TorchReference: prefill with the cuts between layers, decode
    kv_buffers.py       per-layer KV cache whose layers shrink as tokens are pruned
    scoring.py          last-query scores and head-mean attention rows
    rollout.py          streaming attention rollout (no N x N maps)
"""

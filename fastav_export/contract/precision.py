"""The precisions an engine can be built in, and what each one is in torch, ONNX, bytes and Triton."""

from __future__ import annotations

import torch

PRECISIONS = ("fp32", "fp16", "bf16")
TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# torch dtype names, as `run --dtype` and `prefill_torch.py --dtype` spell them
DTYPE_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
# onnx.TensorProto element types: FLOAT, FLOAT16, BFLOAT16
ONNX_TYPES = {"fp32": 1, "fp16": 10, "bf16": 16}
BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
# ONNX Runtime's CPU provider has no bf16 kernels, so bf16 graphs run on TensorRT only.
ORT_CPU_PRECISIONS = ("fp32", "fp16")

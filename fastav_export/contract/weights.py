"""Weight-only quantization of the decoder's linear layers: what `build --weights` asks for and the
manifest records.

The weights of every linear layer (the fused QKV, output and MLP projections) are stored as int4 or
int8 in blocks of `block_size` values along the input axis, one scale per block, symmetric (no
zero point). Activations, norms, attention, the KV cache and the logits stay at the graph precision.
The lm_head stays at the graph precision unless asked for (it is the layer most sensitive to
rounding, and on the last token only), and so does the embedding table (a gather reads one row
per token: quantizing it saves memory, not time).

How a graph holds them depends on its flavour:
    ort-contrib     com.microsoft MatMulNBits (ONNX Runtime's CPU kernels; `accuracy_level` 4
                    computes with int8 activations, as onnxruntime-genai's CPU int4 models do)
    onnx-standard   a blocked DequantizeLinear (opset 21+) in front of each MatMul, the form
                    TensorRT imports as weight-only quantization. TensorRT quantizes weights
                    alone only to int4 (int8 needs activation scales too), so this flavour
                    takes int4 only.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import FastAVError

WEIGHT_KINDS = ("int4", "int8")
BITS = {"int4": 4, "int8": 8}
DEFAULT_BLOCK_SIZE = 32  # onnxruntime-genai's default; TensorRT's int4 blocks are 32 or larger powers of 2
BLOCK_SIZES = (16, 32, 64, 128, 256)  # what MatMulNBits' kernels take
ACCURACY_LEVELS = (0, 1, 2, 3, 4)  # MatMulNBits: 0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 activations
DEFAULT_ACCURACY_LEVEL = 4
QUANTIZED_OP = {"ort-contrib": "MatMulNBits", "onnx-standard": "DequantizeLinear"}
FLAVOUR_KINDS = {"ort-contrib": ("int4", "int8"), "onnx-standard": ("int4",)}


@dataclass(frozen=True)
class WeightQuantization:
    kind: str  # "int4" or "int8"
    flavour: str  # the graphs' flavour, which fixes the op (QUANTIZED_OP)
    block_size: int = DEFAULT_BLOCK_SIZE
    accuracy_level: int = DEFAULT_ACCURACY_LEVEL  # MatMulNBits only (ignored by DequantizeLinear)
    lm_head: bool = False  # the lm_head quantized too

    def __post_init__(self):
        if self.kind not in WEIGHT_KINDS:
            raise FastAVError(f"weights {self.kind!r} is not one of {', '.join(WEIGHT_KINDS)}")
        if self.flavour not in FLAVOUR_KINDS:
            raise FastAVError(f"graph flavour {self.flavour!r} has no quantized form")
        if self.kind not in FLAVOUR_KINDS[self.flavour]:
            raise FastAVError(f"--weights {self.kind} needs --graphs ort-contrib: the {self.flavour} graphs hold "
                              "weights as TensorRT's weight-only quantization does, which is int4 only "
                              "(use --weights int4)")
        if self.block_size not in BLOCK_SIZES:
            raise FastAVError(f"weight block size {self.block_size} is not one of {', '.join(map(str, BLOCK_SIZES))}")
        if self.accuracy_level not in ACCURACY_LEVELS:
            raise FastAVError(f"accuracy level {self.accuracy_level} is not one of 0..4")

    @property
    def bits(self) -> int:
        return BITS[self.kind]

    @property
    def op(self) -> str:
        return QUANTIZED_OP[self.flavour]

    def describe(self) -> str:
        level = f", accuracy level {self.accuracy_level}" if self.op == "MatMulNBits" else ""
        head = "lm_head quantized too" if self.lm_head else "lm_head and embeddings unquantized"
        return f"{self.kind} weights ({self.op}, blocks of {self.block_size}{level}; {head})"

    def to_json(self) -> dict:
        return {"kind": self.kind, "op": self.op, "block_size": self.block_size,
                "accuracy_level": self.accuracy_level, "lm_head": self.lm_head}

    @classmethod
    def from_json(cls, data: dict, flavour: str) -> "WeightQuantization":
        return cls(data["kind"], flavour, data["block_size"], data["accuracy_level"], data["lm_head"])


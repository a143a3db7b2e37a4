"""Key names of training checkpoints, and merging a LoRA adapter into the weights it adapts.

DeepSpeed saves its wrapped model's keys under `module.`; PEFT's LoRA wrapper puts the model
under `base_model.model.`, the adapted layer's own weights under `.base_layer.`, and the
adapter's low-rank pair beside them (`q_proj.lora_A.default.weight` [r, in],
`q_proj.lora_B.default.weight` [out, r]). `canonical_key` maps such a key to the plain
model's name; `merge_lora` folds each pair into its weight, W + scale * B @ A, with
scale = lora_alpha / r (lora_alpha / sqrt(r) with use_rslora) from PEFT's adapter_config.json.
What that formula would get wrong (DoRA, fan_in_fan_out, per-module ranks or alphas, LoRA on
embeddings, several adapters) is refused in one line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import FastAVError
from ..user_io.json_input import read_json_file

ADAPTER_CONFIG = "adapter_config.json"
# `<module>.lora_A.<adapter>.weight` or `<module>.lora_A.weight`
LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<half>[AB])(?:\.(?P<adapter>[^.]+))?\.weight$")
MERGE_IT = "merge the adapter with peft's merge_and_unload() and save the merged model"


def canonical_key(key: str) -> str:
    """`module.base_model.model.x.q_proj.base_layer.weight` -> `x.q_proj.weight`; plain keys unchanged."""
    for prefix in ("module.", "base_model.model."):
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key.replace(".base_layer.", ".")


def is_lora_key(key: str) -> bool:
    """Any tensor of a LoRA adapter (lora_A/B, lora_embedding_A/B, DoRA's lora_magnitude_vector)."""
    return ".lora_" in key


@dataclass(frozen=True)
class AdapterConfig:
    r: int
    lora_alpha: float
    use_rslora: bool = False

    @property
    def scale(self) -> float:
        return self.lora_alpha / (math.sqrt(self.r) if self.use_rslora else self.r)

    def describe(self) -> str:
        return f"alpha/{'sqrt(r)' if self.use_rslora else 'r'} = {self.scale:g}"


def read_adapter_config(directory: Path) -> AdapterConfig:
    """r, lora_alpha and use_rslora from PEFT's adapter_config.json in `directory`, or one FastAVError line."""
    path = Path(directory) / ADAPTER_CONFIG
    if not path.is_file():
        raise FastAVError(f"{directory} holds LoRA weights (lora_A/lora_B) but no {ADAPTER_CONFIG}, so their scale "
                          f"lora_alpha / r is unknown: add PEFT's {ADAPTER_CONFIG} with r and lora_alpha beside the "
                          "weights (video-SALMONN 2's public training scripts use r 128, lora_alpha 256), "
                          f"or {MERGE_IT}")
    config = read_json_file(path, "LoRA adapter config")
    if not isinstance(config, dict):
        raise FastAVError(f"{path} holds a JSON {type(config).__name__}, not PEFT's object of adapter settings")
    if config.get("peft_type", "LORA") != "LORA":
        raise FastAVError(f"{path}: peft_type is {config['peft_type']!r}; fastav-export merges LoRA adapters only")
    refused = {"use_dora": "DoRA", "fan_in_fan_out": "fan_in_fan_out (transposed) weights",
               "rank_pattern": "per-module ranks (rank_pattern)", "alpha_pattern": "per-module alphas (alpha_pattern)"}
    for name, what in refused.items():
        if config.get(name):
            raise FastAVError(f"{path} sets {name}: fastav-export merges plain LoRA only, not {what}: {MERGE_IT}")
    r, alpha = config.get("r"), config.get("lora_alpha")
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise FastAVError(f"{path}: r is {r!r}, expected the LoRA rank, an integer >= 1")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise FastAVError(f"{path}: lora_alpha is {alpha!r}, expected a number")
    return AdapterConfig(r, float(alpha), bool(config.get("use_rslora")))


def merge_lora(state: dict[str, torch.Tensor], directory: Path) -> tuple[dict[str, torch.Tensor], int]:
    """`state` (canonical keys) with every LoRA pair merged into its weight, and the number of merged modules.

    W + scale * B @ A is computed in fp32 and cast back to W's dtype; biases are untouched.
    A state without LoRA tensors comes back as it is (no adapter_config.json needed).
    """
    pairs: dict[str, dict[str, str]] = {}
    adapters = set()
    for key in state:
        if not is_lora_key(key):
            continue
        match = LORA_KEY.match(key)
        if match is None:
            what = "LoRA on embeddings" if ".lora_embedding_" in key else "this kind of LoRA tensor"
            raise FastAVError(f"{directory}: {key} is {what}, which fastav-export does not merge (it merges "
                              f"lora_A/lora_B pairs of linear layers): {MERGE_IT}")
        pairs.setdefault(match["module"], {})[match["half"]] = key
        adapters.add(match["adapter"] or "default")
    if not pairs:
        return state, 0
    if len(adapters) > 1:
        raise FastAVError(f"{directory} holds several LoRA adapters ({', '.join(sorted(adapters))}): "
                          f"keep the one to use, or {MERGE_IT}")
    adapter = read_adapter_config(directory)
    merged = dict(state)
    for module, halves in sorted(pairs.items()):
        base = f"{module}.weight"
        if len(halves) != 2 or base not in state:
            what = (f"lora_{next(iter(halves))} without its lora_{'B' if 'A' in halves else 'A'}" if len(halves) != 2
                    else f"a LoRA pair but no base weight {base}")
            raise FastAVError(f"{directory}: {module} has {what}: the checkpoint is incomplete, re-save it")
        a, b, weight = state[halves["A"]], state[halves["B"]], state[base]
        if (a.ndim, b.ndim, weight.ndim) != (2, 2, 2) or b.shape[1] != a.shape[0] or (
                b.shape[0], a.shape[1]) != tuple(weight.shape):
            raise FastAVError(f"{directory}: {module}'s lora_B {list(b.shape)} @ lora_A {list(a.shape)} does not "
                              f"match its weight {list(weight.shape)}: the checkpoint is inconsistent")
        if a.shape[0] != adapter.r:
            raise FastAVError(f"{directory}: {module}'s LoRA rank is {a.shape[0]} but {ADAPTER_CONFIG} says r "
                              f"{adapter.r}: use the adapter_config.json these weights were trained with")
        delta = b.to(torch.float32) @ a.to(torch.float32)
        merged[base] = (weight.to(torch.float32) + adapter.scale * delta).to(weight.dtype)
        del merged[halves["A"]], merged[halves["B"]]
    return merged, len(pairs)

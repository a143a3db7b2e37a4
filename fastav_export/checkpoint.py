"""Load a Qwen2 decoder from a local Hugging Face snapshot directory.

Accepted formats (the family is read from config.json `model_type`):
* plain `Qwen2ForCausalLM` (`qwen2`);
* VideoLLaMA2 (`videollama2_qwen2`) and video-SALMONN 2 (`video_salmonn_2`, or its
  LLaVA-OneVision base `llava_qwen`): the same LLM keys plus encoder/projector weights
  (`model.vision_tower.*`, `model.mm_projector*`, `model.audio_tower.*`,
  `speech_encoder.*`, `speech_Qformer.*`, ...), which are skipped and reported.

Only safetensors are read (`model.safetensors`, or the shards named by
`model.safetensors.index.json`): pickle files (`*.bin`, `*.pt`) are refused because
loading them can run arbitrary code. Nothing is downloaded and no remote code runs.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import FastAVError
from .models.registry import family_for_model_type

LLM_PREFIXES = ("model.layers.", "model.embed_tokens.", "model.norm.", "lm_head.")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


@dataclass
class LoadedCheckpoint:
    model: torch.nn.Module  # transformers Qwen2ForCausalLM
    family: str
    model_type: str
    skipped: dict[str, int] = field(default_factory=dict)  # key prefix -> tensors skipped

    def describe_skipped(self) -> str:
        if not self.skipped:
            return "no non-decoder weights"
        return "skipped " + ", ".join(f"{prefix}.* ({n} tensors)" for prefix, n in sorted(self.skipped.items()))


def read_config(directory: Path) -> dict:
    path = directory / "config.json"
    if not directory.is_dir():
        raise FastAVError(f"checkpoint directory {directory} does not exist: pass a local snapshot directory")
    if not path.is_file():
        raise FastAVError(f"{directory} has no config.json: pass a Hugging Face snapshot directory")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise FastAVError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None


def checkpoint_family(directory: str | Path) -> tuple[str, str]:
    """(family, model_type) of a checkpoint directory, from its config.json."""
    config = read_config(Path(directory))
    model_type = config.get("model_type", "")
    family = family_for_model_type(model_type)
    if family is None:
        raise FastAVError(
            f"unsupported model_type {model_type!r} in {directory}/config.json: "
            "fastav-export loads qwen2, videollama2_qwen2 and video_salmonn_2 / llava_qwen checkpoints"
        )
    return family, model_type


def safetensors_files(directory: Path) -> list[Path]:
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise FastAVError(f"{index} is not a valid safetensors index (no weight_map): re-download the snapshot") from None
        files = sorted({directory / name for name in weight_map.values()})
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise FastAVError(f"{index.name} names missing shards {missing[:3]}: re-download the snapshot")
        return files
    files = sorted(directory.glob("*.safetensors"))
    if files:
        return files
    pickles = sorted(p.name for p in directory.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise FastAVError(
            f"{directory} holds only pickle weights ({', '.join(pickles[:3])}), which fastav-export refuses to load: "
            "convert them to safetensors (e.g. save_pretrained(..., safe_serialization=True)) and try again"
        )
    raise FastAVError(f"{directory} has no *.safetensors weights")


def qwen2_config_from(config: dict):
    """A Qwen2Config from the decoder keys of a (possibly multimodal) config.json."""
    from transformers import Qwen2Config

    known = set(Qwen2Config().to_dict()) | {"rope_theta", "rope_scaling", "head_dim"}
    decoder_keys = {k: v for k, v in config.items() if k in known and k not in ("model_type", "architectures")}
    return Qwen2Config(**decoder_keys)


def _component(key: str) -> str:
    """The module a skipped tensor belongs to: `model.mm_projector`, `speech_encoder`, ..."""
    parts = key.split(".")
    return ".".join(parts[:2]) if parts[0] == "model" else parts[0]


def load_qwen2_checkpoint(directory: str | Path, dtype=torch.float32, device="cpu",
                          attn_implementation: str = "sdpa") -> LoadedCheckpoint:
    """Read config.json and the decoder's safetensors weights into a Qwen2ForCausalLM."""
    from safetensors import safe_open

    from .torch_backend.model_factory import make_qwen2

    directory = Path(directory)
    family, model_type = checkpoint_family(directory)
    config = qwen2_config_from(read_config(directory))
    config._attn_implementation = attn_implementation

    state, skipped = {}, Counter()
    for file in safetensors_files(directory):
        try:
            with safe_open(str(file), framework="pt") as handle:
                for key in handle.keys():
                    if key.startswith(LLM_PREFIXES):
                        state[key] = handle.get_tensor(key)
                    else:
                        skipped[_component(key)] += 1
        except Exception as exc:  # safetensors raises its own error types for corrupt files
            raise FastAVError(f"cannot read {file.name}: {exc}; re-download or re-save the checkpoint") from None

    model = make_qwen2(config, dtype=torch.float32, device="cpu")
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if config.tie_word_embeddings:  # lm_head is the embedding table; a stored copy is ignored
        expected.pop("lm_head.weight")
        state.pop("lm_head.weight", None)
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise FastAVError(f"{directory} does not hold a complete Qwen2 decoder ({what}): check the snapshot")
    for key, tensor in state.items():
        if tuple(tensor.shape) != expected[key]:
            raise FastAVError(f"{directory}: {key} has shape {list(tensor.shape)} but config.json implies "
                              f"{list(expected[key])}: the config does not match the weights")
    model.load_state_dict(state, strict=not config.tie_word_embeddings)
    if config.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    return LoadedCheckpoint(model.to(device=device, dtype=dtype).eval(), family, model_type, dict(skipped))

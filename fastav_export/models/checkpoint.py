"""Load a Qwen2 decoder from a local Hugging Face snapshot directory.

Accepted formats (the family is read from config.json `model_type`):
* plain `Qwen2ForCausalLM` (`qwen2`);
* VideoLLaMA2 (`videollama2_qwen2`) and video-SALMONN 2 (`video_salmonn_2`): the same LLM
  keys plus encoder/projector weights (`model.vision_tower.*`, `model.mm_projector*`,
  `model.audio_tower.*`, `speech_encoder.*`, `speech_Qformer.*`, ...), which are skipped and reported.

The decoder is read from safetensors (`model.safetensors`, or the shards named by
`model.safetensors.index.json`); where no safetensors file holds it, from `torch.save` files
(`bin_weights.py`: the shards of `pytorch_model.bin.index.json`, `pytorch_model.bin`, or
video-SALMONN 2's training output `all_parameters.bin`), read with torch.load(weights_only=True)
only. Other pickle files (`*.pt`, `*.pth`, `*.ckpt`, `*.pkl`) are refused. Keys are canonicalised
(DeepSpeed's `module.`, PEFT's `base_model.model.` and `.base_layer.`) and LoRA pairs merged into
their weights (`state_keys.py`). The media path's `.bin` parts (VideoLLaMA2-AV's audio tower and
projector) are read elsewhere, also weights only (`weights_only.py`). Nothing is downloaded and
no remote code runs.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..contract.dims import DecoderDims
from ..errors import FastAVError
from ..user_io.json_input import parse_json, read_json_file
from ..user_io.memory import check_fits
from .bin_weights import decoder_bin_files, read_bin_decoder
from .registry import checkpoint_types, family_for_model_type
from .snapshot_files import (  # noqa: F401  (LLM_PREFIXES, index_shards: part of this module's API)
    LLM_PREFIXES,
    duplicate_key,
    file_names,
    index_shards,
    skipped_component,
)
from .state_keys import canonical_key, is_lora_key, merge_lora, read_adapter_config

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# Bytes per element of safetensors dtypes (for the memory estimate; others count as 4).
SAFETENSORS_ITEMSIZE = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2,
                        "I16": 2, "U16": 2, "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
MAX_SAFETENSORS_HEADER = 100 * 2**20  # the format's own limit


@dataclass
class LoadedCheckpoint:
    model: torch.nn.Module  # transformers Qwen2ForCausalLM
    family: str
    model_type: str
    skipped: dict[str, int] = field(default_factory=dict)  # key prefix -> tensors skipped
    # Where the decoder came from: "model.safetensors", "all_parameters.bin, read with
    # torch.load(weights_only=True); LoRA merged into 84 modules (alpha/r = 2)", ...
    source: str = ""

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
    config = read_json_file(path, "checkpoint config")
    if not isinstance(config, dict):
        raise FastAVError(f"{path} holds a JSON {type(config).__name__}, not an object of model settings: "
                          "pass a Hugging Face snapshot directory")
    return config


def checkpoint_family(directory: str | Path) -> tuple[str, str]:
    """(family, model_type) of a checkpoint directory, from its config.json."""
    config = read_config(Path(directory))
    model_type = config.get("model_type", "")
    family = family_for_model_type(model_type) if isinstance(model_type, str) else None
    if family is None:
        raise FastAVError(
            f"unsupported model_type {model_type!r} in {directory}/config.json: "
            f"fastav-export loads {', '.join(checkpoint_types())} checkpoints"
        )
    return family, model_type


def safetensors_files(directory: Path, required: bool = True) -> list[Path]:
    """The snapshot's safetensors files (the index's shards, else every *.safetensors).

    None is one FastAVError line, or [] with required=False.
    """
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        return index_shards(index, "safetensors index")
    files = sorted(directory.glob("*.safetensors"))
    if files or not required:
        return files
    pickles = sorted(p.name for p in directory.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise FastAVError(
            f"{directory} has no safetensors weights, only pickle files ({', '.join(pickles[:3])}), and fastav-export "
            "reads pickled weights only from a decoder's pytorch_model.bin (or its index's shards) or "
            "all_parameters.bin, with torch.load(weights_only=True): convert them to safetensors "
            "(e.g. save_pretrained(..., safe_serialization=True)) and try again"
        )
    raise FastAVError(f"{directory} has no *.safetensors weights")


REQUIRED_DIMS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


def qwen2_config_from(config: dict, where: str = "the checkpoint's config.json"):
    """A Qwen2Config from the decoder keys of a (possibly multimodal) config.json, its dimensions checked.

    where: the file, for error messages. Missing, non-integer, negative or inconsistent
    dimensions are one FastAVError line (they size every allocation that follows).
    """
    from transformers import Qwen2Config

    missing = [key for key in REQUIRED_DIMS if key not in config]
    if missing:
        raise FastAVError(f"{where} lacks the decoder settings {missing}: pass the snapshot of a Qwen2-based model")
    known = set(Qwen2Config().to_dict()) | {"rope_theta", "rope_scaling", "head_dim"}
    decoder_keys = {k: v for k, v in config.items() if k in known and k not in ("model_type", "architectures")}
    for key in (*REQUIRED_DIMS, "num_key_value_heads", "max_position_embeddings", "head_dim"):
        value = decoder_keys.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise FastAVError(f"{where}: {key} is {value!r}, expected an integer >= 1")
    try:
        qwen2 = Qwen2Config(**decoder_keys)
    except Exception as exc:  # transformers validates fields with its own exception types
        raise FastAVError(f"{where} is not a Qwen2 config transformers accepts: "
                          f"{str(exc).strip().splitlines()[0]}") from None
    DecoderDims.from_qwen2_config(qwen2).check(where)
    return qwen2


def safetensors_shapes(file: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """key -> (dtype, shape) from a .safetensors file's header, without reading any tensor.

    The format: an 8-byte little-endian header length, then that many bytes of JSON.
    """
    try:
        with open(file, "rb") as handle:
            prefix = handle.read(8)
            (length,) = struct.unpack("<Q", prefix) if len(prefix) == 8 else (-1,)
            if not 0 < length <= min(MAX_SAFETENSORS_HEADER, file.stat().st_size - 8):
                raise FastAVError(f"{file.name} is not a safetensors file (bad header length): "
                                  "re-download or re-save the checkpoint")
            header = parse_json(handle.read(length), f"the header of {file.name}")
    except OSError as exc:
        raise FastAVError(f"cannot read {file}: {exc.strerror or exc}") from None
    if not isinstance(header, dict):
        raise FastAVError(f"{file.name} has a malformed safetensors header: re-download or re-save the checkpoint")
    shapes = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        dtype = entry.get("dtype") if isinstance(entry, dict) else None
        if not isinstance(dtype, str) or not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise FastAVError(f"{file.name} has a malformed header entry for {key!r}: "
                              "re-download or re-save the checkpoint")
        shapes[key] = (dtype, tuple(shape))
    return shapes


def _expected_shapes(config) -> dict[str, tuple[int, ...]]:
    """Every decoder parameter's shape, from a model built on the meta device (no memory)."""
    from transformers import Qwen2ForCausalLM

    with torch.device("meta"):
        model = Qwen2ForCausalLM(config)
    return {key: tuple(tensor.shape) for key, tensor in model.state_dict().items()}


def _check_decoder(directory: Path, shapes: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]]):
    """Missing, unexpected or mis-shaped decoder tensors (LoRA tensors aside: merge_lora checks those)."""
    stored = {key: shape for key, shape in shapes.items() if not is_lora_key(key)}
    missing, unexpected = sorted(expected.keys() - stored.keys()), sorted(stored.keys() - expected.keys())
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise FastAVError(f"{directory} does not hold a complete Qwen2 decoder ({what}): check the snapshot")
    for key, shape in stored.items():
        if shape != expected[key]:
            raise FastAVError(f"{directory}: {key} has shape {list(shape)} but config.json implies "
                              f"{list(expected[key])}: the config does not match the weights")


def _read_safetensors(directory: Path, headers: dict, expected: dict, tied: bool, parameters: int, what: str):
    """(state, skipped, source) of the decoder in the safetensors files whose `headers` are given."""
    from safetensors import safe_open

    stored, where, skipped = {}, {}, Counter()  # canonical key -> (dtype, shape), (file, stored key)
    for file, shapes in headers.items():
        for key, entry in shapes.items():
            name = canonical_key(key)
            if not name.startswith(LLM_PREFIXES):
                skipped[skipped_component(name)] += 1
            elif name in where:
                raise duplicate_key(str(directory), name)
            else:
                stored[name], where[name] = entry, (file, key)
    if tied:  # a stored lm_head copy is ignored
        stored.pop("lm_head.weight", None)
        where.pop("lm_head.weight", None)
    _check_decoder(directory, {key: shape for key, (_, shape) in stored.items()}, expected)
    read = sum(torch.Size(shape).numel() * SAFETENSORS_ITEMSIZE.get(kind, 4) for kind, shape in stored.values())
    # The model is built in fp32 while the read tensors are still held, then cast.
    check_fits(parameters * 4 + read, what, "use a machine with more memory")

    state, files = {}, sorted({file for file, _ in where.values()})
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as handle:
                for name, (holder, key) in where.items():
                    if holder == file:
                        state[name] = handle.get_tensor(key)
        except Exception as exc:  # safetensors raises its own error types for corrupt files
            raise FastAVError(f"cannot read {file.name}: {exc}; re-download or re-save the checkpoint") from None
    return state, skipped, file_names(files)


def load_qwen2_checkpoint(directory: str | Path, dtype=torch.float32, device="cpu",
                          attn_implementation: str = "sdpa") -> LoadedCheckpoint:
    """Read config.json and the decoder's weights into a Qwen2ForCausalLM.

    From safetensors, shapes are checked against config.json from the headers, and the memory
    the model needs against what is available, before any weight is read or allocated; from
    `.bin` files, the memory from the file sizes before reading and the shapes before the
    model is built. LoRA pairs are merged into their weights.
    """
    from .model_factory import make_qwen2

    directory = Path(directory)
    family, model_type = checkpoint_family(directory)
    config = qwen2_config_from(read_config(directory), f"{directory}/config.json")
    config._attn_implementation = attn_implementation
    expected, tied = _expected_shapes(config), config.tie_word_embeddings
    if tied:  # lm_head is the embedding table; a stored copy is ignored
        expected.pop("lm_head.weight")
    parameters = sum(torch.Size(shape).numel() for shape in expected.values())
    what = f"the decoder of {directory} ({parameters / 1e9:.2f} B parameters)"

    headers = {file: safetensors_shapes(file) for file in safetensors_files(directory, required=False)}
    keys = [canonical_key(key) for shapes in headers.values() for key in shapes]
    bins = [] if any(key.startswith(LLM_PREFIXES) for key in keys) else decoder_bin_files(directory)
    if bins:
        # torch.load reads whole files; the model is built in fp32 while they are still held.
        check_fits(parameters * 4 + sum(file.stat().st_size for file in bins), what, "use a machine with more memory")
        state, skipped = read_bin_decoder(bins)
        skipped.update(skipped_component(key) for key in keys)  # safetensors of the encoders only
        if tied:
            state.pop("lm_head.weight", None)
        _check_decoder(directory, {key: tuple(tensor.shape) for key, tensor in state.items()}, expected)
        source = f"{file_names(bins)}, read with torch.load(weights_only=True)"
    else:
        if not headers:
            safetensors_files(directory)  # raises: no weights at all, or only pickle files it does not read
        state, skipped, source = _read_safetensors(directory, headers, expected, tied, parameters, what)
    state, merged = merge_lora(state, directory)
    if merged:
        source += f"; LoRA merged into {merged} modules ({read_adapter_config(directory).describe()})"

    model = make_qwen2(config, dtype=torch.float32, device="cpu")
    model.load_state_dict(state, strict=not tied)
    if tied:
        model.lm_head.weight = model.model.embed_tokens.weight
    return LoadedCheckpoint(model.to(device=device, dtype=dtype).eval(), family, model_type, dict(skipped), source)

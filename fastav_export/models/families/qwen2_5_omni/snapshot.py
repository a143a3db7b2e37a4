"""Qwen2.5-Omni's thinker from a local snapshot in the released format.

The released snapshots (Qwen/Qwen2.5-Omni-7B, -3B) have `model_type: "qwen2_5_omni"` with the
thinker's settings under `thinker_config`, and weights for the whole model: `thinker.*` (the text
decoder, `visual.*` and `audio_tower.*` inside it), `talker.*` and `token2wav.*` (speech output).
Only the thinker is read; the talker's and token2wav's tensors are counted and reported, never
loaded. A thinker-only snapshot (`model_type: "qwen2_5_omni_thinker"`, keys without the prefix,
as `Qwen2_5OmniThinkerForConditionalGeneration.save_pretrained` writes) loads too.

Weights come from safetensors (one file or the index's shards), else from `pytorch_model.bin`
(or its index's shards) read with torch.load(weights_only=True). No remote code runs; the config
is read by transformers' own `Qwen2_5OmniThinkerConfig`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ....errors import FastAVError
from ....user_io.memory import check_fits, format_bytes
from ...bin_weights import decoder_bin_files
from ...checkpoint import read_config, safetensors_files, safetensors_shapes
from ...snapshot_parts import Part, load_into
from ...weights_only import HOW, load_weights_only
from .spec import OMNI_MODEL_TYPE, THINKER_MODEL_TYPE  # noqa: F401  (this module's API too)

THINKER_PREFIX = "thinker."
SPEECH_PARTS = ("talker.", "token2wav.")  # speech output: out of scope, skipped
# The released key names (the thinker's own, below any `thinker.`) -> transformers 5's module names:
# the towers moved under `model.`, the text decoder's `model.*` under `model.language_model.`.
_TOWERS = ("audio_tower.", "visual.")
_TEXT_MODEL, _MODULE_TEXT_MODEL = "model.", "model.language_model."


def module_key(released: str) -> str:
    """The transformers module name of a released thinker key (`model.layers.0...` ->
    `model.language_model.layers.0...`, `visual.blocks...` -> `model.visual.blocks...`)."""
    if released.startswith(_TOWERS):
        return "model." + released
    if released.startswith(_TEXT_MODEL):
        return _MODULE_TEXT_MODEL + released[len(_TEXT_MODEL):]
    return released


def released_key(module: str) -> str:
    """The released name of a transformers module key (the inverse of `module_key`)."""
    if module.startswith(_MODULE_TEXT_MODEL):
        return _TEXT_MODEL + module[len(_MODULE_TEXT_MODEL):]
    if module.startswith(tuple("model." + tower for tower in _TOWERS)):
        return module[len("model."):]
    return module


def thinker_config_dict(config: dict, where: str) -> dict:
    """The thinker's settings of a snapshot's config.json (`config`, read from `where`)."""
    model_type = config.get("model_type")
    if model_type == THINKER_MODEL_TYPE:
        return config
    thinker = config.get("thinker_config")
    if model_type != OMNI_MODEL_TYPE or not isinstance(thinker, dict):
        raise FastAVError(f"{where} is not a Qwen2.5-Omni config (model_type {model_type!r} without a "
                          "thinker_config object): pass the snapshot directory of Qwen2.5-Omni")
    return thinker


def thinker_config(config: dict, where: str):
    """transformers' `Qwen2_5OmniThinkerConfig` of the snapshot's config.json."""
    from transformers.models.qwen2_5_omni.configuration_qwen2_5_omni import Qwen2_5OmniThinkerConfig

    settings = {k: v for k, v in thinker_config_dict(config, where).items()
                if k not in ("architectures", "model_type", "transformers_version")}
    try:
        return Qwen2_5OmniThinkerConfig(**settings)
    except (TypeError, ValueError, KeyError) as exc:
        raise FastAVError(f"{where}: the thinker's settings are malformed ({exc}): check the snapshot") from None


@dataclass
class LoadedThinker:
    """thinker: transformers' Qwen2_5OmniThinkerForConditionalGeneration with the snapshot's weights;
    sources: the loading report's lines; skipped: key prefix -> tensors not loaded."""

    thinker: torch.nn.Module
    sources: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)


def _weight_files(directory: Path) -> tuple[list[Path], str]:
    files = safetensors_files(directory, required=False)
    if files:
        return files, "safetensors"
    files = [f for f in decoder_bin_files(directory) if f.name != "all_parameters.bin"]
    if files:
        return files, "bin"
    raise FastAVError(f"{directory} has no model.safetensors (or its index) and no pytorch_model.bin: "
                      "pass a complete Qwen2.5-Omni snapshot")


def _read_state(files: list[Path], kind: str) -> dict[str, torch.Tensor]:
    if kind == "bin":
        state = {}
        for file in files:
            state.update(load_weights_only(file))
        return state
    from safetensors import safe_open

    state = {}
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as handle:
                for key in handle.keys():
                    if not key.startswith(SPEECH_PARTS):
                        state[key] = handle.get_tensor(key)
        except FastAVError:
            raise
        except Exception as exc:  # safetensors raises its own error types for corrupt files
            raise FastAVError(f"cannot read {file.name}: {exc}; re-download the snapshot") from None
    return state


def load_thinker(directory: str | Path, dtype=torch.float32) -> LoadedThinker:
    """The snapshot's thinker (strict: a missing, unexpected or misshapen tensor is one line)."""
    from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniThinkerForConditionalGeneration

    directory = Path(directory)
    where = f"{directory}/config.json"
    config = thinker_config(read_config(directory), where)
    files, kind = _weight_files(directory)
    keys = [k for f in files for k in safetensors_shapes(f)] if kind == "safetensors" else None
    nbytes = sum(f.stat().st_size for f in files)
    check_fits(nbytes, f"reading {directory}'s weights ({format_bytes(nbytes)})",
               "free memory or use a machine with more")
    state = _read_state(files, kind)
    skipped = Counter()
    for key in list(keys if keys is not None else state):
        if key.startswith(SPEECH_PARTS):
            skipped[key.split(".", 1)[0]] += 1
            state.pop(key, None)
    prefixed = any(k.startswith(THINKER_PREFIX) for k in state)
    if prefixed:
        state = {k[len(THINKER_PREFIX):]: v for k, v in state.items() if k.startswith(THINKER_PREFIX)}
    state = {module_key(k): v for k, v in state.items()}
    config._attn_implementation = "sdpa"
    with torch.device("meta"):  # no init cost: every persistent tensor is overwritten below
        thinker = Qwen2_5OmniThinkerForConditionalGeneration(config)
    tied = getattr(config.text_config, "tie_word_embeddings", False)
    if tied and "lm_head.weight" not in state and _MODULE_TEXT_MODEL + "embed_tokens.weight" in state:
        state["lm_head.weight"] = state[_MODULE_TEXT_MODEL + "embed_tokens.weight"]
    thinker = thinker.to_empty(device="cpu")
    load_into(thinker, Part(state, ""), "thinker", directory)  # strict: names and shapes, one line each
    thinker = _rebuild_buffers(thinker).to(dtype).eval()
    how = ", ".join(f.name for f in files) + ("" if kind == "safetensors" else f" ({HOW})")
    sources = {"thinker": f"{len(state)} tensors {THINKER_PREFIX if prefixed else ''}* from {how}"}
    if skipped:
        sources["speech output"] = "skipped (text out only): " + ", ".join(
            f"{name}.* ({n} tensors)" for name, n in sorted(skipped.items()))
    return LoadedThinker(thinker, sources, dict(skipped))


def _rebuild_buffers(thinker):
    """The tables that are not saved (non-persistent buffers: rotary frequencies, the audio tower's sinusoids)
    are computed again from the config, as the modules' constructors compute them."""
    model, visual, audio = thinker.model.language_model, thinker.model.visual, thinker.model.audio_tower
    model.rotary_emb = type(model.rotary_emb)(config=model.config)
    visual.rotary_pos_emb = type(visual.rotary_pos_emb)(visual.config)
    table = audio.positional_embedding
    audio.positional_embedding = type(table)(table.length, table.channels, table.max_timescale)
    return thinker

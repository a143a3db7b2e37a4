"""video-SALMONN 2's encoders in front of the decoder, and where their weights come from.

    vision: pixel_values [F, 3, S, S] -> SigLIP (26 of 27 layers) -> mlp2x_gelu -> 2 x 2 pool
            -> newline per row -> [F * 182, D]          (salmonn_vision.py)
    audio:  Whisper features [C, 128, 3000] -> Whisper-large-v3 encoder -> ln_speech -> window
            Q-Former -> speech_llama_proj -> final_linear -> + chunk position -> [C * 60, D]
                                                         (salmonn_audio.py)

A snapshot keeps the vision projector and newline under `model.` and the audio modules at
the top level (`speech_encoder.*`, `speech_Qformer.*`, ...), in safetensors shards or in
`.bin` files (`pytorch_model.bin`, its shards, or the training script's `all_parameters.bin`
with `module.` / `base_model.model.` prefixes), read with torch.load(weights_only=True) only.
The SigLIP weights come from the shards, else from the local directory `mm_vision_tower` names
or `--vision-tower DIR` (a full SigLIP snapshot, whose last layer and head are dropped, as
upstream deletes them). The Whisper architecture is whisper-large-v3's: the checkpoint's
config does not name it; the tiny snapshots the tests write carry theirs in config.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ....errors import FastAVError
from ...encoders import siglip_tower
from ...encoders.siglip_snapshot import siglip_config, tower_directory
from . import salmonn_audio, salmonn_vision
from ...seeded_weights import draw_weights
from ...snapshot_parts import Part, has_keys, load_into, missing_part, read_part
from .spec import DEFAULT_OPTIONS, SalmonnOptions

VISION_TOWER, VISION_PROJECTOR, AUDIO_ENCODER = "vision tower", "vision projector and newline", "audio encoder"
# config.json key with the tiny test snapshots' audio encoder settings (SalmonnAudioConfig.to_json);
# real snapshots have none and get whisper-large-v3 with the 2-layer Q-Former.
AUDIO_CONFIG_KEY = "fastav_salmonn_audio"


@dataclass(frozen=True)
class SalmonnShapes:
    """The encoders' architecture: the kept SigLIP layers, the audio encoder, the decoder width, the options."""

    siglip: object  # transformers SiglipVisionConfig, last layer already removed
    audio: salmonn_audio.SalmonnAudioConfig
    hidden: int
    options: SalmonnOptions = DEFAULT_OPTIONS

    def build(self) -> tuple[salmonn_vision.SalmonnVisionEncoder, salmonn_audio.SalmonnAudioEncoder]:
        """Both encoders, fp32, weights uninitialised (to be loaded or drawn)."""
        audio_config = replace(self.audio, second_per_window=self.options.window_seconds,
                               use_final_linear=self.options.use_final_linear)
        vision = salmonn_vision.SalmonnVisionEncoder(self.siglip, self.hidden, self.options.pool_mode)
        return vision.eval(), salmonn_audio.SalmonnAudioEncoder(audio_config).eval()


def tiny_shapes(hidden: int, options: SalmonnOptions = DEFAULT_OPTIONS) -> SalmonnShapes:
    return SalmonnShapes(salmonn_vision.tiny_siglip_kept_config(),
                         salmonn_audio.tiny_salmonn_audio_config(llm_hidden=hidden), hidden, options)


def real_shapes(hidden: int, options: SalmonnOptions = DEFAULT_OPTIONS) -> SalmonnShapes:
    return SalmonnShapes(salmonn_vision.real_siglip_kept_config(),
                         salmonn_audio.real_salmonn_audio_config(llm_hidden=hidden), hidden, options)


def random_encoders(shapes: SalmonnShapes, seed: int = 0, std: float = 0.1):
    """(vision, audio) with seeded N(0, std) weights (`seeded_weights.draw_weights`)."""
    vision, audio = shapes.build()
    draw_weights((vision, audio), seed, std)
    return vision, audio


@dataclass
class LoadedEncoders:
    vision: salmonn_vision.SalmonnVisionEncoder
    audio: salmonn_audio.SalmonnAudioEncoder
    sources: dict[str, str] = field(default_factory=dict)  # part -> where its weights came from


def _audio_config(directory: Path, config: dict, hidden: int) -> salmonn_audio.SalmonnAudioConfig:
    settings = config.get(AUDIO_CONFIG_KEY)
    if settings is None:
        return salmonn_audio.real_salmonn_audio_config(llm_hidden=hidden)
    try:
        return salmonn_audio.SalmonnAudioConfig.from_json(settings)
    except (TypeError, KeyError, ValueError) as exc:
        raise FastAVError(f"{directory}/config.json: {AUDIO_CONFIG_KEY} is not an audio encoder config "
                          f"({exc})") from None


def _check_vision_settings(directory: Path, config: dict) -> None:
    """Refuse a config whose vision settings differ from the ones this path reproduces."""
    projector = config.get("mm_projector_type", "mlp2x_gelu")
    if projector != "mlp2x_gelu":
        raise FastAVError(f"{directory}/config.json has mm_projector_type {projector!r}: video-SALMONN 2's path "
                          "builds mlp2x_gelu only")
    stride = config.get("mm_spatial_pool_stride", 2)
    if stride != 2:
        raise FastAVError(f"{directory}/config.json has mm_spatial_pool_stride {stride!r}: video-SALMONN 2's path "
                          "pools 2 x 2 only")


class _BinSnapshot:
    """The snapshot's `.bin` weights, read once (weights only) with canonical keys, for parts not in its
    safetensors."""

    def __init__(self, directory: Path):
        self.directory, self._state, self._names = directory, None, ""

    def _load(self) -> dict:
        from ...bin_weights import decoder_bin_files
        from ...state_keys import canonical_key
        from ...weights_only import load_weights_only

        if self._state is None:
            files = decoder_bin_files(self.directory)
            self._state, self._names = {}, ", ".join(f.name for f in files)
            for file in files:
                self._state.update({canonical_key(key): value for key, value in load_weights_only(file).items()})
        return self._state

    def has(self, prefix: str) -> bool:
        return any(key.startswith(prefix) for key in self._load())

    def part(self, name: str, prefix: str) -> Part:
        from ...weights_only import HOW

        state = {key[len(prefix):]: value for key, value in self._load().items() if key.startswith(prefix)}
        if not state:
            raise missing_part(self.directory, name, prefix, "pytorch_model.bin or all_parameters.bin")
        return Part(state, f"{len(state)} tensors {prefix}* from {self._names} ({HOW})")


def _read(directory: Path, bins: _BinSnapshot, name: str, prefix: str) -> Part:
    if has_keys(directory, prefix):
        return read_part(directory, name, prefix)
    return bins.part(name, prefix)


def load_encoders(directory: str | Path, decoder_hidden: int, options: SalmonnOptions = DEFAULT_OPTIONS,
                  vision_tower: str | Path | None = None) -> LoadedEncoders:
    """video-SALMONN 2's encoders from a local snapshot (and optionally a separate SigLIP snapshot).

    A part the media path needs and the snapshot lacks is one FastAVError line naming it.
    """
    from ...checkpoint import read_config

    directory = Path(directory)
    vision_tower = Path(vision_tower) if vision_tower is not None else None
    config = read_config(directory)
    _check_vision_settings(directory, config)
    full_siglip = siglip_config(directory, config, vision_tower)
    shapes = SalmonnShapes(salmonn_vision.kept_layers_config(full_siglip),
                           _audio_config(directory, config, decoder_hidden), decoder_hidden, options)
    vision, audio = shapes.build()
    bins, sources = _BinSnapshot(directory), {}

    in_snapshot = has_keys(directory, siglip_tower.CHECKPOINT_PREFIX) or bins.has(siglip_tower.CHECKPOINT_PREFIX)
    tower_dir = tower_directory(directory, config, vision_tower, in_snapshot)
    if tower_dir is not None:
        part = read_part(tower_dir, VISION_TOWER, "vision_model.")
        # A full SigLIP model: upstream deletes its last layer and replaces its head.
        dropped = f"encoder.layers.{full_siglip.num_hidden_layers - 1}."
        state = {f"vision_tower.vision_model.{key}": value for key, value in part.state.items()
                 if not key.startswith((dropped, "head."))}
        part = Part(state, f"{part.source} in {tower_dir} (last layer and head dropped)")
    else:
        part = _read(directory, bins, VISION_TOWER, siglip_tower.CHECKPOINT_PREFIX)
    sources[VISION_TOWER] = part.source + load_into(vision.tower, part, VISION_TOWER, directory)

    state, projector_sources = {}, []
    for prefix in salmonn_vision.PROJECTOR_KEYS:
        part = _read(directory, bins, VISION_PROJECTOR, prefix)
        state.update({(prefix + key)[len(salmonn_vision.PROJECTOR_PREFIX):]: value for key, value in part.state.items()})
        projector_sources.append(part.source)
    ignored = load_into(vision.projector, Part(state, ""), VISION_PROJECTOR, directory)
    sources[VISION_PROJECTOR] = "; ".join(projector_sources) + ignored

    audio_state, audio_sources = {}, []
    for prefix in salmonn_audio.CHECKPOINT_PREFIXES:
        if prefix == "final_linear." and not options.use_final_linear:
            continue
        if prefix == "final_linear." and not (has_keys(directory, prefix) or bins.has(prefix)):
            raise FastAVError(f"{directory} has no final_linear.* weights, which the public scripts use "
                              "(use_final_linear): pass --no-final-linear for a checkpoint trained without it")
        part = _read(directory, bins, AUDIO_ENCODER, prefix)
        audio_state.update({prefix + key: value for key, value in part.state.items()})
        audio_sources.append(part.source)
    ignored = load_into(audio, Part(audio_state, ""), AUDIO_ENCODER, directory)
    sources[AUDIO_ENCODER] = "; ".join(audio_sources) + ignored
    return LoadedEncoders(vision.eval(), audio.eval(), sources)


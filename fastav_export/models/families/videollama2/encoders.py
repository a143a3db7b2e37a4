"""VideoLLaMA2-AV's encoders in front of the decoder, and where their weights come from.

    vision: pixel_values [F, 3, S, S] -> SigLIP (penultimate layer) -> STC connector -> [F/2 * h' * w', D]
    audio:  fbank [1, T, M] -> BEATs -> mm_projector_a -> [(T // P) * (M // P), D]

A real snapshot (VideoLLaMA2.1-7B-AV) holds the decoder, the vision projector and usually the
vision tower in its safetensors shards, and the audio tower and its projector in
`audio_tower.bin` / `mm_projector_a.bin` (read with torch.load(weights_only=True) only). Its
config.json names the vision tower by hub id (`mm_vision_tower`); a snapshot without the
tower's weights needs `--vision-tower DIR`, a local SigLIP snapshot. The tiny seed model gets
tiny encoders of the same structure with seeded random weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ....errors import FastAVError
from ...encoders import siglip_tower
from ...encoders.siglip_snapshot import siglip_config, tower_directory
from . import audio_projector, beats, stc_connector
from ...seeded_weights import draw_weights
from ...snapshot_parts import Part, check_part, has_keys, load_into, read_part

VISION_TOWER, VISION_PROJECTOR, AUDIO_TOWER, AUDIO_PROJECTOR = (
    "vision tower", "vision projector", "audio tower", "audio projector")


class VisionEncoder(nn.Module):
    """forward(pixel_values [F, 3, S, S]) -> [Tv, D]: one clip's video rows, time-major."""

    def __init__(self, tower: siglip_tower.SiglipTower, projector: stc_connector.STCConnectorV35):
        super().__init__()
        self.tower, self.projector = tower, projector

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.projector(self.tower(pixel_values))

    def for_export(self) -> nn.Module:
        """The same computation holding only the weights it reads (the tower's unused last layer dropped)."""
        return VisionEncoder(self.tower.truncated(), self.projector)


class AudioEncoder(nn.Module):
    """forward(fbank [1, T, M]) -> [Ta, D]: the clip's audio rows, time-major."""

    def __init__(self, tower: beats.BEATs, projector: audio_projector.AudioProjector):
        super().__init__()
        self.tower, self.projector = tower, projector

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        return self.projector(self.tower(fbank))[0]


@dataclass(frozen=True)
class EncoderShapes:
    """The encoders' architecture: SigLIP's config, the STC connector's, BEATs', and the decoder width."""

    siglip: object  # transformers SiglipVisionConfig
    stc: stc_connector.STCConfig
    beats: beats.BEATsConfig
    hidden: int
    select_layer: int = siglip_tower.DEFAULT_SELECT_LAYER

    def build(self) -> tuple[VisionEncoder, AudioEncoder]:
        """Both encoders, fp32, weights uninitialised (to be loaded or drawn)."""
        vision = VisionEncoder(siglip_tower.SiglipTower(self.siglip, self.select_layer),
                               stc_connector.STCConnectorV35.from_config(self.stc))
        audio = AudioEncoder(beats.BEATs(self.beats),
                             audio_projector.AudioProjector(self.beats.encoder_embed_dim, self.hidden))
        return vision.eval(), audio.eval()


def tiny_shapes(hidden: int) -> EncoderShapes:
    """Tiny encoders for a `hidden`-wide decoder (videollama2-tiny: 64)."""
    return EncoderShapes(siglip_tower.tiny_siglip_config(),
                         stc_connector.STCConfig(encoder_hidden=siglip_tower.tiny_siglip_config().hidden_size,
                                                 hidden=hidden),
                         beats.tiny_beats_config(), hidden)


def real_shapes(hidden: int) -> EncoderShapes:
    return EncoderShapes(siglip_tower.real_siglip_config(), stc_connector.STCConfig(1152, hidden),
                         beats.real_beats_config(), hidden)


def random_encoders(shapes: EncoderShapes, seed: int = 0, std: float = 0.1) -> tuple[VisionEncoder, AudioEncoder]:
    """Encoders with seeded N(0, std) weights (`seeded_weights.draw_weights`)."""
    vision, audio = shapes.build()
    draw_weights((vision, audio), seed, std)
    return vision, audio


@dataclass
class LoadedEncoders:
    vision: VisionEncoder
    audio: AudioEncoder
    sources: dict[str, str] = field(default_factory=dict)  # part -> where its weights came from


# config.json key with BEATs' settings. VideoLLaMA2's snapshots have none (the tower is always BEATs'
# default configuration); the tiny snapshots the tests write carry their tiny tower's settings here.
BEATS_CONFIG_KEY = "fastav_beats_config"


def _beats_config(directory: Path, config: dict) -> beats.BEATsConfig:
    settings = config.get(BEATS_CONFIG_KEY)
    if settings is None:
        return beats.real_beats_config()
    try:
        return beats.BEATsConfig(**settings)
    except TypeError as exc:
        raise FastAVError(f"{directory}/config.json: {BEATS_CONFIG_KEY} is not a BEATs config ({exc})") from None


def _check_parts_present(directory: Path) -> None:
    """Refuse a snapshot that lacks a projector or the audio tower before reading any weight."""
    for name, prefix, bin_file in ((VISION_PROJECTOR, stc_connector.CHECKPOINT_PREFIX, None),
                                   (AUDIO_TOWER, beats.CHECKPOINT_PREFIX, "audio_tower.bin"),
                                   (AUDIO_PROJECTOR, audio_projector.CHECKPOINT_PREFIX, "mm_projector_a.bin")):
        check_part(directory, name, prefix, bin_file)


def load_encoders(directory: str | Path, decoder_hidden: int, vision_tower: str | Path | None = None) -> LoadedEncoders:
    """VideoLLaMA2-AV's encoders from a local snapshot (and optionally a separate SigLIP snapshot).

    A part the media path needs and the snapshot lacks is one FastAVError line naming it.
    """
    from ...checkpoint import read_config

    directory = Path(directory)
    vision_tower = Path(vision_tower) if vision_tower is not None else None
    config = read_config(directory)
    siglip = siglip_config(directory, config, vision_tower)
    select_layer = int(config.get("mm_vision_select_layer", siglip_tower.DEFAULT_SELECT_LAYER))
    projector_type = config.get("mm_projector_type", "stc_connector_v35")
    if projector_type != "stc_connector_v35":
        raise FastAVError(f"{directory}/config.json has mm_projector_type {projector_type!r}: fastav-export builds "
                          "VideoLLaMA2.1's stc_connector_v35 only")
    shapes = EncoderShapes(siglip, stc_connector.STCConfig(siglip.hidden_size, decoder_hidden),
                           _beats_config(directory, config), decoder_hidden, select_layer)
    _check_parts_present(directory)
    vision, audio = shapes.build()
    sources = {}

    tower_dir = tower_directory(directory, config, vision_tower,
                                has_keys(directory, siglip_tower.CHECKPOINT_PREFIX))
    if tower_dir is not None:
        part = read_part(tower_dir, VISION_TOWER, "vision_model.")
        part = Part({f"vision_tower.vision_model.{key}": value for key, value in part.state.items()},
                    f"{part.source} in {tower_dir}")
    else:
        part = read_part(directory, VISION_TOWER, siglip_tower.CHECKPOINT_PREFIX)
    sources[VISION_TOWER] = part.source + load_into(vision.tower, part, VISION_TOWER, directory)

    part = read_part(directory, VISION_PROJECTOR, stc_connector.CHECKPOINT_PREFIX)
    sources[VISION_PROJECTOR] = part.source + load_into(vision.projector, part, VISION_PROJECTOR, directory)

    part = read_part(directory, AUDIO_TOWER, beats.CHECKPOINT_PREFIX, bin_file="audio_tower.bin")
    beats.load_beats_state_dict(audio.tower, part.state, prefix="")
    sources[AUDIO_TOWER] = part.source

    part = read_part(directory, AUDIO_PROJECTOR, audio_projector.CHECKPOINT_PREFIX, bin_file="mm_projector_a.bin",
                     bin_prefixes=("mm_projector_a.",))
    sources[AUDIO_PROJECTOR] = part.source + load_into(audio.projector, part, AUDIO_PROJECTOR, directory)
    return LoadedEncoders(vision.eval(), audio.eval(), sources)

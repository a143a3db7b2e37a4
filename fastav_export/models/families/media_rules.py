"""A family's media rules: how a clip becomes encoder inputs, and encoder rows the prompt's media rows.

    clip --decode + the family's preprocessing--> MediaTensors --encoders--> rows
         --MediaRules.media_layout--> (layout, rows in prompt order) [--positions--> [3, N] or None]

Decoding is PyAV's (`media/decode.py`); frames are sampled by the VideoSettings (a fixed count, or
a rate), the audio features are the family's (`AudioFeatures`, registered by name, the name the
AudioSettings and so the engine manifest record).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Union

from ...contract.interleave import FrameInterleave
from ...contract.layout import TokenLayout
from ...errors import FastAVError
from ...media.settings import AudioSettings, VideoSettings

if TYPE_CHECKING:  # torch and numpy load when a clip is read, not when `--help` imports the families
    import numpy as np
    import torch

Source = Union[str, Path, bytes]  # a file, or a file's contents


@dataclass
class MediaTensors:
    """pixel_values: the vision encoder's input: [F, 3, S, S] fp32, the sampled frames after the image
                  processor, or a tuple of tensors, one per input of the encoder graph (Qwen2.5-Omni:
                  the patches and the tables that follow the clip's grid).
    fbank:        the audio encoder's input: [1, T, M] fp32, the raw log-mel filterbank (VideoLLaMA2-AV;
                  the audio tower normalises it, as BEATs does), or [C, 128, 3000], the Whisper features
                  of C 30 s chunks (video-SALMONN 2), or a tuple as above; None: the clip has no sound
                  and the model runs without audio rows.
    seconds:      time spent per stage (`media_decode`).
    clip_seconds: the clip's length where the layout follows it (frames sampled at a rate), else None."""

    pixel_values: torch.Tensor
    fbank: torch.Tensor
    seconds: dict[str, float] = field(default_factory=dict)
    clip_seconds: float | None = None


@dataclass(frozen=True)
class EncoderSample:
    """One encoder as the build exports it: `module` traced on `inputs`, named `input_names` ->
    `output_names`; dynamic_first_axis: the first axis (frames, chunks) of every input follows the clip;
    dynamic_axes: per input, the axes that follow the clip (instead of dynamic_first_axis)."""

    module: "torch.nn.Module"
    inputs: tuple[torch.Tensor, ...]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_first_axis: bool = False
    dynamic_axes: tuple[tuple[int, ...], ...] | None = None


@dataclass(frozen=True)
class MediaRecord:
    """What a build recorded about a model's media path, from which its rules are rebuilt: the
    preprocessing settings, the built layout, the per-frame rule (None: fixed rows) and the family's
    options (`MediaParts.options`, the manifest's `media.options`)."""

    video: VideoSettings
    audio: AudioSettings
    layout: TokenLayout
    interleave: FrameInterleave | None = None
    options: dict = field(default_factory=dict)


class AudioFeatures(ABC):
    """How a clip's sound becomes the audio encoder's input; `name` is AudioSettings.features."""

    name: str

    @abstractmethod
    def decoded_seconds(self, settings: AudioSettings, clip_seconds: float | None) -> float | None:
        """The seconds of a separate audio file the features use (decoding stops there)."""

    @abstractmethod
    def read_track(self, video: Source, settings: AudioSettings, clip_seconds: float | None) -> np.ndarray:
        """The video's own track as the mono waveform the features take."""

    @abstractmethod
    def features(self, waveform: np.ndarray, settings: AudioSettings, clip_seconds: float | None,
                 from_file: bool) -> torch.Tensor:
        """The audio encoder's input tensor; from_file: the waveform came from a separate audio file."""

    @abstractmethod
    def sample(self, settings: AudioSettings) -> torch.Tensor:
        """A zero input of the encoder's shape, to trace its graph on."""


_AUDIO_FEATURES: dict[str, AudioFeatures] = {}


def register_audio_features(features: AudioFeatures) -> AudioFeatures:
    _AUDIO_FEATURES[features.name] = features
    return features


def audio_feature_names() -> list[str]:
    """The names of the registered audio features (what an engine manifest may record)."""
    return sorted(_AUDIO_FEATURES)


def audio_features(name: str) -> AudioFeatures:
    try:
        return _AUDIO_FEATURES[name]
    except KeyError:
        raise FastAVError(f"audio features {name!r} are not known here (known: {', '.join(sorted(_AUDIO_FEATURES))})"
                          ": rebuild the engine with this version of fastav-export") from None


def clip_tensors(video: Source, video_settings: VideoSettings, audio_settings: AudioSettings,
                 audio: Source | None = None, silent_audio: bool = False) -> MediaTensors:
    """Decode and preprocess one clip: frames as `video_settings` sample them, the audio features
    `audio_settings.features` names.

    audio: a separate audio file that replaces the video's own track (default: the track).
    silent_audio: a video without an audio track gets silence instead of `NoAudioTrack`.
    Raises `media.decode.NoAudioTrack` (no advice: the caller knows which flags or fields fix it) when
    the audio file, or the video without silent_audio, has no sound.
    """
    import numpy as np

    from ...media.decode import NoAudioTrack, has_audio, read_audio, read_frames_at_fps, read_video_frames
    from ...media.frames import decoded_frame_pixels, preprocess_frames

    started = time.perf_counter()
    clip_seconds = None
    frame_pixels = decoded_frame_pixels(video_settings)
    if video_settings.fps is not None:
        frames, clip_seconds = read_frames_at_fps(video, video_settings.fps, video_settings.num_frames, frame_pixels)
    else:
        frames = read_video_frames(video, video_settings.num_frames, frame_pixels)
    pixel_values = preprocess_frames(frames, video_settings)
    kind, rate = audio_features(audio_settings.features), audio_settings.sample_rate
    if audio is not None:
        waveform = read_audio(audio, rate, max_seconds=kind.decoded_seconds(audio_settings, clip_seconds))
    elif has_audio(video):
        waveform = kind.read_track(video, audio_settings, clip_seconds)
    elif silent_audio:
        waveform = np.zeros(round(rate * (clip_seconds or audio_settings.seconds)), np.float32)
    else:
        raise NoAudioTrack(f"{_name(video)} has no audio track")
    features = kind.features(waveform, audio_settings, clip_seconds, from_file=audio is not None)
    return MediaTensors(pixel_values, features, {"media_decode": time.perf_counter() - started}, clip_seconds)


def _name(source: Source) -> str:
    if isinstance(source, (bytes, bytearray)):
        return getattr(source, "name", "the video")  # media.decode.MediaBytes: a request's input
    return str(source)


class MediaRules:
    """A built model's media rules. This base serves a family whose clips always fill the built
    layout's media rows ([video rows][audio rows] as the layout places them) on 1-D positions;
    families whose layout follows the clip, or whose positions have more rows, override."""

    # Encoder graph I/O names (the manifest records them; requests never see them).
    vision_io = (("pixel_values",), ("video_embeds",))
    audio_io = (("fbank",), ("audio_embeds",))

    def __init__(self, record: MediaRecord):
        self.record = record
        self.video_settings, self.audio_settings = record.video, record.audio

    def warm_up(self) -> None:
        """Import and build the preprocessing now (where a server or a run starts), so the first request's
        decode time does not include it."""
        from ...media.frames import image_processor

        image_processor(self.video_settings)

    @property
    def static_encoders(self) -> bool:
        """True when every clip gives the encoders the same shapes (TensorRT builds them static engines)."""
        return self.video_settings.fps is None

    def encoder_inputs(self, video: Source, audio: Source | None = None, silent_audio: bool = False) -> MediaTensors:
        """Decode and preprocess one clip (`clip_tensors`)."""
        return clip_tensors(video, self.video_settings, self.audio_settings, audio, silent_audio)

    def encoder_samples(self, vision: torch.nn.Module, audio: torch.nn.Module) -> dict[str, EncoderSample]:
        """The encoders to export, keyed "vision" and "audio", each with a zero input of one clip's shape
        (a rate-sampled video or a chunked audio input is traced on 2, so the exporter keeps the axis)."""
        import torch

        video, dynamic_audio = self.video_settings, not self.static_encoders
        frames = 2 if video.fps is not None else video.num_frames
        pixels = torch.zeros(frames, 3, video.image_size, video.image_size)
        return {"vision": EncoderSample(vision.for_export(), (pixels,), *self.vision_io, video.fps is not None),
                "audio": EncoderSample(audio, (audio_features(self.audio_settings.features).sample(self.audio_settings),),
                                       *self.audio_io, dynamic_audio)}

    def prompt_parts(self, tokenizer, question: str, modal_token: str, with_audio: bool = True):
        """The ids before and after the media rows (`text.prompt.PromptParts`): the chat template with
        the modal token, split there. with_audio: whether the clip's sound is used (a family whose
        prompt marks the audio rows says so here)."""
        from ...text.prompt import prompt_parts

        return prompt_parts(tokenizer, question, modal_token)

    def layout_before_decoding(self, video: Source, prefix_tokens: int, suffix_tokens: int
                               ) -> tuple[TokenLayout, float] | None:
        """The layout a clip will get and its seconds, known from the container alone (None: the layout
        does not follow the clip), so an over-long clip is refused before it is decoded."""
        return None

    def media_layout(self, tensors: MediaTensors, video_rows: np.ndarray, audio_rows: np.ndarray,
                     prefix_tokens: int, suffix_tokens: int) -> tuple[TokenLayout, np.ndarray, np.ndarray]:
        """(layout, video rows, audio rows) of one clip: the rows in the order the layout takes them."""
        return self.record.layout, video_rows, audio_rows

    def positions(self, layout: TokenLayout, tensors: MediaTensors) -> np.ndarray | None:
        """The prompt's position ids where they are not 0..N-1 (M-RoPE: [3, N]); None: 0..N-1."""
        return None

"""What a model's preprocessing needs to know about the media: frames, image size, audio window.

Registered per model (`models/`), recorded in the engine manifest, so that
`run ENGINE_DIR --video F` preprocesses exactly as the build's model did.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Kaldi's default framing, which both VideoLLaMA2's and BEATs' filterbanks use: 25 ms windows every 10 ms.
FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0


@dataclass(frozen=True)
class VideoSettings:
    """num_frames:  frames sampled uniformly over the clip (with `fps`: the most frames).
    image_size:  side of the square image the processor resizes each frame to.
    fps:         None: always num_frames frames; else one frame per 1/fps seconds of the clip,
                 spread uniformly over it when that would exceed num_frames (video-SALMONN 2).
    image_mean, image_std: the processor's per-channel normalisation (also the padding colour, as
                 0-255 values of the mean, when a frame is padded to a square)."""

    num_frames: int
    image_size: int
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    fps: float | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        if self.fps is None:  # a fixed frame count: manifests written before fps existed read the same
            del data["fps"]
        return data

    @classmethod
    def from_json(cls, data: dict) -> "VideoSettings":
        fps = data.get("fps")
        return cls(int(data["num_frames"]), int(data["image_size"]), tuple(data["image_mean"]),
                   tuple(data["image_std"]), None if fps is None else float(fps))


@dataclass(frozen=True)
class AudioSettings:
    """sample_rate: Hz of the mono waveform the features are computed from.
    seconds:     the waveform is cut or zero-padded to this length (VideoLLaMA2-AV: 30 s); with Whisper
                 features, the length of each chunk the waveform is cut into.
    mel_bins:    filterbank channels.
    features:    the name of the family's audio features (`models.families.media_rules.AudioFeatures`):
                 "fbank": Kaldi's log-mel filterbank of one window (VideoLLaMA2-AV's BEATs);
                 "whisper": Whisper's log-mel features of each 30 s chunk (video-SALMONN 2);
                 "qwen2.5-omni": Whisper's log-mel features of the whole track (Qwen2.5-Omni)."""

    sample_rate: int = 16_000
    seconds: float = 30.0
    mel_bins: int = 128
    features: str = "fbank"

    @property
    def samples(self) -> int:
        return round(self.sample_rate * self.seconds)

    @property
    def window(self) -> int:
        return round(self.sample_rate * FRAME_LENGTH_MS / 1000)

    @property
    def shift(self) -> int:
        return round(self.sample_rate * FRAME_SHIFT_MS / 1000)

    @property
    def fbank_frames(self) -> int:
        """Filterbank frames of `seconds` of audio (Kaldi's snip_edges framing): 2998 for 30 s at 16 kHz."""
        return 1 + (self.samples - self.window) // self.shift

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "AudioSettings":
        return cls(int(data["sample_rate"]), float(data["seconds"]), int(data["mel_bins"]),
                   str(data.get("features", "fbank")))

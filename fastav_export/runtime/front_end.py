"""Everything before the decoder: a video, its audio and a question -> one `Prompt`.

media (PyAV decode + the model's preprocessing) -> encoders -> the chat template and the
tokenizer -> [prefix text][media rows][suffix text]: VideoLLaMA2-AV's video then audio rows on
the built layout, or video-SALMONN 2's per-frame [video][audio] rows on the layout of this
clip's frames and duration (`interleave`).
`FrontEnd.from_engine` needs only an engine directory; the torch reference builds one
from the model's own modules and tokenizer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..closing import Closing
from ..contract.interleave import FrameInterleave
from ..contract.layout import TokenLayout
from ..engine.manifest import EngineManifest
from ..errors import FastAVError
from ..media.settings import AudioSettings, VideoSettings
from .media_inputs import Source, media_tensors
from .prompt_embeds import Prompt, media_prompt
from .token_limit import TokenLimit


@dataclass
class FrontEnd(Closing):
    """video, audio: the preprocessing settings; encoders: TorchEncoders or OrtEncoders;
    tokenizer: a transformers tokenizer with the model's chat template; layout: the built one;
    interleave: the per-frame layout rule of a model whose media rows follow the clip (None: fixed).
    token_limit: the most tokens the prompt may have (an engine's --max-tokens, the reference's positions),
    checked against a clip's layout before its media is decoded (None: no limit known here; the caller
    checks the prompt)."""

    video_settings: VideoSettings
    audio_settings: AudioSettings
    encoders: object
    tokenizer: object
    placeholder_id: int
    modal_token: str
    layout: TokenLayout
    interleave: FrameInterleave | None = None
    token_limit: TokenLimit | None = None

    def __post_init__(self):
        from ..media.frames import image_processor

        image_processor(self.video_settings)  # imported and built now, not inside the first request's timing

    @classmethod
    def from_engine(cls, manifest: EngineManifest, threads: int | None = None,
                    backend: str | None = None, for_client: bool = False) -> "FrontEnd":
        """The engine's front end; its encoders run where `backend` runs the decoder (trt: their TensorRT
        engines, when the build made them; otherwise ONNX Runtime on the CPU). for_client: it serves
        clients of a served engine, whose errors suggest no rebuild."""
        from ..text.tokenizer import load_tokenizer
        from .encoders import OrtEncoders, TrtEncoders

        media = manifest.media
        if media is None:
            raise FastAVError(f"{manifest.path} holds the decoder only (no encoders or tokenizer): rebuild it with "
                              "`fastav-export build` for a model with a media path (videollama2, video-salmonn2 or their -tiny), "
                              "or send embeddings with --embeds")
        encoders = TrtEncoders(manifest) if backend == "trt" and media.engines else OrtEncoders(manifest, threads)
        return cls(media.video, media.audio, encoders, load_tokenizer(manifest.file(media.tokenizer)),
                   media.placeholder_id, media.modal_token, manifest.layout, media.interleave,
                   TokenLimit.of_engine(manifest.max_tokens, for_client))

    @classmethod
    def from_parts(cls, spec, parts, layout: TokenLayout | None = None,
                   token_limit: TokenLimit | None = None) -> "FrontEnd":
        """The reference's front end: `spec`'s media settings (models.registry.ModelSpec) and the torch
        encoders and tokenizer of `parts` (models.media_parts.MediaParts), on `layout` (default: spec's);
        token_limit: what the reference can run (`TokenLimit.of_model`), checked before decoding."""
        from .encoders import TorchEncoders

        return cls(spec.video, spec.audio, TorchEncoders(parts.vision, parts.audio), parts.tokenizer,
                   spec.placeholder_id, parts.modal_token, layout or spec.default_layout(), parts.interleave,
                   token_limit)

    def stop_ids(self) -> list[int]:
        from ..text.tokenizer import end_of_turn_ids

        return end_of_turn_ids(self.tokenizer)

    def prompt(self, question: str, video: Source, audio: Source | None = None,
               silent_audio: bool = False) -> tuple[Prompt, dict[str, float]]:
        """The prompt of one request and the seconds each stage took (media_decode, vision_encoder,
        audio_encoder, tokenize)."""
        from ..text.prompt import prompt_parts

        prefix, suffix = prompt_parts(self.tokenizer, question, self.modal_token)
        self._check_clip_fits(video, len(prefix), len(suffix))
        tensors = media_tensors(video, self.video_settings, self.audio_settings, audio, silent_audio)
        seconds = dict(tensors.seconds)
        started = time.perf_counter()
        video_rows = self.encoders.video(tensors.pixel_values)
        seconds["vision_encoder"] = time.perf_counter() - started
        started = time.perf_counter()
        audio_rows = self.encoders.audio(tensors.fbank)
        seconds["audio_encoder"] = time.perf_counter() - started
        layout = self.layout
        if self.interleave is not None:
            frames, clip = tensors.pixel_values.shape[0], tensors.clip_seconds
            chunks = tensors.fbank.shape[0]
            layout = self.interleave.media_layout(frames, chunks, clip, len(prefix), len(suffix))
            audio_rows = self.interleave.arrange_audio(audio_rows, frames, clip)
        return media_prompt(prefix, suffix, self.placeholder_id, layout, video_rows, audio_rows), seconds

    def _check_clip_fits(self, video: Source, prefix_tokens: int, suffix_tokens: int) -> None:
        """Refuse a clip whose layout exceeds `token_limit` before anything is decoded or encoded: where
        the layout follows the clip (video-SALMONN 2), it follows from the clip's length, frames / rate
        as `read_frames_at_fps` measures it, which the demuxer gives without decoding (a 2-hour clip
        would otherwise be decoded and encoded, 240 Whisper chunks, before it is found not to fit)."""
        if self.interleave is None or self.token_limit is None or self.video_settings.fps is None:
            return
        from ..media.decode import video_rate
        from ..media.frames import sample_at_fps

        total, rate = video_rate(video)
        seconds = total / rate
        frames = len(sample_at_fps(total, rate, self.video_settings.fps, self.video_settings.num_frames))
        # The chunks of the clip's span: an audio track shorter than the video could give fewer, never more.
        layout = self.interleave.media_layout(frames, self.interleave.chunks(seconds), seconds, prefix_tokens,
                                              suffix_tokens)
        tokens = layout.n_tokens
        if tokens > self.token_limit.tokens:
            raise FastAVError(f"the clip's {seconds:.1f} s give a layout of {tokens} tokens but "
                              f"{self.token_limit.refusal(tokens)}")

    def close(self) -> None:
        self.encoders.close()

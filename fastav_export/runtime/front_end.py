"""Everything before the decoder: a video, its audio and a question -> one `Prompt`.

media (PyAV decode + the family's preprocessing) -> encoders -> the chat template and the
tokenizer -> [prefix text][media rows][suffix text], the media rows arranged by the model family's
rules (`models.families.media_rules.MediaRules`: the built layout's rows, or the layout of this
clip's frames and duration).
`FrontEnd.from_engine` needs only an engine directory (its manifest names the family); the torch
reference builds one from the model's own modules and tokenizer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from ..closing import Closing
from ..contract.interleave import FrameInterleave
from ..contract.layout import TokenLayout
from ..engine.manifest import EngineManifest
from ..errors import FastAVError
from ..media.settings import AudioSettings, VideoSettings
from ..models.families import MediaRules
from .media_inputs import Source
from .prompt_embeds import Prompt, media_prompt
from .token_limit import TokenLimit


@dataclass
class FrontEnd(Closing):
    """rules: the family's media rules (preprocessing, layout of a clip, positions); encoders:
    TorchEncoders or OrtEncoders; tokenizer: a transformers tokenizer with the model's chat template.
    token_limit: the most tokens the prompt may have (an engine's --max-tokens, the reference's positions),
    checked against a clip's layout before its media is decoded (None: no limit known here; the caller
    checks the prompt)."""

    rules: MediaRules
    encoders: object
    tokenizer: object
    placeholder_id: int
    modal_token: str
    token_limit: TokenLimit | None = None

    def __post_init__(self):
        self.rules.warm_up()  # imported and built now, not inside the first request's timing

    @property
    def video_settings(self) -> VideoSettings:
        return self.rules.video_settings

    @property
    def audio_settings(self) -> AudioSettings:
        return self.rules.audio_settings

    @property
    def layout(self) -> TokenLayout:
        """The built layout (a clip's own may differ where the layout follows the clip)."""
        return self.rules.record.layout

    @property
    def interleave(self) -> FrameInterleave | None:
        return self.rules.record.interleave

    @classmethod
    def from_engine(cls, manifest: EngineManifest, threads: int | None = None,
                    backend: str | None = None, for_client: bool = False) -> "FrontEnd":
        """The engine's front end; its encoders run where `backend` runs the decoder (trt: their TensorRT
        engines, when the build made them; otherwise ONNX Runtime on the CPU). for_client: it serves
        clients of a served engine, whose errors suggest no rebuild."""
        from ..models import model_names
        from ..text.tokenizer import load_tokenizer
        from .encoders import OrtEncoders, TrtEncoders

        media = manifest.media
        if media is None:
            raise FastAVError(f"{manifest.path} holds the decoder only (no encoders or tokenizer): rebuild it with "
                              "`fastav-export build` for a model with a media path "
                              f"({', '.join(model_names())}), or send embeddings with --embeds")
        rules = media.rules(manifest.layout)
        encoders = TrtEncoders(manifest) if backend == "trt" and media.engines else OrtEncoders(manifest, threads)
        return cls(rules, encoders, load_tokenizer(manifest.file(media.tokenizer)), media.placeholder_id,
                   media.modal_token, TokenLimit.of_engine(manifest.max_tokens, for_client))

    @classmethod
    def from_parts(cls, spec, parts, layout: TokenLayout | None = None,
                   token_limit: TokenLimit | None = None) -> "FrontEnd":
        """The reference's front end: `spec`'s media settings (models.registry.ModelSpec) and the torch
        encoders and tokenizer of `parts` (models.media_parts.MediaParts), on `layout` (default: spec's);
        token_limit: what the reference can run (`TokenLimit.of_model`), checked before decoding."""
        from ..models.families import MediaRecord, get_family
        from .encoders import TorchEncoders

        record = MediaRecord(spec.video, spec.audio, layout or spec.default_layout(), parts.interleave,
                             dict(parts.options))
        return cls(get_family(spec.family).media_rules(record), TorchEncoders(parts.vision, parts.audio),
                   parts.tokenizer, spec.placeholder_id, parts.modal_token, token_limit)

    def stop_ids(self) -> list[int]:
        from ..text.tokenizer import end_of_turn_ids

        return end_of_turn_ids(self.tokenizer)

    def prompt(self, question: str, video: Source, audio: Source | None = None,
               silent_audio: bool = False) -> tuple[Prompt, dict[str, float]]:
        """The prompt of one request and the seconds each stage took (media_decode, vision_encoder,
        audio_encoder, tokenize)."""
        prefix, suffix = self.rules.prompt_parts(self.tokenizer, question, self.modal_token)
        self._check_clip_fits(video, len(prefix), len(suffix))
        tensors = self.rules.encoder_inputs(video, audio, silent_audio)
        seconds = dict(tensors.seconds)
        started = time.perf_counter()
        video_rows = self.encoders.video(tensors.pixel_values)
        seconds["vision_encoder"] = time.perf_counter() - started
        started = time.perf_counter()
        if tensors.fbank is None:  # a clip without sound, where the model runs without audio rows
            audio_rows = np.zeros((0, video_rows.shape[1]), np.float32)
            prefix, suffix = self.rules.prompt_parts(self.tokenizer, question, self.modal_token, with_audio=False)
        else:
            audio_rows = self.encoders.audio(tensors.fbank)
        seconds["audio_encoder"] = time.perf_counter() - started
        layout, video_rows, audio_rows = self.rules.media_layout(tensors, video_rows, audio_rows, len(prefix),
                                                                 len(suffix))
        prompt = media_prompt(prefix, suffix, self.placeholder_id, layout, video_rows, audio_rows)
        positions = self.rules.positions(layout, tensors)
        return (prompt if positions is None else replace(prompt, positions=positions)), seconds

    def _check_clip_fits(self, video: Source, prefix_tokens: int, suffix_tokens: int) -> None:
        """Refuse a clip whose layout exceeds `token_limit` before anything is decoded or encoded, where
        the family knows the clip's layout from its container alone (`MediaRules.layout_before_decoding`)."""
        if self.token_limit is None:
            return
        known = self.rules.layout_before_decoding(video, prefix_tokens, suffix_tokens)
        if known is None:
            return
        layout, seconds = known
        tokens = layout.n_tokens
        if tokens > self.token_limit.tokens:
            raise FastAVError(f"the clip's {seconds:.1f} s give a layout of {tokens} tokens but "
                              f"{self.token_limit.refusal(tokens)}")

    def close(self) -> None:
        self.encoders.close()

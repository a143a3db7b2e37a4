"""Qwen2.5-Omni's inputs as transformers' own processors make them, for the tests to compare against.

transformers' Qwen2-VL video processor needs torchvision, which does not import here; its PIL image
processor is the oracle instead. An image is a video of one frame repeated over the temporal patch
(Qwen2-VL's definition), so a video patch is the image patches of its two frames, one per temporal slot.
Everything else is `Qwen2_5OmniProcessor`'s own code: its audio method (Whisper features), its
placeholder expansion and its `__call__` (tokenisation of the expanded chat text), on an instance
built without `__init__`, which would load torchvision's video processor.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers.models.qwen2_5_omni.processing_qwen2_5_omni import (
    Qwen2_5OmniProcessor,
)

from fastav_export.models.families.qwen2_5_omni.audio_features import (
    omni_feature_extractor,
)
from fastav_export.models.families.qwen2_5_omni.chat import MEDIA_TOKENS

# Qwen2.5-Omni's preprocessor_config.json (the released snapshots'): CLIP's normalisation, 14-pixel patches.
IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073]
IMAGE_STD = [0.26862954, 0.26130258, 0.27577711]


def omni_image_processor():
    """transformers' Qwen2-VL image processor (PIL backend) with Qwen2.5-Omni's preprocessor_config.json."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    return Qwen2VLImageProcessorPil(min_pixels=3136, max_pixels=12845056, patch_size=14, temporal_patch_size=2,
                                    merge_size=2, image_mean=IMAGE_MEAN, image_std=IMAGE_STD)


def transformers_video_patches(frames: np.ndarray) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """frames [T, 3, H, W] uint8, T even -> (patches [t * h * w, 1176], grid (t, h, w)) from the image
    processor: frame 2g fills temporal slot 0 of group g's patches, frame 2g + 1 slot 1."""
    processor = omni_image_processor()
    per_frame, grids = [], set()
    for frame in frames:
        out = processor(images=[frame], return_tensors="pt", input_data_format="channels_first")
        per_frame.append(out["pixel_values"].reshape(out["pixel_values"].shape[0], 3, 2, 14 * 14))
        grids.add(tuple(out["image_grid_thw"][0].tolist()))
    (grid,) = grids
    groups = [torch.stack([first[:, :, 0], second[:, :, 1]], dim=2).flatten(1)
              for first, second in zip(per_frame[0::2], per_frame[1::2])]
    return torch.cat(groups), (len(groups), grid[1], grid[2])


class ImageProcessorVideos:
    """Stands in for Qwen2-VL's video processor inside `Qwen2_5OmniProcessor`: the same outputs for videos
    whose frames already have their final size (qwen-omni-utils resizes them before the processor, so its
    resize is the identity), computed by `transformers_video_patches`."""

    merge_size = 2
    temporal_patch_size = 2

    def __call__(self, videos, **kwargs) -> dict:
        """videos: [V] of [T, 3, H, W] uint8 -> pixel_values_videos [sum t*h*w, 1176], video_grid_thw [V, 3]."""
        patches, grids = zip(*(transformers_video_patches(np.asarray(video)) for video in videos))
        return {"pixel_values_videos": torch.cat(patches), "video_grid_thw": torch.tensor(grids)}


def omni_processor(tokenizer=None) -> Qwen2_5OmniProcessor:
    """`Qwen2_5OmniProcessor` with Omni's Whisper feature extractor, `ImageProcessorVideos` and `tokenizer`
    (its media token attributes, as `__init__` reads them); without a tokenizer, only what the audio method
    and the placeholder expansion read."""
    processor = Qwen2_5OmniProcessor.__new__(Qwen2_5OmniProcessor)
    processor.feature_extractor, processor.video_processor = omni_feature_extractor(), ImageProcessorVideos()
    processor.image_processor, processor.chat_template = omni_image_processor(), None
    for name, text in MEDIA_TOKENS.items():
        setattr(processor, name, text if tokenizer is None else getattr(tokenizer, name))
    if tokenizer is not None:
        processor.tokenizer = tokenizer
        for name in ("image_token_id", "audio_token_id", "video_token_id"):
            setattr(processor, name, getattr(tokenizer, name))
    return processor


def omni_processor_audio(waveform: np.ndarray) -> tuple[torch.Tensor, int]:
    """(valid features [128, L], L) of a 16 kHz mono waveform [S], from the processor's own audio method
    with its defaults."""
    out, _ = omni_processor()._process_audio([waveform], **Qwen2_5OmniProcessor.audio_kwargs, return_tensors="pt")
    mask = out["feature_attention_mask"][0].bool()
    assert out["input_features"].shape == (1, 128, 30000)  # always the 300 s window
    return out["input_features"][0][:, mask], int(mask.sum())


def processor_inputs(tokenizer, messages: list[dict], frames: np.ndarray, waveform: np.ndarray | None) -> dict:
    """What `Qwen2_5OmniProcessor(text=..., videos=..., audio=..., use_audio_in_video=...)` gives one clip, as
    Qwen's examples call it (no fps: 1 s per temporal grid), tensors with a batch of one:
    input_ids, attention_mask [1, N]; pixel_values_videos, video_grid_thw, video_second_per_grid;
    with a waveform [S] (the video's track at 16 kHz) also input_features [1, 128, 30000] and
    feature_attention_mask [1, 30000].

    messages: the conversation, rendered by the tokenizer's chat template with the generation prompt.
    frames: [T, 3, H, W] uint8, the frames qwen-omni-utils samples, already resized."""
    processor = omni_processor(tokenizer)
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    audio = {} if waveform is None else {"audio": [waveform], "audio_from_video_indices": [0],
                                         "load_audio_from_video": True}
    return dict(processor(text=[text], videos=[frames], return_tensors="pt", **audio))

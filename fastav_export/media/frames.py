"""Video frames -> the vision encoder's pixel values, as VideoLLaMA2 prepares them.

Upstream (DAMO-NLP-SG/VideoLLaMA2, branch audio_visual, videollama2/mm_utils.py):
`frame_sample(mode="uniform")` picks the frame indices, `expand2square` pads a frame to a
square with the processor's mean colour, then the vision tower's SigLIP image processor
resizes, rescales and normalises. Note that upstream's `model_init` (videollama2/__init__.py)
builds its video processor with `aspect_ratio=None`, so at inference frames are NOT padded,
only resized (squashed) to a square: `preprocess_frames(pad=False)`, the default, does that;
`pad=True` reproduces the `aspect_ratio="pad"` mode.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import FastAVError, MissingDependencyError
from .settings import VideoSettings


def sample_frame_indices(total_frames: int, num_frames: int) -> list[int]:
    """`num_frames` indices spread uniformly over `total_frames` (upstream `frame_sample`, uniform mode).

    The clip is cut into `num_frames` segments of (total - 1) / num frames each, and the middle of
    segment i, (i + 1/2) * (total - 1) / num, is rounded (half up: upstream adds 1e-6 before numpy's
    round-half-to-even). With fewer frames than `num_frames` indices repeat, as upstream's do.
    Returns non-decreasing ints in [0, total_frames).
    """
    if num_frames < 1:  # a model setting, never user input
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if total_frames < 1:
        raise FastAVError("cannot sample frames from a video with no frames: pass a video with content")
    segment = float(total_frames - 1) / num_frames
    # segment start + end, halved: the same float arithmetic as upstream, so ties round alike
    middles = (segment * np.arange(num_frames) + segment * np.arange(1, num_frames + 1)) / 2
    return [int(i) for i in np.round(middles + 1e-6)]


def sample_at_fps(total_frames: int, native_fps: float, fps: float, max_frames: int) -> list[int]:
    """Indices of one frame per 1/fps seconds (video-SALMONN 2's sampling; av_dataset.py upstream).

    Every round(native_fps / fps)-th frame from the first (at least every frame); when that gives
    more than `max_frames`, `max_frames` indices spread evenly from the first frame to the last
    (numpy's linspace truncated to int, as upstream's `dtype=int`).
    """
    if total_frames < 1:
        raise FastAVError("cannot sample frames from a video with no frames: pass a video with content")
    step = max(round(native_fps / fps), 1)
    indices = list(range(0, total_frames, step))
    if len(indices) > max_frames:
        indices = [int(i) for i in np.linspace(0, total_frames - 1, max_frames).astype(int)]
    return indices


# Frames are kept at most this many times the processor's side in each dimension (16 times its pixels):
# the processor resizes from the decoded frame, so a bound well above its size leaves common clips as
# decoded (1920x1080 stays for a 384 processor) while an 8K frame is scaled on decode.
DECODED_FRAME_SCALE = 4


def decoded_frame_pixels(settings: VideoSettings) -> int:
    """The most pixels a decoded frame is kept at before the processor: (4 * image_size)^2; larger
    frames are scaled down while decoding, keeping their aspect (`media.decode.kept_frame_size`)."""
    return (DECODED_FRAME_SCALE * settings.image_size) ** 2


def padding_colour(image_mean: tuple[float, float, float]) -> tuple[int, int, int]:
    """The 0-255 fill colour upstream pads with: each mean truncated, int(m * 255) (0.5 -> 127)."""
    return tuple(int(m * 255) for m in image_mean)


def pad_to_square(frame: np.ndarray, fill: tuple[int, int, int]) -> np.ndarray:
    """[H, W, 3] uint8 -> [L, L, 3] uint8, L = max(H, W): the frame centred on a `fill` background
    (offset (L - short side) // 2, like upstream's `expand2square`). A square frame comes back as is."""
    height, width = frame.shape[:2]
    if height == width:
        return frame
    side = max(height, width)
    square = np.empty((side, side, frame.shape[2]), dtype=frame.dtype)
    square[...] = np.asarray(fill, dtype=frame.dtype)
    top, left = (side - height) // 2, (side - width) // 2
    square[top:top + height, left:left + width] = frame
    return square


@lru_cache(maxsize=8)
def _processor(size: int, mean: tuple[float, ...], std: tuple[float, ...]):
    """SigLIP's image processor, built from arguments (never from a hub id: no network).

    The PIL backend: upstream ran transformers 4.x's SigLIP processor, which resized with PIL, so
    this reproduces its uint8 bicubic resize (the torchvision backend rounds differently)."""
    try:
        import PIL  # noqa: F401  (the processor below needs it; say so in one line)
    except ImportError:
        raise MissingDependencyError("Pillow is not installed: `pip install pillow` "
                                     "(the SigLIP image processing resizes frames with it)") from None
    try:
        from transformers import SiglipImageProcessorPil as Processor
    except ImportError:  # transformers without the backend split: its SigLIP processor is the PIL one
        from transformers import SiglipImageProcessor as Processor
    # SigLIP's preprocessor_config.json: resize to size x size, bicubic (resample=3), rescale 1/255, normalise.
    return Processor(do_resize=True, size={"height": size, "width": size}, resample=3, do_rescale=True,
                     rescale_factor=1 / 255, do_normalize=True, image_mean=list(mean), image_std=list(std))


def image_processor(settings: VideoSettings):
    """The (cached) processor of `settings`: built once where a server or a run starts, so that the
    first request's decode time does not include importing it."""
    return _processor(settings.image_size, tuple(settings.image_mean), tuple(settings.image_std))


def preprocess_frames(frames: np.ndarray, settings: VideoSettings, pad: bool = False):
    """[F, H, W, 3] uint8 RGB -> torch.FloatTensor [F, 3, S, S], S = settings.image_size:
    resized bicubic to S x S (after `pad_to_square` with the mean colour when `pad`), then
    (x / 255 - image_mean) / image_std per channel."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [F, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    images = list(frames)
    if pad:
        fill = padding_colour(settings.image_mean)
        images = [pad_to_square(image, fill) for image in images]
    processor = image_processor(settings)
    # channels_last stated: tiny test frames (3 pixels high) would make the format guess ambiguous
    return processor(images, return_tensors="pt", input_data_format="channels_last")["pixel_values"]

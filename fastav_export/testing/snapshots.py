"""Tiny snapshots on disk, with the real key names and file kinds, for the tests.

Each family writes its own (`Family.write_tiny_snapshot`, in `models/families/<name>/tiny_snapshot.py`);
these are the names the tests call.
"""

from __future__ import annotations

from pathlib import Path

from ..models.families import get_family
from ..models.snapshot_writing import TINY_SIGLIP_DIR, write_shards

__all__ = ["TINY_SIGLIP_DIR", "write_shards", "write_tiny_snapshot", "write_tiny_video_salmonn2_snapshot",
           "write_tiny_videollama2_av_snapshot"]


def write_tiny_snapshot(family: str, directory: str | Path, seed: int = 0, **variants) -> Path:
    """The tiny snapshot of `family` (the decoder of its -tiny model, seed 0; encoders of `seed`)."""
    return get_family(family).write_tiny_snapshot(Path(directory), seed, **variants)


def write_tiny_videollama2_av_snapshot(directory: str | Path, seed: int = 0, **variants) -> Path:
    """VideoLLaMA2-AV's (variants: audio_tower, vision_tower_in_shards, extra_tensors)."""
    return write_tiny_snapshot("videollama2", directory, seed, **variants)


def write_tiny_video_salmonn2_snapshot(directory: str | Path, seed: int = 0, **variants) -> Path:
    """video-SALMONN 2's (variants: weights, vision_tower_in_shards, lora, extra_tensors)."""
    return write_tiny_snapshot("video-salmonn2", directory, seed, **variants)

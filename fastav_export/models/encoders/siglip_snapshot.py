"""Where a LLaVA-style snapshot's SigLIP tower comes from: its shards, the local directory its
config's `mm_vision_tower` names, or `--vision-tower DIR`; and that tower's SigLIP config.

VideoLLaMA2-AV and video-SALMONN 2 both name their tower this way (upstream's from_pretrained(name)
accepts a hub id or a local path).
"""

from __future__ import annotations

from pathlib import Path

from ...errors import FastAVError
from . import siglip_tower


def local_tower(directory: Path, name: str) -> Path | None:
    """`mm_vision_tower` as a local directory (absolute, or relative to the snapshot), as upstream's
    from_pretrained(name) also accepts; None for a hub id."""
    for candidate in (Path(name), directory / name):
        if name and candidate.is_dir() and (candidate / "config.json").is_file():
            return candidate
    return None


def tower_directory(directory: Path, config: dict, vision_tower: Path | None, in_snapshot: bool) -> Path | None:
    """Where the SigLIP weights come from: `--vision-tower DIR`; else None when the snapshot holds them;
    else the local directory `mm_vision_tower` names, as upstream loads it (one line when there is none)."""
    if vision_tower is not None or in_snapshot:
        return vision_tower
    tower_dir = local_tower(directory, str(config.get("mm_vision_tower", "")))
    if tower_dir is None:
        raise FastAVError(f"{directory} lacks the vision tower's weights (no {siglip_tower.CHECKPOINT_PREFIX}* "
                          f"tensors; its config names {config.get('mm_vision_tower')!r}): pass --vision-tower DIR, "
                          "a local snapshot of that SigLIP model")
    return tower_dir


def siglip_config(directory: Path, config: dict, vision_tower: Path | None):
    """SigLIP's config: from --vision-tower's (or a local `mm_vision_tower`'s) config.json, else
    so400m-patch14-384's when the snapshot names that hub id."""
    from transformers import SiglipVisionConfig

    from ..checkpoint import read_config

    name = str(config.get("mm_vision_tower", ""))
    vision_tower = vision_tower if vision_tower is not None else local_tower(directory, name)
    if vision_tower is not None:
        data = read_config(vision_tower)
        data = data.get("vision_config", data)  # a full SigLIP snapshot nests the tower's settings
        try:
            return SiglipVisionConfig(**{k: v for k, v in data.items() if k not in ("model_type", "architectures")})
        except Exception as exc:  # transformers validates fields with its own exception types
            raise FastAVError(f"{vision_tower}/config.json is not a SigLIP vision config: "
                              f"{str(exc).splitlines()[0]}") from None
    if "siglip-so400m-patch14-384" not in name:
        raise FastAVError(f"{directory}/config.json names the vision tower {name!r}, whose architecture "
                          "fastav-export does not know: pass --vision-tower DIR, a local snapshot of it")
    return siglip_tower.real_siglip_config()

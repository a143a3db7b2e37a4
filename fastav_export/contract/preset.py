"""Pruning preset files: a `PruningConfig` with where it came from (`fastav-export calibrate`).

    {"format": "fastav-preset", "format_version": 1,
     "pruning": {"global_policy": "positional", "cutoff": 23, "keep_audio": 3, "global_layer": 3, ...},
     "provenance": {"samples": [...], "alpha": 0.5, "global_layer": 3, "keep_mass": 0.9, ...}}

`build --preset FILE` and `run --preset FILE` start from its pruning settings (flags still
override one value each); the engine manifest records the file, its sha256 and provenance.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FastAVError
from ..user_io.json_input import parse_json
from .pruning_config import PruningConfig

PRESET_FORMAT, PRESET_VERSION = "fastav-preset", 1


@dataclass(frozen=True)
class Preset:
    config: PruningConfig
    provenance: dict = field(default_factory=dict)
    path: str = ""
    sha256: str = ""

    def source(self) -> dict:
        """What an engine manifest records about where its pruning config came from."""
        return {"kind": "preset", "path": self.path, "sha256": self.sha256, "provenance": self.provenance}


def preset_json(config: PruningConfig, provenance: dict) -> str:
    return json.dumps({"format": PRESET_FORMAT, "format_version": PRESET_VERSION, "pruning": config.to_dict(),
                       "provenance": provenance}, indent=2) + "\n"


def parse_preset(data: bytes, where: str, num_layers: int) -> Preset:
    """A validated preset from a file's bytes, or one FastAVError line naming `where`."""
    value = parse_json(data, where)
    if not isinstance(value, dict) or value.get("format") != PRESET_FORMAT:
        raise FastAVError(f"{where} is not a fastav-export preset (no \"format\": \"{PRESET_FORMAT}\"): "
                          "write one with `fastav-export calibrate`")
    if value.get("format_version") != PRESET_VERSION:
        raise FastAVError(f"{where} has preset format {value.get('format_version')!r}; this fastav-export reads "
                          f"{PRESET_VERSION}: calibrate again")
    provenance = value.get("provenance", {})
    if not isinstance(provenance, dict):
        raise FastAVError(f"{where}: provenance is {type(provenance).__name__}, expected an object")
    try:
        config = PruningConfig.from_dict(value.get("pruning")).validate(num_layers, name=lambda key: key)
    except (FastAVError, TypeError) as exc:
        raise FastAVError(f"{where}: the pruning settings are invalid ({exc})") from None
    return Preset(config, provenance, "", hashlib.sha256(data).hexdigest())


def load_preset(path: str | Path, num_layers: int) -> Preset:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FastAVError(f"--preset {path}: cannot read it ({exc.strerror or exc})") from None
    from dataclasses import replace

    return replace(parse_preset(data, f"--preset {path}", num_layers), path=str(path.resolve()))

"""Pruning preset files: a `PruningConfig` with the model it was calibrated for (`fastav-export calibrate`).

    {"format": "fastav-preset", "format_version": 2,
     "target": {"model": "videollama2-tiny", "family": "videollama2", "layout": "blocks",
                "num_layers": 6, "media_tokens": 60},
     "pruning": {"global_policy": "positional", "cutoff": 23, "keep_audio": 3, "global_layer": 3, ...},
     "provenance": {"calibrate": {...}}}

`build --preset FILE` and `run --preset FILE` start from its pruning settings (flags still
override one value each); the engine manifest records the file, its sha256 and provenance.
A positional rule means something only on the layout kind it was found on (positions for
VideoLLaMA2's blocks, frames for video-SALMONN 2's interleaved frames), so a preset of another
layout kind or model family is refused; one of the same family at another size (model, layers,
or, for a rule in positions, the number of video and audio tokens) is used with a warning.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from ..errors import FastAVError
from ..user_io.json_input import parse_json
from .layout import ARRANGEMENTS, AUDIO, VIDEO, TokenLayout
from .pruning_config import PruningConfig, is_int

PRESET_FORMAT, PRESET_VERSION = "fastav-preset", 2
DOCUMENT_KEYS = ("format", "format_version", "target", "pruning", "provenance")


@dataclass(frozen=True)
class PresetTarget:
    """What a preset was calibrated for.

    model:      the registered name or checkpoint directory's name; family: the model family
                (None for a plain Qwen2 checkpoint); layout: the layout's arrangement ("blocks" or
                "interleaved", `TokenLayout.arrangement`); num_layers: the decoder's L; media_tokens: the
                layout's video and audio tokens (the encoders fix them; the text around them
                follows the question), of the first sample when clips differ in length.
    """

    model: str
    family: str | None
    layout: str
    num_layers: int
    media_tokens: int

    @classmethod
    def of(cls, model: str, family: str | None, layout: TokenLayout, num_layers: int) -> "PresetTarget":
        return cls(model, family, layout.arrangement, num_layers, layout.count(VIDEO) + layout.count(AUDIO))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, value, where: str) -> "PresetTarget":
        keys = [f.name for f in fields(cls)]
        if not isinstance(value, dict) or set(value) != set(keys):
            raise FastAVError(f"{where}: \"target\" must be an object with exactly {', '.join(keys)}: "
                              "calibrate again")
        model, family, layout = value["model"], value["family"], value["layout"]
        if (not isinstance(model, str) or not model or not (family is None or isinstance(family, str))
                or layout not in ARRANGEMENTS or not is_int(value["num_layers"]) or value["num_layers"] < 1
                or not is_int(value["media_tokens"]) or value["media_tokens"] < 0):
            raise FastAVError(f"{where}: \"target\" is malformed (model and family are strings, layout one of "
                              f"{', '.join(ARRANGEMENTS)}, num_layers and media_tokens integers): calibrate again")
        return cls(model, family, layout, value["num_layers"], value["media_tokens"])


@dataclass(frozen=True)
class Preset:
    config: PruningConfig
    target: PresetTarget
    provenance: dict = field(default_factory=dict)
    path: str = ""
    sha256: str = ""
    warning: str | None = None  # the preset was calibrated for another size of this model (see match_target)

    def source(self) -> dict:
        """What an engine manifest records about where its pruning config came from."""
        return {"kind": "preset", "path": self.path, "sha256": self.sha256, "provenance": self.provenance,
                "target": self.target.to_json()}


def preset_json(config: PruningConfig, provenance: dict, target: PresetTarget) -> str:
    return json.dumps({"format": PRESET_FORMAT, "format_version": PRESET_VERSION, "target": target.to_json(),
                       "pruning": config.to_dict(), "provenance": provenance}, indent=2) + "\n"


def match_target(recorded: PresetTarget, config: PruningConfig, target: PresetTarget, where: str) -> str | None:
    """Refuse a preset of another layout kind or family (one FastAVError line); return a warning when
    only the size differs, None when it fits."""
    if recorded.layout != target.layout:
        raise FastAVError(f"{where} was calibrated for {recorded.model} ({recorded.layout} layout), but this is "
                          f"{target.model} ({target.layout} layout), where its rule means something else: "
                          f"calibrate a preset for {target.model}")
    if recorded.family is not None and target.family is not None and recorded.family != target.family:
        raise FastAVError(f"{where} was calibrated for {recorded.model} of family {recorded.family}, but this is "
                          f"{target.model} of family {target.family}: calibrate a preset for {target.model}")
    differences = []
    if recorded.model != target.model:
        differences.append(f"model {recorded.model}, not {target.model}")
    if recorded.num_layers != target.num_layers:
        differences.append(f"{recorded.num_layers} layers, not {target.num_layers}")
    counts_positions = config.global_policy != "none" and (config.cutoff is not None or config.keep_audio > 0)
    if recorded.media_tokens != target.media_tokens and counts_positions:  # a frame rule fits any clip length
        differences.append(f"{recorded.media_tokens} video and audio tokens, not {target.media_tokens} (its rule "
                           "counts positions)")
    if not differences:
        return None
    return f"{where} was calibrated for another size of this model ({'; '.join(differences)}): using it anyway"


def parse_preset(data: bytes, where: str, num_layers: int, target: PresetTarget | None = None) -> Preset:
    """A validated preset from a file's bytes, or one FastAVError line naming `where`.

    target: what it is applied to; a preset for another layout kind or family is refused, one for
    another size of the same model gets `Preset.warning`. None: no check (reading it back).
    """
    value = parse_json(data, where)
    if not isinstance(value, dict) or value.get("format") != PRESET_FORMAT:
        raise FastAVError(f"{where} is not a fastav-export preset (no \"format\": \"{PRESET_FORMAT}\"): "
                          "write one with `fastav-export calibrate`")
    version = value.get("format_version")
    # bool is an int in Python, and 2.0 == 2: only the integer itself is this format.
    if not is_int(version) or version != PRESET_VERSION:
        raise FastAVError(f"{where} has preset format {version!r} (format_version); this fastav-export reads "
                          f"{PRESET_VERSION}: calibrate again")
    unknown = sorted(set(value) - set(DOCUMENT_KEYS))
    if unknown:
        raise FastAVError(f"{where} has unknown keys {unknown}: allowed are {', '.join(DOCUMENT_KEYS)}")
    recorded = PresetTarget.from_json(value.get("target"), where)
    provenance = value.get("provenance", {})
    if not isinstance(provenance, dict):
        raise FastAVError(f"{where}: provenance is {type(provenance).__name__}, expected an object")
    try:
        config = PruningConfig.from_dict(value.get("pruning")).validate(num_layers, name=lambda key: key)
    except (FastAVError, TypeError) as exc:
        raise FastAVError(f"{where}: the pruning settings are invalid ({exc})") from None
    warning = None if target is None else match_target(recorded, config, target, where)
    return Preset(config, recorded, provenance, "", hashlib.sha256(data).hexdigest(), warning)


def load_preset(path: str | Path, num_layers: int, target: PresetTarget | None = None) -> Preset:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FastAVError(f"--preset {path}: cannot read it ({exc.strerror or exc})") from None
    return replace(parse_preset(data, f"--preset {path}", num_layers, target), path=str(path.resolve()))

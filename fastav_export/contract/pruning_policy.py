"""Pruning policies named in text: `eval --policies` and the Python API's `pruning=` argument.

    dense                                  pruning off (every layer sees every token)
    preset                                 the engine's own settings (or the model's paper-like preset)
    rollout  |  rollout:B                  the rollout cut, keeping B candidates (300, 0.3 or 30%)
    positional:cutoff=N,keep_audio=K       the positional cut with these rules (unset ones from the preset)
    keep_chunks:F                          the positional cut keeping the first F frames / 2 s chunks only
    preset:FILE                            a preset file from `fastav-export calibrate --out`

Any policy but `dense` and `preset:FILE` also takes `fine_ratio=P`, `alpha=A` and
`rollout_queries=Q` (`rollout:0.3,fine_ratio=0.1`). In a list, a `key=value` piece continues the
policy before it, so `dense,positional:cutoff=10,keep_audio=3,rollout:0.2` is three policies.
Each policy starts from the engine's settings and overrides what it names (`PruningConfig.with_overrides`,
so every value is checked as the command-line flags are).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import FastAVError
from .budget import parse_budget
from .pruning_config import ROLLOUT_QUERIES, PruningConfig

KINDS = ("dense", "preset", "rollout", "positional", "keep_chunks")
# key -> the PruningConfig setting it sets (keep_chunks is the command line's --keep-chunks alias)
KEYS = {"cutoff": "cutoff", "keep_audio": "keep_audio", "keep_frames": "keep_frames", "keep_chunks": "keep_frames",
        "budget": "global_budget", "fine_ratio": "fine_ratio", "alpha": "alpha", "rollout_queries": "rollout_queries"}
POSITIONAL_KEYS = ("cutoff", "keep_audio", "keep_frames", "keep_chunks")
GENERAL_KEYS = ("fine_ratio", "alpha", "rollout_queries")
HOW = "write e.g. dense,preset,rollout:0.3,positional:cutoff=20,keep_audio=3,keep_chunks:2 or preset:FILE"


@dataclass(frozen=True)
class PruningPolicy:
    """One named policy. name: as written (stripped), the key of its results; kind: one of KINDS or
    "file"; overrides: PruningConfig setting -> value; preset_file: the file of `preset:FILE`."""

    name: str
    kind: str
    overrides: dict = field(default_factory=dict)
    preset_file: Path | None = None

    def config(self, base: PruningConfig, num_layers: int, preset_target=None) -> PruningConfig:
        """The resolved config: `base` (the engine's) with this policy's settings. K stays the base's,
        since an engine's graphs are split there. preset_target: what a `preset:FILE` must fit
        (`contract.preset.PresetTarget`)."""
        if self.kind == "dense":
            return replace(PruningConfig.dense(), global_layer=base.global_layer).resolve(num_layers)
        if self.kind == "file":
            from .preset import load_preset

            loaded = load_preset(self.preset_file, num_layers, preset_target)
            start = replace(loaded.config, global_layer=base.global_layer)
            return start.resolve(num_layers, _name(self.name))
        return base.with_overrides(dict(self.overrides), num_layers, _name(self.name))


def _name(policy: str):
    """How a setting is named in an error: `fine_ratio of policy 'rollout:0.3,fine_ratio=2'`."""
    return lambda setting: f"{setting} of policy {policy!r}"


def parse_policy(text: str) -> PruningPolicy:
    """One policy from its text (see the module docstring); one FastAVError line if it is not one."""
    if not isinstance(text, str):
        raise FastAVError(f"a pruning policy is text, not {type(text).__name__}: {HOW}")
    name = text.strip()
    head, _, rest = name.partition(":")
    kind = head.strip()
    if kind == "preset" and rest.strip():
        return PruningPolicy(name, "file", preset_file=Path(rest.strip()))
    if kind not in KINDS:
        raise FastAVError(f"unknown pruning policy {name!r}: {HOW}")
    params = [piece.strip() for piece in rest.split(",")] if rest.strip() else []
    if kind in ("dense", "preset") and params:
        raise FastAVError(f"policy {name!r}: {kind} takes no settings ({HOW})")
    overrides: dict = {"global_policy": "rollout" if kind == "rollout" else "positional"} if kind not in (
        "dense", "preset") else {}
    if kind == "keep_chunks":  # only the chunk rule: no position cutoff, no audio head
        overrides.update(cutoff=None, keep_audio=0)
    given: set[str] = set()
    for index, piece in enumerate(params):
        key, equals, value = piece.partition("=")
        key, value = key.strip(), value.strip()
        if not equals:  # a bare value: the budget of rollout, the count of keep_chunks
            if index != 0 or kind not in ("rollout", "keep_chunks"):
                raise FastAVError(f"policy {name!r}: {piece!r} is not a key=value setting ({HOW})")
            key, value = ("budget" if kind == "rollout" else "keep_chunks"), piece
        allowed = GENERAL_KEYS + (POSITIONAL_KEYS if kind in ("positional", "keep_chunks") else ("budget",))
        if key not in allowed:
            raise FastAVError(f"policy {name!r}: unknown setting {key!r} for {kind} (use {', '.join(allowed)})")
        setting = KEYS[key]
        if setting in given:
            raise FastAVError(f"policy {name!r} sets {key} twice")
        given.add(setting)
        overrides[setting] = _value(name, key, value)
    return PruningPolicy(name, kind, overrides)


def _value(policy: str, key: str, text: str):
    """A setting's value from text; ranges are checked later by `PruningConfig.with_overrides`."""
    if key == "budget":
        return parse_budget(text, f"the budget of policy {policy!r}")
    if key == "rollout_queries":
        if text not in ROLLOUT_QUERIES:
            raise FastAVError(f"policy {policy!r}: rollout_queries {text!r} is not one of {', '.join(ROLLOUT_QUERIES)}")
        return text
    if key in ("fine_ratio", "alpha"):
        try:
            return float(text)
        except ValueError:
            raise FastAVError(f"policy {policy!r}: {key} {text!r} is not a number") from None
    if not text.isascii() or not text.isdigit():
        raise FastAVError(f"policy {policy!r}: {key} {text!r} is not a whole number >= 0")
    return int(text)


def parse_policies(text: str) -> list[PruningPolicy]:
    """A comma-separated list of policies; a `key=value` piece belongs to the policy before it.
    Empty lists, empty pieces and repeated names are refused in one line."""
    if not isinstance(text, str) or not text.strip():
        raise FastAVError(f"no pruning policies given: {HOW}")
    groups: list[str] = []
    for piece in text.split(","):
        stripped = piece.strip()
        if not stripped:
            raise FastAVError(f"empty policy in {text!r}: {HOW}")
        continues = "=" in stripped and ":" not in stripped.partition("=")[0]
        if continues:
            if not groups:
                raise FastAVError(f"{stripped!r} continues no policy: {HOW}")
            groups[-1] += "," + stripped
        else:
            groups.append(stripped)
    policies = [parse_policy(group) for group in groups]
    seen: set[str] = set()
    for policy in policies:
        if policy.name in seen:
            raise FastAVError(f"policy {policy.name!r} is given twice")
        seen.add(policy.name)
    return policies

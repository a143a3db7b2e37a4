"""The pruning hyper-parameters: one object, validated, written into engine directories.

Numbers that decide which tokens are kept (K, P, alpha, budgets) live here and
nowhere else. `resolve()` fills the model-dependent defaults (K = L/2, the model's
paper-like positional preset) so the stored config is explicit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace

from ..errors import FastAVError
from .budget import check_budget, describe_budget, parse_budget

GLOBAL_POLICIES = ("positional", "rollout", "none")
ROLLOUT_QUERIES = ("all", "text", "last")


def cli_flag(setting: str) -> str:
    """The command-line flag of a setting: fine_ratio -> --fine-ratio."""
    return "--" + setting.replace("_", "-")


def is_int(value) -> bool:
    """An int that is not a bool (bool is an int in Python: `true` must not read as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class PruningConfig:
    """FastAV pruning settings (see docs/semantics.md).

    global_layer:   K, the first layer that sees the globally pruned set (None: L // 2).
    fine_ratio:     P, share of the remaining candidates dropped after each layer K..L-2.
    alpha:          rollout residual weight, A~ = alpha * A + (1 - alpha) * I.
    global_policy:  "positional" (static rule), "rollout" (per input) or "none".
    global_budget:  rollout only: an int is a count of candidates to keep, a float in
                    (0, 1) a fraction of the candidates (rounded up); a whole float such
                    as 1.0 is refused (see budget.py). None: keep as many as the
                    positional rule would, so both policies cost the same FLOPs.
    cutoff:         positional: keep candidates whose original position is below this.
    keep_audio:     positional: also keep the first k audio tokens.
    keep_frames:    positional: also keep every candidate of frames 0..F-1 (a segment's `frame`: video-SALMONN 2's
                    frames, Qwen2.5-Omni's 2 s chunks; `--keep-chunks` on the command line).
    rollout_queries: rows averaged into the rollout importance: "all", "text" or "last".
    """

    global_layer: int | None = None
    fine_ratio: float = 0.2
    alpha: float = 0.5
    global_policy: str = "positional"
    global_budget: int | float | None = None
    cutoff: int | None = None
    keep_audio: int = 0
    keep_frames: int = 0
    rollout_queries: str = "all"

    @classmethod
    def dense(cls) -> "PruningConfig":
        """No pruning at all: every layer processes every token."""
        return cls(global_policy="none", fine_ratio=0.0)

    @property
    def prunes(self) -> bool:
        return self.global_policy != "none" or self.fine_ratio > 0

    def validate(self, num_layers: int, name: Callable[[str], str] | None = None) -> "PruningConfig":
        """Raise a one-line FastAVError for any out-of-range or mistyped value; return self.

        name: how the error names a setting (default: its command-line flag, `--fine-ratio`;
        the Triton request parser names request fields instead).
        """
        name = name or cli_flag
        K = self.global_layer
        if K is not None and (not is_int(K) or not 1 <= K <= num_layers - 1):
            raise FastAVError(
                f"{name('global_layer')} {K!r} is outside 1..{num_layers - 1} (the decoder has {num_layers} layers)"
            )
        # `not lo <= x < hi` is also true for NaN, so NaN is refused with the range.
        if not _is_number(self.fine_ratio) or not 0.0 <= self.fine_ratio < 1.0:
            raise FastAVError(f"{name('fine_ratio')} {self.fine_ratio!r} is outside [0, 1)")
        if not _is_number(self.alpha) or not 0.0 <= self.alpha <= 1.0:
            raise FastAVError(f"{name('alpha')} {self.alpha!r} is outside [0, 1]")
        if not isinstance(self.global_policy, str) or self.global_policy not in GLOBAL_POLICIES:
            raise FastAVError(
                f"unknown {name('global_policy')} {self.global_policy!r}: use one of {', '.join(GLOBAL_POLICIES)}"
            )
        if not isinstance(self.rollout_queries, str) or self.rollout_queries not in ROLLOUT_QUERIES:
            raise FastAVError(
                f"unknown {name('rollout_queries')} {self.rollout_queries!r}: use one of {', '.join(ROLLOUT_QUERIES)}"
            )
        if self.global_budget is not None:
            check_budget(self.global_budget, name("global_budget"))
        for setting in ("cutoff", "keep_audio", "keep_frames"):
            value = getattr(self, setting)
            # bool is an int in Python: `{"cutoff": true}` must not mean cutoff 1.
            if value is not None and (not is_int(value) or value < 0):
                raise FastAVError(f"{name(setting)} {value!r} must be an integer >= 0")
        return self

    def resolve(self, num_layers: int, name: Callable[[str], str] | None = None) -> "PruningConfig":
        """Validated copy with K filled in (L // 2 when unset)."""
        self.validate(num_layers, name)
        if self.global_layer is None:
            return replace(self, global_layer=num_layers // 2)
        return self

    def with_overrides(self, overrides: dict, num_layers: int,
                       name: Callable[[str], str] | None = None) -> "PruningConfig":
        """This config with `overrides` (setting -> value) applied, validated and resolved.

        Refuses an override that would be silently ignored: a budget is a rollout setting,
        so a budget with another policy is a mistake, not a no-op.
        """
        name = name or cli_flag
        if isinstance(overrides.get("global_budget"), str):  # "300", "0.3", "30%": the command line's form
            overrides = {**overrides, "global_budget": parse_budget(overrides["global_budget"], name("global_budget"))}
        config = replace(self, **overrides).resolve(num_layers, name)
        if overrides.get("global_budget") is not None and config.global_policy != "rollout":
            raise FastAVError(f"{name('global_budget')} applies to the rollout policy only, but the policy is "
                              f"{config.global_policy!r}: set {name('global_policy')} rollout or drop "
                              f"{name('global_budget')}")
        return config

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PruningConfig":
        if not isinstance(data, dict):
            raise FastAVError(f"pruning settings must be a JSON object, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise FastAVError(f"unknown pruning settings {sorted(unknown)}: rebuild with this fastav-export version")
        return cls(**data)

    def describe(self) -> str:
        if not self.prunes:
            return "pruning off"
        if self.global_policy == "positional":
            rules = [f"cutoff {self.cutoff}" if self.cutoff is not None else None,
                     f"first {self.keep_audio} audio" if self.keep_audio else None,
                     f"first {self.keep_frames} frames" if self.keep_frames else None]
            glob = "positional (" + (", ".join(r for r in rules if r) or "keep no candidates") + ")"
        elif self.global_policy == "rollout":
            budget = "preset-equivalent count" if self.global_budget is None else describe_budget(self.global_budget)
            glob = f"rollout (budget {budget}, alpha {self.alpha}, {self.rollout_queries} query rows)"
        else:
            glob = "none"
        return f"global {glob} before layer {self.global_layer}, fine ratio {self.fine_ratio}"


"""Timing rounds: prefill and greedy decode steps on any backend, with each round's peak RSS.

What `fastav-export bench` and `benchmarks/peers.py` measure, so that every figure
comes from the same code: a round is one prefill of the whole prompt followed by
`decode_steps` greedy decode steps, timed with `time.perf_counter` (on a GPU, after
synchronising). Peak RSS is the process's resident-set high-water mark during the
round: Linux lets a process reset it (writing 5 to /proc/self/clear_refs), so each
round reports its own peak; where that is not possible it is the process's peak so far.
"""

from __future__ import annotations

import resource
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_rss() -> bool:
    """Start a new high-water mark for this process's RSS; False where the OS does not allow it."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _status_mb(field: str) -> float | None:
    """A memory field of /proc/self/status ("VmRSS", "VmHWM") in MiB; None where it cannot be read."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def current_rss_mb() -> float:
    """The process's resident set now, in MiB (0.0 where /proc is not there)."""
    return _status_mb("VmRSS") or 0.0


def peak_rss_mb() -> float:
    """The process's RSS high-water mark in MiB (since the last reset, where resets work)."""
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


@dataclass
class Round:
    prefill_ms: float
    decode_ms_per_token: float
    peak_rss_mb: float
    tokens: list[list[int]]


@dataclass
class Series:
    """Rounds of one variant."""

    rounds: list[Round] = field(default_factory=list)

    def values(self, name: str) -> list[float]:
        return [getattr(r, name) for r in self.rounds]

    def stats(self, name: str) -> tuple[float, float, float]:
        """(median, min, max) of a Round field over the rounds."""
        values = self.values(name)
        return statistics.median(values), min(values), max(values)

    def to_json(self) -> dict:
        return {"prefill_ms": self.values("prefill_ms"), "decode_ms_per_token": self.values("decode_ms_per_token"),
                "peak_rss_mb": max(self.values("peak_rss_mb")), "peak_rss_mb_per_round": self.values("peak_rss_mb")}


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def run_round(backend, inputs_embeds: torch.Tensor, decode_steps: int) -> Round:
    """One prefill of inputs_embeds [B, N, D] and `decode_steps` greedy steps on `backend`.

    backend: anything with `prefill(embeds, max_new_tokens)` and `decode(ids)` (every
    fastav-export backend; peers are wrapped to look the same).
    """
    device = getattr(backend, "device", "cpu")
    reset_peak_rss()
    _sync(device)
    start = time.perf_counter()
    out = backend.prefill(inputs_embeds, max_new_tokens=decode_steps + 1)
    ids = out.logits.argmax(dim=-1)
    _sync(device)
    prefill = time.perf_counter() - start
    tokens = [ids.cpu()]
    start = time.perf_counter()
    for _ in range(decode_steps):
        ids = backend.decode(ids).argmax(dim=-1)
        tokens.append(ids)
    _sync(device)
    decode = time.perf_counter() - start
    generated = torch.stack([t.cpu() for t in tokens], dim=1).tolist()
    return Round(prefill * 1e3, decode * 1e3 / max(decode_steps, 1), peak_rss_mb(), generated)


def format_stats(series: Series, name: str, digits: int = 1) -> str:
    median, low, high = series.stats(name)
    return f"{median:.{digits}f} [{low:.{digits}f}-{high:.{digits}f}]"

"""argparse value types for counts, seeds, thread counts and tolerances.

A bad value is refused by the parser itself, before any work, as one line
(`error: argument --batch: ...`), instead of surfacing later as a traceback (a seed
too large for torch's generator), a silent default (`--max-new-tokens 0` read as
"unset") or a wrong answer (`--atol nan` passes every comparison).
"""

from __future__ import annotations

import argparse
import math
import os

# torch.Generator.manual_seed and numpy's default_rng both take any seed in [0, 2**63).
MAX_SEED = 2**63 - 1


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_int(text: str) -> int:
    """An integer >= 1 (counts: batch rows, iterations, tokens, instances)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be an integer >= 1")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be an integer >= 0")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (sizes such as a memory budget in MiB)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0")
    return value


def seed(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..2**63-1, the seeds torch and numpy accept")
    return value


def cpu_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def thread_count(text: str) -> int:
    """0 (all cores) or 1..cores: more intra-op threads than cores only slows ONNX Runtime down."""
    value = _int(text)
    cores = cpu_cores()
    if not 0 <= value <= cores:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..{cores}: this machine has {cores} cores "
                                         "(0 uses all of them; more threads than cores only slow it down)")
    return value


def tolerance(text: str) -> float:
    """A finite number >= 0: NaN compares false with everything, so a NaN tolerance would pass anything."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be a finite number >= 0")
    return value


MAX_CLIP_SECONDS = 24 * 3600.0  # a day of video: far beyond any model's positions, and still a float


def _seconds(text: str, most: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 < value <= most:
        raise argparse.ArgumentTypeError(f"{text} must be a number of seconds in (0, {most:g}]")
    return value


def clip_seconds(text: str) -> float:
    """A clip's duration: a finite number of seconds in (0, one day]."""
    return _seconds(text, MAX_CLIP_SECONDS)


def utf8_text(text: str) -> str:
    """Text that is valid UTF-8. On Linux, argv bytes that are not UTF-8 arrive as lone surrogates
    (Python's surrogateescape); a tokenizer cannot encode them and fails deep inside with a traceback."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise argparse.ArgumentTypeError(f"the text is not valid UTF-8 (byte {exc.start} of it cannot be decoded): "
                                         "pass UTF-8 text") from None
    return text


def port_number(text: str) -> int:
    """A TCP port to listen on: 0 (any free port) to 65535."""
    value = _int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port: give 0..65535")
    return value


def host_port(text: str) -> str:
    """HOST:PORT of a server to connect to (`[::1]:8001` for an IPv6 address), port 1..65535; returned as given."""
    host, separator, port = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if not separator or not host or any(c.isspace() for c in text) or (":" in host and not bracketed) \
            or not (port.isascii() and port.isdigit() and len(port) <= 5) or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (e.g. localhost:8001, [::1]:8001), port 1..65535")
    return text

"""Host memory: refuse an allocation that cannot fit before making it.

Sizes that users control (`--batch`, `--inputs`, a layout's length, a checkpoint's
dimensions, an .npy header) multiply into allocations; one typo can ask for terabytes.
Python reports that as a MemoryError traceback at best, or the kernel's OOM killer
ends the process (and maybe others) at worst, so every such size is checked here first
against what the machine can give: MemAvailable of /proc/meminfo, or the free pages of
`os.sysconf`, lowered to the room left under the cgroup's memory.max in a container.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import FastAVError

CGROUP = Path("/sys/fs/cgroup")


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _cgroup_room() -> int | None:
    try:
        limit = (CGROUP / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((CGROUP / "memory.current").read_text())
    except (OSError, ValueError):
        return None


def available_bytes() -> int | None:
    """Bytes this process can still allocate without swapping; None where the OS does not say."""
    known = [value for value in (_meminfo_available(), _cgroup_room()) if value is not None]
    return min(known) if known else None


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(count) < 1024 or unit == "PiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def check_fits(nbytes: int, what: str, advice: str) -> None:
    """One-line FastAVError when `nbytes` exceed the available memory.

    what: the allocation, e.g. "--batch 1000000 (embeddings and KV buffers)";
    advice: what to change, e.g. "use a smaller --batch".
    """
    available = available_bytes()
    if available is not None and nbytes > available:
        raise FastAVError(f"{what} needs about {format_bytes(nbytes)} of memory but {format_bytes(available)} "
                          f"are available: {advice}")

"""Peak resident memory of a process and everything below it (a tritonserver and its python backend stubs).

Read from /proc (Linux), sampled by a thread: `with PeakRss(pid) as rss: ...; rss.peak_mib`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

POLL_S = 0.25


def _parent_pid(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2:].split()[1])  # after "(command name)", which may hold spaces


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def process_tree_rss_mib(root: int) -> float:
    """RSS of `root` and every process below it (the python backend stubs are the server's children)."""
    parents = {int(entry): _parent_pid(int(entry)) for entry in os.listdir("/proc") if entry.isdigit()}
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(_rss_kib(pid) for pid in tree) / 1024


class PeakRss:
    """Samples the process tree's RSS every POLL_S seconds while in its `with` block; `.peak_mib`."""

    def __init__(self, root: int):
        self.root, self.peak_mib = root, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            self.peak_mib = max(self.peak_mib, process_tree_rss_mib(self.root))
            if self._stop.wait(POLL_S):
                return

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

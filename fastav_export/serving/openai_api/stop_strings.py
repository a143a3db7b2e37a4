"""Stop strings on streamed text: cut the answer before the first one, without sending any part of it.

"First" is the stop string that completes first as the text grows (the earliest end; of two ending
together, the one that starts earlier), because that is when a generator sees it and stops. A rule
by earliest start would depend on text not yet generated ("EDD" with stops "D" and "EDD").

A stop string may arrive split over several pieces ("ST" then "OP"), so the scanner holds back
the end of the text that could still begin one and sends it only once it cannot. The pieces it
returns, joined, are always the whole text cut before its first stop string (`cut_at_stop`).
"""

from __future__ import annotations


def cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """(text before the stop string that completes first, whether one was found)."""
    found = [(at + len(stop), at) for stop in stops if (at := text.find(stop)) >= 0]
    return (text[:min(found)[1]], True) if found else (text, False)


class StopScanner:
    """feed(piece) -> the text safe to send now; `stopped` once a stop string was seen; flush() -> the held tail."""

    def __init__(self, stops: tuple[str, ...]):
        self.stops = stops
        self.stopped = False
        self._held = ""

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        text = self._held + piece
        cut, self.stopped = cut_at_stop(text, self.stops)
        if self.stopped:
            self._held = ""
            return cut
        keep = self._partial_stop_length(text)
        self._held = text[len(text) - keep:]
        return text[:len(text) - keep]

    def flush(self) -> str:
        """The held-back tail, at the end of the answer (it began a stop string that never completed)."""
        tail, self._held = self._held, ""
        return tail

    def _partial_stop_length(self, text: str) -> int:
        """Length of the longest end of `text` that is the beginning (not the whole) of a stop string."""
        longest = 0
        for stop in self.stops:
            for length in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:length]):
                    longest = length
                    break
        return longest

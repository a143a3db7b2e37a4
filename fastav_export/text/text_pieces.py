"""Streaming text: the new piece of an answer each time its text grows by a token."""

from __future__ import annotations


def new_text(now: str, sent: str, final: bool = False) -> tuple[str, str]:
    """(the piece to stream, the text sent after it) when the answer so far reads `now`.

    A byte-level token may end mid-character, which decodes to U+FFFD until its next bytes come:
    that tail is held back (streamed once it settles, or with the final piece), so the pieces
    joined always equal the final text.
    """
    stable = now if final else now.rstrip("\ufffd")
    if not stable.startswith(sent):
        return "", sent
    return stable[len(sent):], stable

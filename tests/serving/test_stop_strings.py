"""Stop strings cut streamed text exactly where they cut the whole text, however the pieces split it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fastav_export.serving.openai_api.stop_strings import StopScanner, cut_at_stop

from ..fuzz.contract import FUZZ


def streamed(pieces, stops) -> tuple[str, bool]:
    scanner = StopScanner(tuple(stops))
    sent = "".join(scanner.feed(piece) for piece in pieces)
    return (sent if scanner.stopped else sent + scanner.flush()), scanner.stopped


def test_examples():
    assert cut_at_stop("one. two. END three", ("END", ".")) == ("one", True)
    assert cut_at_stop("no stop here", ("END",)) == ("no stop here", False)
    assert cut_at_stop("EDD", ("D", "EDD")) == ("E", True)  # "D" completes first, as a generator sees it
    assert streamed(["ED", "D"], ["D", "EDD"]) == ("E", True)
    assert streamed(["one E", "N", "D two"], ["END"]) == ("one ", True)
    assert streamed(["one E", "N"], ["END"]) == ("one EN", False)  # a stop string that never completed
    scanner = StopScanner(("END",))
    assert scanner.feed("abcE") == "abc" and scanner.feed("x") == "Ex"  # held back only while it could match


@FUZZ
@given(text=st.text(alphabet="abE ND", max_size=30), cuts=st.lists(st.integers(0, 30), max_size=8),
       stops=st.lists(st.text(alphabet="abEND", min_size=1, max_size=4), max_size=4))
def test_any_split_sends_the_text_cut_before_the_first_stop_string(text, cuts, stops):
    bounds = sorted({0, len(text), *(min(c, len(text)) for c in cuts)})
    pieces = [text[a:b] for a, b in zip(bounds, bounds[1:])]
    assert streamed(pieces, stops) == cut_at_stop(text, tuple(stops))

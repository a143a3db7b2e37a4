"""The contract every parser of user input keeps, and the JSON values the property tests draw from.

A parser of user input either accepts the input or raises `FastAVError` with a one-line
message; any other exception is a bug. Example counts are kept small (`EXAMPLES`) so the
whole property suite costs seconds of the CI budget, with no deadline (2 shared cores).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from fastav_export.errors import FastAVError

EXAMPLES = 150
# Module-scoped fixtures (a tiny engine) are fine here: the tests never modify them.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers() | st.integers(-10, 300)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
json_values = st.recursive(scalars, lambda children: st.lists(children, max_size=5)
                           | st.dictionaries(st.text(max_size=10), children, max_size=5), max_leaves=25)


def accepts_or_refuses(call):
    """call() -> its result, or None when it raised a one-line FastAVError (anything else propagates)."""
    try:
        return call()
    except FastAVError as exc:
        message = str(exc)
        assert message and "\n" not in message, repr(message)
        return None

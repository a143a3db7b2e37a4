"""Polygraphy is optional: import it on first use, with an error that names our extra."""

from __future__ import annotations

from ..errors import MissingDependencyError

EXTRA = "compare"


def require_polygraphy(feature: str = "accuracy comparison") -> None:
    """Raise a one-line FastAVError naming `pip install fastav-export[compare]` when Polygraphy is missing."""
    try:
        import polygraphy  # noqa: F401
    except ImportError:
        raise MissingDependencyError("polygraphy", EXTRA, feature) from None

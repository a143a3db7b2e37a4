"""`with` support for the objects that hold sessions, engines, CUDA graphs or KV buffers."""

from __future__ import annotations


class Closing:
    """Subclasses implement `close()`; `with obj:` closes it on the way out (as Polygraphy's runners do)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

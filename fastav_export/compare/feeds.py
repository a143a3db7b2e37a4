"""The feed dicts a comparison runs: seeded synthetic embeddings, or Polygraphy's input JSON.

Each feed dict is {"inputs_embeds": [B, N, D] float32}. Synthetic feeds use the same
embeddings as `fastav-export run ENGINE_DIR --seed S --batch B` (text rows from the
engine's own embedding table, noise for the audio-visual tokens), seeds S, S+1, ...
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..contract.layout import TokenLayout
from ..contract.synthetic_inputs import synthetic_embeds
from ..engine.manifest import EngineManifest
from ..errors import FastAVError
from ..runtime.embedding import embedding_table
from ..user_io.embeds_file import require_finite
from ..user_io.json_input import parse_json

INPUT = "inputs_embeds"  # the one input of every pipeline runner (runners.py)


def synthetic_feeds(manifest: EngineManifest, layout: TokenLayout, iterations: int, batch: int,
                    seed: int) -> list[OrderedDict]:
    table = embedding_table(manifest)
    return [OrderedDict({INPUT: synthetic_embeds(table, layout, batch, seed + i).numpy()})
            for i in range(iterations)]


def load_feeds(path: Path, layout: TokenLayout, hidden_size: int) -> list[OrderedDict]:
    """Polygraphy's `--load-inputs` format: a JSON list of feed dicts (polygraphy.json.save_json)."""
    from polygraphy.exception import PolygraphyException
    from polygraphy.json import from_json

    if not Path(path).is_file():
        raise FastAVError(f"--load-inputs {path} does not exist: write one with `fastav-export compare "
                          "--save-inputs FILE` or Polygraphy's `--save-inputs`")
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise FastAVError(f"cannot read --load-inputs {path}: {exc.strerror or exc}") from None
    parse_json(text, f"--load-inputs {path}")  # one line for undecodable, malformed or too deeply nested JSON
    try:
        feeds = from_json(text.decode("utf-8"))
    except (PolygraphyException, ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise FastAVError(f"--load-inputs {path} is not Polygraphy input JSON "
                          f"({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})") from None
    if not isinstance(feeds, list) or not feeds:
        raise FastAVError(f"--load-inputs {path} must hold a non-empty list of feed dicts")
    for index, feed in enumerate(feeds):
        array = feed.get(INPUT) if isinstance(feed, dict) else None
        if not isinstance(array, np.ndarray) or array.dtype != np.float32 or array.ndim != 3 \
                or array.shape[1:] != (layout.n_tokens, hidden_size):
            shape = list(array.shape) if isinstance(array, np.ndarray) else None
            raise FastAVError(f"--load-inputs {path}: feed {index} needs {INPUT} float32 [B, {layout.n_tokens}, "
                              f"{hidden_size}], got {shape}")
        require_finite(array, f"--load-inputs {path}: feed {index}'s {INPUT}")
    return feeds

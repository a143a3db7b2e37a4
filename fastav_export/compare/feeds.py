"""The feed dicts a comparison runs: seeded synthetic embeddings, or Polygraphy's input JSON.

Each feed dict is {"inputs_embeds": [B, N, D] float32}. Synthetic feeds use the same
embeddings as `fastav-export run ENGINE_DIR --seed S --batch B` (text rows from the
engine's own embedding table, noise for the audio-visual tokens), seeds S, S+1, ...
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..engine_dir import EngineManifest, embedding_table
from ..errors import FastAVError
from ..layout import TokenLayout
from ..synthetic_inputs import synthetic_embeds
from .runners import INPUT


def synthetic_feeds(manifest: EngineManifest, layout: TokenLayout, iterations: int, batch: int,
                    seed: int) -> list[OrderedDict]:
    table = embedding_table(manifest)
    return [OrderedDict({INPUT: synthetic_embeds(table, layout, batch, seed + i).numpy()})
            for i in range(iterations)]


def load_feeds(path: Path, layout: TokenLayout, hidden_size: int) -> list[OrderedDict]:
    """Polygraphy's `--load-inputs` format: a JSON list of feed dicts (polygraphy.json.save_json)."""
    from polygraphy.exception import PolygraphyException
    from polygraphy.json import load_json

    if not Path(path).is_file():
        raise FastAVError(f"--load-inputs {path} does not exist: write one with `fastav-export compare "
                          "--save-inputs FILE` or Polygraphy's `--save-inputs`")
    try:
        feeds = load_json(str(path), description="input data")
    except (PolygraphyException, ValueError, TypeError, KeyError) as exc:
        raise FastAVError(f"--load-inputs {path} is not Polygraphy input JSON ({exc})") from None
    if not isinstance(feeds, list) or not feeds:
        raise FastAVError(f"--load-inputs {path} must hold a non-empty list of feed dicts")
    for index, feed in enumerate(feeds):
        array = feed.get(INPUT) if isinstance(feed, dict) else None
        if not isinstance(array, np.ndarray) or array.dtype != np.float32 or array.ndim != 3 \
                or array.shape[1:] != (layout.n_tokens, hidden_size):
            shape = list(array.shape) if isinstance(array, np.ndarray) else None
            raise FastAVError(f"--load-inputs {path}: feed {index} needs {INPUT} float32 [B, {layout.n_tokens}, "
                              f"{hidden_size}], got {shape}")
    return feeds

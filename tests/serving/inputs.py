"""Seeded serving requests and their in-process expectation (shared by the serving tests)."""

from __future__ import annotations

import numpy as np

from fastav_export.cli import main as cli_main
from fastav_export.contract.layout import KIND_CODES


def make_request(manifest, placeholder_id: int, seed: int = 0, mm_dtype=np.float32):
    """(input_ids [N] int64, mm_embeds [M, D]) over the engine's default layout."""
    rng = np.random.default_rng(seed)
    multimodal = manifest.layout.kind_codes() != KIND_CODES["text"]
    # Text ids from the vocabulary without the placeholder (Qwen2.5-Omni's `<|VIDEO|>` is a real token id).
    text = rng.integers(0, manifest.dims.vocab_size - 1, multimodal.size)
    text = np.where((0 <= placeholder_id) & (text >= placeholder_id), text + 1, text)
    ids = np.where(multimodal, placeholder_id, text)
    embeds = rng.standard_normal((int(multimodal.sum()), manifest.dims.hidden_size)).astype(mm_dtype)
    return ids.astype(np.int64), embeds


def spliced_embeds(manifest, table, input_ids, mm_embeds) -> np.ndarray:
    """[N, D] float32 built independently of the serving code: table rows, then encoder rows."""
    multimodal = manifest.layout.kind_codes() != KIND_CODES["text"]
    embeds = np.asarray(table, np.float32)[np.where(multimodal, 0, input_ids)]
    embeds[multimodal] = mm_embeds.astype(np.float32)
    return embeds


def run_command_tokens(manifest, table, input_ids, mm_embeds, max_new_tokens, tmp_path, extra=()) -> list[int]:
    """The tokens `fastav-export run ENGINE_DIR --embeds ...` prints for the same request (in process)."""
    import json

    embeds_file, out = tmp_path / "embeds.npy", tmp_path / "run.json"
    np.save(embeds_file, spliced_embeds(manifest, table, input_ids, mm_embeds))
    argv = ["run", str(manifest.path), "--embeds", str(embeds_file), "--max-new-tokens", str(max_new_tokens),
            "--json", str(out), "-q", *extra]
    assert cli_main(argv) == 0
    return json.loads(out.read_text())["tokens"][0]

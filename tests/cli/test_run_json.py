"""`run --json` writes one schema, with embeddings or with a video: the same keys, the same shapes."""

from __future__ import annotations

import json

from fastav_export.cli import main

COMMON = {"n_tokens", "layout", "kept", "tokens", "logits", "seconds", "flops_ratio"}
MEDIA_ONLY = {"text", "question", "token_ids"}  # token_ids: the deprecated flat alias of tokens[0]


def _run_json(tmp_path, name, *argv) -> dict:
    out = tmp_path / f"{name}.json"
    assert main(["run", "--model", "videollama2-tiny", "--backend", "torch", "--max-new-tokens", "3", "-q",
                 *argv, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def _check_shapes(data: dict, rows: int) -> None:
    assert isinstance(data["n_tokens"], int)
    assert sum(segment["length"] for segment in data["layout"]) == data["n_tokens"]
    assert len(data["tokens"]) == rows and all(len(ids) == 3 and all(isinstance(i, int) for i in ids)
                                               for ids in data["tokens"])
    assert len(data["logits"]) == rows and len(data["logits"][0]) == 256
    assert data["kept"] and all(len(per_row) == rows and all(isinstance(i, int) for i in per_row[0])
                                for per_row in data["kept"].values())
    assert {"prefill", "decode"} <= set(data["seconds"]) and all(v >= 0 for v in data["seconds"].values())
    assert set(data["flops_ratio"]) == {"paper", "exact_macs", "exact_macs_without_early_drop"}


def test_embeddings_and_media_runs_write_the_same_schema(tmp_path, media_clip):
    embeddings = _run_json(tmp_path, "embeddings", "--batch", "2")
    media = _run_json(tmp_path, "media", "--video", str(media_clip), "--question", "What is happening?")
    assert set(embeddings) == COMMON
    assert set(media) == COMMON | MEDIA_ONLY
    _check_shapes(embeddings, rows=2)
    _check_shapes(media, rows=1)
    assert {"media_decode", "vision_encoder", "audio_encoder"} <= set(media["seconds"])
    assert isinstance(media["text"], str) and media["question"] == "What is happening?"
    assert media["token_ids"] == media["tokens"][0]

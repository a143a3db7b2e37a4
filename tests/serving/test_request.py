"""Request validation, splicing and greedy streaming, without a server."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastav_export.errors import FastAVError
from fastav_export.models import placeholder_id_for
from fastav_export.serving.client import json_bytes
from fastav_export.serving.engine import ServedEngine

from .inputs import make_request, run_command_tokens


@pytest.fixture(scope="module")
def served(tiny_engine):
    return ServedEngine(tiny_engine("videollama2-tiny"))


def test_placeholder_ids_of_the_models():
    assert placeholder_id_for("videollama2-tiny") == -201
    assert placeholder_id_for("video-salmonn2") == -200
    assert placeholder_id_for("some-checkpoint-dir") == -200


def test_splice_uses_the_engine_table_and_mm_rows_in_order(served):
    ids, mm = make_request(served.manifest, -201, seed=3)
    request = served.parse({"input_ids": ids, "mm_embeds": mm})
    embeds = served.inputs_embeds(request)[0]
    table = served.default_backend.embedding_table().numpy()
    text = ids != -201
    np.testing.assert_array_equal(embeds[text], table[ids[text]])
    np.testing.assert_array_equal(embeds[~text], mm)


@pytest.mark.parametrize("fine_ratio", [None, 0.3])
def test_stream_equals_the_run_command(served, tmp_path, fine_ratio):
    ids, mm = make_request(served.manifest, -201, seed=1)
    inputs = {"input_ids": ids, "mm_embeds": mm, "max_new_tokens": np.array([6], np.int32)}
    extra = ()
    if fine_ratio is not None:
        inputs["fine_ratio"] = np.array([fine_ratio], np.float32)
        extra = ("--fine-ratio", str(fine_ratio))
    tokens, summary = served.generate(served.parse(inputs))
    table = served.default_backend.embedding_table().numpy()
    assert tokens == run_command_tokens(served.manifest, table, ids, mm, 6, tmp_path, extra)
    assert summary.kept_tokens.tolist() == list(served.pipeline(served.manifest.layout,
                                                                 served.parse(inputs).config).schedule.tokens)


def _bad(served, **changes):
    ids, mm = make_request(served.manifest, -201)
    inputs = {"input_ids": ids, "mm_embeds": mm, **changes}
    with pytest.raises(FastAVError) as error:
        served.parse({k: v for k, v in inputs.items() if v is not None})
    message = str(error.value)
    assert "\n" not in message
    return message


def test_malformed_requests_are_one_line_errors(served):
    ids, mm = make_request(served.manifest, -201)
    n, m = ids.size, mm.shape[0]
    assert "INT64" in _bad(served, input_ids=ids.astype(np.int32))
    assert "shape" in _bad(served, input_ids=ids[None])
    assert f"has {n - 1}" in _bad(served, input_ids=ids[:-1])
    assert "placeholder -201" in _bad(served, input_ids=np.where(ids == -201, 5, ids))
    assert "vocabulary" in _bad(served, input_ids=np.where(ids == -201, ids, 999))
    assert f"[{m}, 64]" in _bad(served, mm_embeds=mm[:-1])
    assert "FP32 or FP16" in _bad(served, mm_embeds=mm.astype(np.float64))
    assert "NaN" in _bad(served, mm_embeds=np.full_like(mm, np.nan))
    assert "missing input mm_embeds" in _bad(served, mm_embeds=None)
    assert "exceed the engine's limit" in _bad(served, max_new_tokens=np.array([1000], np.int32))
    assert "at least 1" in _bad(served, max_new_tokens=np.array([0], np.int32))
    assert "outside [0, 1)" in _bad(served, fine_ratio=np.array([1.5], np.float32))
    assert "global_layer" in _bad(served, pruning=json_bytes({"global_layer": 2}))
    assert "unknown settings" in _bad(served, pruning=json_bytes({"ratio": 2}))
    assert "not valid JSON" in _bad(served, layout=json_bytes("[{"))
    assert "UINT8" in _bad(served, layout=np.array(["[]"], dtype=object))
    long = [{"kind": "text", "length": 200}]
    assert "at most 128" in _bad(served, layout=json_bytes(long), input_ids=np.zeros(200, np.int64))


def test_request_layout_other_than_the_default(served):
    layout = [{"kind": "text", "length": 4}, {"kind": "video", "length": 10, "frame": 0},
              {"kind": "audio", "length": 6}, {"kind": "text", "length": 3}]
    ids = np.array([1, 2, 3, 4] + [-201] * 16 + [5, 6, 7], np.int64)
    mm = np.ones((16, 64), np.float16)
    request = served.parse({"input_ids": ids, "mm_embeds": mm, "layout": json_bytes(json.dumps(layout)),
                            "max_new_tokens": np.array([2], np.int32)})
    tokens, summary = served.generate(request)
    assert len(tokens) == 2 and summary.kept_tokens[0] == 23


@pytest.mark.parametrize("changes,fragment", [
    ({"fine_ratio": np.array([1.5], np.float32)}, "fine_ratio 1.5 is outside [0, 1)"),
    ({"fine_ratio": np.array([np.nan], np.float32)}, "fine_ratio nan is outside [0, 1)"),
    ({"pruning": json_bytes({"alpha": 2})}, "alpha 2 is outside [0, 1]"),
    ({"pruning": json_bytes({"cutoff": True})}, "cutoff True must be an integer"),  # was accepted as 1
    ({"pruning": json_bytes({"keep_audio": 2.0})}, "keep_audio 2.0 must be an integer"),
    ({"pruning": json_bytes({"global_budget": 5, "global_policy": "positional"})}, "applies to the rollout policy"),
    ({"pruning": json_bytes("[" * 100_000 + "]" * 100_000)}, "too deeply"),  # was a RecursionError
    ({"layout": json_bytes('{"a": ' * 50_000 + "1" + "}" * 50_000)}, "too deeply"),
    ({"pruning": json_bytes('{"alpha": NaN}')}, "not valid JSON"),
    ({"layout": np.frombuffer(b"\xff\xfe", np.uint8)}, "not UTF-8"),
])
def test_request_errors_name_request_fields(served, changes, fragment):
    """Server messages name request fields, not CLI flags (`--fine-ratio`); nested JSON is a user error,
    not an internal RecursionError; `{"cutoff": true}` is refused, not read as cutoff 1."""
    message = _bad(served, **changes)
    assert fragment in message and "--" not in "".join(message.split("`")[::2]), message


def test_stream_stops_when_the_request_is_cancelled(served):
    ids, mm = make_request(served.manifest, -201, seed=5)
    request = served.parse({"input_ids": ids, "mm_embeds": mm, "max_new_tokens": np.array([10], np.int32)})
    full = list(served.stream(request))
    streamed = []
    for token in served.stream(request, cancelled=lambda: len(streamed) >= 2):
        streamed.append(token)
    assert len(full) == 10 and streamed == full[:2]
    assert list(served.stream(request, cancelled=lambda: True)) == []

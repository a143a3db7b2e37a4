"""Token layouts: JSON form, per-position views, one-line validation errors."""

import json

import pytest

from fastav_export.contract.layout import Segment, TokenLayout
from fastav_export.errors import FastAVError
from fastav_export.models import get_model_spec


def test_json_round_trip_and_views(tmp_path):
    data = [{"kind": "text", "length": 2}, {"kind": "video", "length": 3, "frame": 0},
            {"kind": "audio", "length": 2, "frame": 0}, {"kind": "text", "length": 1}]
    path = tmp_path / "layout.json"
    path.write_text(json.dumps(data))
    layout = TokenLayout.load(path)
    assert layout.to_json() == data and layout.n_tokens == 8
    assert layout.kind_codes().tolist() == [0, 0, 1, 1, 1, 2, 2, 0]
    assert layout.frames().tolist() == [-1, -1, 0, 0, 0, 0, 0, -1]
    assert layout.candidate_mask().tolist() == [False, False, True, True, True, True, True, False]


def test_the_last_token_is_never_a_candidate():
    assert TokenLayout((Segment("text", 1), Segment("audio", 3))).candidate_mask().tolist() == [False, True, True, False]


@pytest.mark.parametrize("data,message", [
    ([], "empty"),
    ([{"kind": "image", "length": 3}], "unknown kind 'image'"),
    ([{"kind": "text", "length": 0}], "positive integers"),
    ([{"kind": "text", "length": 2.5}], "positive integers"),
    ([{"kind": "text"}], "needs the keys"),
    ([{"kind": "video", "length": 2, "frame": -1}], "frames are integers"),
    ([{"kind": "text", "length": 2, "extra": 1}], "unknown keys"),
    ({"kind": "text"}, "JSON list"),
])
def test_invalid_layouts_are_refused_in_one_line(data, message):
    with pytest.raises(FastAVError, match=message) as err:
        TokenLayout.from_json(data)
    assert "\n" not in str(err.value)


def test_unreadable_files_and_bad_json(tmp_path):
    with pytest.raises(FastAVError, match="cannot read"):
        TokenLayout.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("[{")
    with pytest.raises(FastAVError, match="not valid JSON"):
        TokenLayout.load(tmp_path / "bad.json")


def test_mismatched_token_count():
    with pytest.raises(FastAVError, match="covers 3 tokens but the input embeddings have 4"):
        TokenLayout((Segment("text", 3),)).check_matches(4)


def test_seed_model_layouts_follow_the_models():
    vl2 = get_model_spec("videollama2").default_layout()
    assert (vl2.count("video"), vl2.count("audio")) == (1352, 1496)
    assert [s.kind for s in vl2.segments[:2]] == ["text", "video"] and vl2.segments[-2].kind == "audio"
    salmonn = get_model_spec("video-salmonn2").default_layout()
    kinds = [s.kind for s in salmonn.segments]
    assert kinds[1:5] == ["video", "audio", "video", "audio"]  # interleaved per frame
    assert salmonn.segments[1].length == 182 and salmonn.segments[1].frame == 0 and salmonn.segments[3].frame == 1


@pytest.mark.parametrize("content,message", [
    (b"\xff\xfe[{\"kind\": \"text\"}]", "is not UTF-8"),  # not a UnicodeDecodeError traceback
    (b"[" * 100_000 + b"]" * 100_000, "too deeply"),  # not a RecursionError traceback
    (b'[{"kind": "text", "length": NaN}]', "not valid JSON"),
])
def test_undecodable_files_are_one_line(tmp_path, content, message):
    path = tmp_path / "layout.json"
    path.write_bytes(content)
    with pytest.raises(FastAVError, match=message) as err:
        TokenLayout.load(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("segment,message", [
    ({"kind": "video", "length": 3, "frame": 1e23}, "frames are integers"),
    ({"kind": "video", "length": 3, "frame": 10**23}, "frames are integers"),  # overflowed int64 in frames()
    ({"kind": "video", "length": 10**12}, "more than the"),
])
def test_out_of_range_numbers_are_refused(segment, message):
    with pytest.raises(FastAVError, match=message):
        TokenLayout.from_json([segment, {"kind": "text", "length": 1}])

"""Property: any dataset file, in any format, gives usable evaluation samples or one FastAVError line."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from fastav_export.evaluation.datasets import FORMATS, read_dataset

from .contract import FUZZ, accepts_or_refuses, json_values

# Valid entries of each format, then damaged (keys dropped or given arbitrary values) so that the
# checks past the first are reached and some files are accepted.
ids = st.one_of(st.integers(0, 10**6), st.integers(0, 3), st.sampled_from(["q1", " q1 ", "q2"]))
VALID = {
    "jsonl": st.fixed_dictionaries(
        {"id": ids, "video": st.sampled_from(["a.mp4", "/abs/b.mp4"]), "question": st.just("Which plays first?"),
         "answer": st.sampled_from(["guitar", "piano", "B", "b"])},
        optional={"options": st.sampled_from([["guitar", "piano"], ["piano", "guitar", "drum"]]),
                  "type": st.sampled_from(["Temporal", None]), "audio": st.just("a.wav")}),
    "music-avqa": st.tuples(
        st.fixed_dictionaries({"video_id": st.just("00000272"), "question_id": ids,
                               "type": st.sampled_from(['["Audio", "Counting"]', ["Visual", "Location"]]),
                               "anser": st.sampled_from(["two", "yes", "left"])},
                              optional={"question_deleted": st.sampled_from([0, 1])}),
        st.sampled_from([{"question_content": "Is the <Object> on the <LR>?", "templ_values": '["cello", "left"]'},
                         {"question_content": "How many?", "templ_values": "[]"}]),
    ).map(lambda parts: {**parts[0], **parts[1]}),
    "avqa": st.fixed_dictionaries(
        {"id": ids, "video_name": st.just("-HG3Omg_89c_000030"), "question_text": st.just("What happened?"),
         "multi_choice": st.just(["boat", "car", "bird", "dog"]), "answer": st.integers(0, 3)},
        optional={"question_relation": st.just("View"), "question_type": st.just("Happening")}),
    "avhbench": st.tuples(st.sampled_from(["00191", "00192"]), st.sampled_from([
        {"task": "AV Matching", "label": "Yes"}, {"task": "Audio-driven Video Hallucination", "label": "No"},
        {"task": "Video-driven Audio Hallucination", "label": "yes"}, {"task": "AV Captioning", "label": "A man."}]),
        st.just("Is the man visible?"),
    ).map(lambda parts: {"video_id": parts[0], **parts[1], "text": parts[2]}),
}
ANY = st.one_of(st.sampled_from([0, 1, 4, -1, True, None, "", " ", "B", "[]", ["x", "x"]]), json_values)


@st.composite
def entries(draw, format: str) -> dict:
    entry = dict(draw(VALID[format]))
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        key = draw(st.sampled_from(sorted(entry)))
        if draw(st.booleans()):
            del entry[key]
        else:
            entry[key] = draw(ANY)
    return entry


def documents(format: str):
    """A JSON value for the list formats, a list of per-line values for jsonl."""
    good = entries(format)
    items = st.one_of(st.lists(good, min_size=1, max_size=4), st.lists(st.one_of(good, json_values), max_size=4))
    return items if format == "jsonl" else st.one_of(items, items, json_values)


def check(samples):
    if samples is None:
        return
    assert samples and len({s.id for s in samples}) == len(samples)
    for sample in samples:
        assert sample.question and sample.answer
        assert sample.options is None or sample.answer in sample.options


@FUZZ
@given(st.sampled_from(FORMATS).flatmap(lambda f: st.tuples(st.just(f), documents(f))), st.integers(1, 3))
def test_any_document(tmp_path_factory, drawn, limit):
    format, document = drawn
    path = tmp_path_factory.mktemp("eval") / "data.jsonl"
    text = "\n".join(json.dumps(v) for v in document) if format == "jsonl" else json.dumps(document)
    path.write_text(text, encoding="utf-8")
    samples = accepts_or_refuses(lambda: read_dataset(path, format, limit=limit))
    check(samples)
    assert samples is None or len(samples) <= limit


@FUZZ
@given(st.sampled_from(FORMATS), st.one_of(st.binary(max_size=120), st.text(max_size=120).map(str.encode)))
def test_any_bytes(tmp_path_factory, format, content):
    path = tmp_path_factory.mktemp("eval") / "data.json"
    path.write_bytes(content)
    check(accepts_or_refuses(lambda: read_dataset(path, format)))

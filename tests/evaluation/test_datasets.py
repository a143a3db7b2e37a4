"""Evaluation datasets: each format's file is read into samples with filled questions, options, answers,
types and media paths; every mistake in a file or an argument is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fastav_export.errors import FastAVError
from fastav_export.evaluation.datasets import FORMATS, EvalSample, read_dataset


def write_jsonl(path: Path, entries: list, blank_lines: bool = False) -> Path:
    separator = "\n\n" if blank_lines else "\n"
    path.write_text(separator.join(json.dumps(entry) for entry in entries) + "\n", encoding="utf-8")
    return path


def write_json(path: Path, value) -> Path:
    path.write_text(json.dumps(value, indent=1), encoding="utf-8")
    return path


def refusal(call) -> str:
    """The one-line message of the FastAVError `call()` raises."""
    with pytest.raises(FastAVError) as caught:
        call()
    message = str(caught.value)
    assert message and "\n" not in message
    return message


JSONL = [
    {"id": 7, "video": "clips/a.mp4", "question": "Which instrument plays first?",
     "options": ["guitar", "piano", "drum"], "answer": "B", "type": "Temporal", "audio": "a.wav"},
    {"id": "q2", "video": "/abs/b.mp4", "question": "Is anyone singing?", "answer": "yes", "options": None},
    {"id": "q3", "video": "c.mp4", "question": "What plays?", "options": ["guitar", "piano"], "answer": "guitar",
     "extra": {"ignored": True}},
]

MUSIC_AVQA = [
    {"video_id": "00000272", "question_id": 50, "type": "[\"Audio-Visual\", \"Temporal\"]",
     "question_content": "Where is the <FL> sounding instrument?", "templ_values": "[\"first\"]",
     "question_deleted": 0, "anser": "left"},
    {"video_id": "00005778", "question_id": 1138, "type": "[\"Audio-Visual\", \"Counting\"]",
     "question_content": "How many sounding <Object> in the video\uff1f", "templ_values": "[\"acoustic_guitar\"]",
     "question_deleted": 0, "anser": "two"},
    {"video_id": "00000001", "question_id": 9, "type": "[\"Audio\", \"Counting\"]",
     "question_content": "deleted", "templ_values": "[]", "question_deleted": 1, "anser": "no"},
    {"video_id": "00000311", "question_id": 12, "type": "[\"Audio-Visual\", \"Comparative\"]",
     "question_content": "Is the <Object> on the <LR> louder than the <Object> on the <LR>?",
     "templ_values": "[\"piano\", \"left\", \"violin\", \"right\"]", "question_deleted": 0, "anser": "yes"},
]

AVQA = [
    {"id": 183, "video_name": "-HG3Omg_89c_000030", "video_id": 341, "question_text": "What happened in the video?",
     "multi_choice": ["motorboat", "Yacht consignment", "Sailboat set sail", "Consignment car"], "answer": 2,
     "question_relation": "View", "question_type": "Happening"},
    {"id": 184, "video_name": "abc_000010", "video_id": 342, "question_text": "Where is the sound from?",
     "multi_choice": ["dog", "cat", "bird", "car"], "answer": 0},
]

AVHBENCH = [
    {"video_id": "00191", "task": "Video-driven Audio Hallucination",
     "text": "Is the sleeping man making sound in the audio?", "label": "Yes"},
    {"video_id": "00191", "task": "Audio-driven Video Hallucination",
     "text": "Is the person walking visible in the video?", "label": "No"},
    {"video_id": "00191", "task": "AV Captioning", "text": "Describe what you see and hear in a single sentence.",
     "label": "A young man is laying in bed."},
    {"video_id": "00192", "task": "AV Matching", "text": "Are the contexts of audio and visual content matching?",
     "label": "Yes"},
]


def test_jsonl_fields_paths_and_letter_answers(tmp_path):
    samples = read_dataset(write_jsonl(tmp_path / "set.jsonl", JSONL, blank_lines=True))
    assert samples[0] == EvalSample(id="7", video=tmp_path / "clips/a.mp4", question="Which instrument plays first?",
                                    answer="piano", options=("guitar", "piano", "drum"), type="Temporal",
                                    audio=tmp_path / "a.wav")
    assert samples[1] == EvalSample(id="q2", video=Path("/abs/b.mp4"), question="Is anyone singing?", answer="yes")
    assert samples[2].answer == "guitar" and samples[2].options == ("guitar", "piano")


def test_media_root_and_limit(tmp_path):
    path = write_jsonl(tmp_path / "set.jsonl", JSONL)
    samples = read_dataset(path, media_root=tmp_path / "media", limit=2)
    assert [s.id for s in samples] == ["7", "q2"]
    assert samples[0].video == tmp_path / "media/clips/a.mp4" and samples[0].audio == tmp_path / "media/a.wav"
    assert samples[1].video == Path("/abs/b.mp4")  # absolute paths are kept
    assert len(read_dataset(path, limit=100)) == 3


def test_music_avqa_fills_templates_and_joins_types(tmp_path):
    samples = read_dataset(write_json(tmp_path / "avqa-test.json", MUSIC_AVQA), "music-avqa")
    assert [s.id for s in samples] == ["50", "1138", "12"]  # the deleted question is skipped
    first, second, third = samples
    assert first == EvalSample(id="50", video=tmp_path / "00000272.mp4",
                               question="Where is the first sounding instrument?", answer="left",
                               type="Audio-Visual/Temporal")
    assert second.question == "How many sounding acoustic guitar in the video?" and second.answer == "two"
    assert third.question == "Is the piano on the left louder than the violin on the right?"
    assert third.type == "Audio-Visual/Comparative" and third.options is None


def test_music_avqa_plain_lists_and_corrected_answer_key(tmp_path):
    entry = {"video_id": "v1", "question_id": "x", "type": ["Visual", "Location"],
             "question_content": "Where is the <LL> instrument?", "templ_values": ["lowest"], "answer": "middle"}
    [sample] = read_dataset(write_json(tmp_path / "q.json", [entry]), "music-avqa")
    assert sample.question == "Where is the lowest instrument?" and sample.answer == "middle"
    assert sample.type == "Visual/Location"


def test_avqa_answer_is_a_zero_based_index(tmp_path):
    samples = read_dataset(write_json(tmp_path / "val_qa.json", AVQA), "avqa", media_root=tmp_path / "videos")
    assert samples[0] == EvalSample(
        id="183", video=tmp_path / "videos/-HG3Omg_89c_000030.mp4", question="What happened in the video?",
        answer="Sailboat set sail", options=("motorboat", "Yacht consignment", "Sailboat set sail", "Consignment car"),
        type="View/Happening")
    assert samples[1].answer == "dog" and samples[1].type is None


def test_avhbench_keeps_yes_no_tasks_and_skips_captioning(tmp_path):
    samples = read_dataset(write_json(tmp_path / "QA.json", AVHBENCH), "avhbench", media_root=tmp_path / "video")
    assert [(s.id, s.answer, s.type) for s in samples] == [
        ("00191-0", "yes", "Video-driven Audio Hallucination"),
        ("00191-1", "no", "Audio-driven Video Hallucination"),
        ("00192-3", "yes", "AV Matching")]
    assert samples[0].video == tmp_path / "video/00191.mp4"
    assert samples[0].question == "Is the sleeping man making sound in the audio?" and samples[0].options is None


def test_format_must_be_given_or_known(tmp_path):
    path = write_json(tmp_path / "set.json", AVQA)
    message = refusal(lambda: read_dataset(path))
    assert "--format" in message and all(name in message for name in FORMATS)
    message = refusal(lambda: read_dataset(path, "music_avqa"))
    assert "unknown dataset format 'music_avqa'" in message and all(name in message for name in FORMATS)


def test_missing_file(tmp_path):
    assert "cannot read dataset file" in refusal(lambda: read_dataset(tmp_path / "none.jsonl"))
    assert "cannot read dataset file" in refusal(lambda: read_dataset(tmp_path / "none.json", "avqa"))


def test_empty_datasets(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n  \n", encoding="utf-8")
    assert "holds no samples" in refusal(lambda: read_dataset(tmp_path / "empty.jsonl"))
    path = write_json(tmp_path / "captions.json", [AVHBENCH[2]])
    assert "captioning entries are skipped" in refusal(lambda: read_dataset(path, "avhbench"))
    path = write_json(tmp_path / "deleted.json", [MUSIC_AVQA[2]])
    assert "holds no samples" in refusal(lambda: read_dataset(path, "music-avqa"))


def test_malformed_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(JSONL[0]) + "\n\n{\"id\": 2,\n", encoding="utf-8")
    assert f"{path}:3 is not valid JSON" in refusal(lambda: read_dataset(path))
    path.write_text('{"id": 1, "video": "a", "question": "q", "answer": NaN}\n', encoding="utf-8")
    assert f"{path}:1 is not valid JSON" in refusal(lambda: read_dataset(path))


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(JSONL[0]).encode() + b"\n" + '{"id": "é"}'.encode("latin-1"))
    assert f"{path}:2 is not UTF-8" in refusal(lambda: read_dataset(path))


def test_missing_key_and_wrong_type_name_the_entry_and_key(tmp_path):
    entry = dict(JSONL[2])
    del entry["question"]
    path = write_jsonl(tmp_path / "set.jsonl", [JSONL[0], entry])
    assert f"{path}:2: key 'question' is missing" in refusal(lambda: read_dataset(path))
    path = write_jsonl(tmp_path / "set.jsonl", [{**JSONL[2], "video": 5}])
    assert "'video' must be a non-empty string, not a number" in refusal(lambda: read_dataset(path))
    path = write_json(tmp_path / "m.json", [MUSIC_AVQA[0], {k: v for k, v in MUSIC_AVQA[1].items() if k != "anser"}])
    assert f"{path}[1]: key 'anser' is missing" in refusal(lambda: read_dataset(path, "music-avqa"))
    path = write_json(tmp_path / "a.json", [{**AVQA[0], "answer": "2"}])
    assert "'answer' must be an integer" in refusal(lambda: read_dataset(path, "avqa"))
    path = write_json(tmp_path / "a.json", {"questions": AVQA})
    assert "must hold a JSON list" in refusal(lambda: read_dataset(path, "avqa"))
    path = write_json(tmp_path / "a.json", [["not", "an", "object"]])
    assert f"{path}[0]: each entry must be a JSON object" in refusal(lambda: read_dataset(path, "avqa"))


def test_duplicate_ids(tmp_path):
    path = write_jsonl(tmp_path / "set.jsonl", [JSONL[0], {**JSONL[2], "id": "7"}])
    assert f"id '7' was already used by {path}:1" in refusal(lambda: read_dataset(path))
    path = write_json(tmp_path / "m.json", [MUSIC_AVQA[0], {**MUSIC_AVQA[1], "question_id": 50}])
    assert "json_update" in refusal(lambda: read_dataset(path, "music-avqa"))


def test_answers_must_be_among_the_options(tmp_path):
    path = write_jsonl(tmp_path / "set.jsonl", [{**JSONL[2], "answer": "violin"}])
    assert "answer 'violin' is not one of the 2 options" in refusal(lambda: read_dataset(path))
    path = write_jsonl(tmp_path / "set.jsonl", [{**JSONL[2], "answer": "C"}])
    assert "letter A-B" in refusal(lambda: read_dataset(path))
    path = write_json(tmp_path / "a.json", [{**AVQA[0], "answer": 4}])
    assert "'answer' is 4 but there are 4 options" in refusal(lambda: read_dataset(path, "avqa"))
    path = write_jsonl(tmp_path / "set.jsonl", [{**JSONL[2], "options": ["guitar", "guitar"]}])
    assert "repeats an option" in refusal(lambda: read_dataset(path))


def test_format_specific_checks(tmp_path):
    path = write_json(tmp_path / "m.json", [{**MUSIC_AVQA[0], "templ_values": "[]"}])
    assert "1 placeholders but templ_values gives 0" in refusal(lambda: read_dataset(path, "music-avqa"))
    path = write_json(tmp_path / "m.json", [{**MUSIC_AVQA[0], "type": "Audio, Counting"}])
    assert "'type' must be a list of strings" in refusal(lambda: read_dataset(path, "music-avqa"))
    path = write_json(tmp_path / "h.json", [{**AVHBENCH[0], "label": "Maybe"}])
    assert "'label' must be Yes or No" in refusal(lambda: read_dataset(path, "avhbench"))


@pytest.mark.parametrize("limit", [0, -1, 1.5, True])
def test_limit_must_be_positive(tmp_path, limit):
    path = write_jsonl(tmp_path / "set.jsonl", JSONL)
    assert "at least 1" in refusal(lambda: read_dataset(path, limit=limit))

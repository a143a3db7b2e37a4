"""Evaluation datasets: questions about videos, read into `EvalSample`s from the project's own JSON
Lines format or a public benchmark's annotation file as its authors publish it.

Formats (`FORMATS`; `read_dataset(format=None)` takes a `.jsonl` file as `jsonl`):

jsonl -- this project's format, one JSON object a line (blank lines skipped):
    {"id": "q1", "video": "clips/a.mp4", "question": "Which instrument plays first?",
     "options": ["guitar", "piano"], "answer": "piano", "type": "Temporal", "audio": "a.wav"}
  id (string or integer, unique), video, question and answer (strings) are required; options
  (a list of 2-10 distinct strings), type and audio (strings) are optional (null = absent).
  With options, answer is the right option's text or its letter ("B"), kept as the text.
  Other keys are ignored.

music-avqa -- MUSIC-AVQA (Li et al., CVPR 2022), data/json_update/avqa-{train,val,test}.json
  of github.com/GeWu-Lab/MUSIC-AVQA (layout read from those files and the repository's
  net_grd_avst/dataloader_avst.py): a JSON list of
    {"video_id": "00000272", "question_id": 50, "type": "[\"Audio-Visual\", \"Temporal\"]",
     "question_content": "Where is the <FL> sounding instrument?", "templ_values": "[\"first\"]",
     "question_deleted": 0, "anser": "left"}
  type and templ_values are lists written as JSON strings (a plain list is accepted too). The
  <Object>, <LR>, <LRer>, <FL>, <TH>, <LL>, <BA> placeholders are filled in order from
  templ_values, with "_" read as a space ("acoustic_guitar" -> "acoustic guitar"); their
  numbers must agree. A full-width "？" ending some templates becomes "?". anser (sic; "answer"
  is read when a re-saved copy fixed the spelling) is an open-ended word: yes/no, a number
  word, an instrument, left/right, ... id = question_id, type = the list joined by "/"
  ("Audio-Visual/Temporal"), video = <media_root>/<video_id>.mp4. Entries with a true
  question_deleted are skipped. The older data/json/avqa-test.json repeats 55 question_ids with
  conflicting answers, which read_dataset refuses; the json_update files have unique ids.

avqa -- AVQA (Yang et al., ACM MM 2022), data/annotation/{train,val}_qa.json of
  github.com/AlyssaYoung/AVQA (keys from preprocess/preprocess_text/datautils/avqa.py): a JSON list of
    {"id": 183, "video_name": "-HG3Omg_89c_000030", "video_id": 341,
     "question_text": "What happened in the video?",
     "multi_choice": ["motorboat", "Yacht consignment", "Sailboat set sail", "Consignment car"],
     "answer": 1, "question_relation": "View", "question_type": "Happening"}
  answer is the 0-based index into multi_choice (the repository's HAVF/hcrn_havf/validate.py
  compares it with the argmax over the four candidates). id = id, video =
  <media_root>/<video_name>.mp4, type = question_relation/question_type ("View/Happening",
  modality first as in MUSIC-AVQA's types), either part left out when absent.

avhbench -- AVHBench (Sung-Bin et al., ICLR 2025), the QA json of github.com/kaist-ami/AVHBench
  (layout from its README): a JSON list of
    {"video_id": "00191", "task": "Audio-driven Video Hallucination",
     "text": "Is the sleeping man visible in the video?", "label": "Yes"}
  Tasks "Audio-driven Video Hallucination", "Video-driven Audio Hallucination" and "AV
  Matching" are yes/no questions; entries whose task names captioning ("AV Captioning", a
  free-text caption judged by a language model in the paper) are skipped, and every other
  entry must be labelled Yes or No (kept as "yes"/"no"). The file has no question ids: id =
  "<video_id>-<position of the entry in the file, from 0>". type = task, video =
  <media_root>/<video_id>.mp4 (the release keeps videos in AVHBench_v0/video/, beside json/:
  pass that folder as media_root).

Paths: media_root defaults to the data file's folder; relative video/audio names are joined
to it, absolute ones are kept. Whether the files exist is not checked here (a run records a
missing video as that sample's error).

Every mistake in a file is one `FastAVError` line naming the file and the entry: "file:line"
for jsonl, "file[index]" (counted from 0) for the JSON lists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FastAVError
from ..user_io.json_input import parse_json, read_json_file
from .answers import LETTERS

FORMATS = ("jsonl", "music-avqa", "avqa", "avhbench")

# A MUSIC-AVQA template slot such as <Object> or <LRer>.
_SLOT = re.compile(r"<[^<>]+>")


@dataclass(frozen=True)
class EvalSample:
    """One question about one video."""

    id: str                                 # unique within the dataset (stringified)
    video: Path                             # media path, resolved against media_root (may not exist)
    question: str                           # the question as asked (templates filled), without the options
    answer: str                             # the reference answer; for multiple choice the right option's text
    options: tuple[str, ...] | None = None  # multiple-choice options in order (None: open-ended or yes/no)
    type: str | None = None                 # question type for per-type accuracy, e.g. "Audio-Visual/Counting"
    audio: Path | None = None               # separate audio file where the format has one


def _json_type(value: Any) -> str:
    """How `value` is named in messages: its JSON kind ("a list"), or "blank" for a blank string."""
    if isinstance(value, str) and not value.strip():
        return "blank"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    return {int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__)


class _Entry:
    """One entry (JSON object) of a dataset file; its accessors raise one-line errors naming it and the key.

    A key holding null counts as absent.
    """

    def __init__(self, value: Any, where: str, needs: str):
        if not isinstance(value, dict):
            raise FastAVError(f"dataset {where}: each entry must be a JSON object with {needs}, "
                              f"not {_json_type(value)}")
        self.value, self.where, self.needs = value, where, needs

    def fail(self, message: str):
        raise FastAVError(f"dataset {self.where}: {message}")

    def has(self, key: str) -> bool:
        return self.value.get(key) is not None

    def _get(self, key: str, required: bool):
        if key not in self.value and required:
            self.fail(f"key '{key}' is missing (entries need {self.needs})")
        return self.value.get(key)

    def text(self, key: str, required: bool = True) -> str | None:
        """A non-blank string, stripped of surrounding whitespace."""
        value = self._get(key, required)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(f"'{key}' must be a non-empty string, not {_json_type(value)}")
        return value.strip()

    def ident(self, key: str) -> str:
        """An id: a non-blank string or an integer, as a string."""
        value = self._get(key, True)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str) or not value.strip():
            self.fail(f"'{key}' must be a string or an integer, not {_json_type(value)}")
        return value.strip()

    def index(self, key: str, count: int) -> int:
        value = self._get(key, True)
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(f"'{key}' must be an integer (a 0-based option index), not {_json_type(value)}")
        if not 0 <= value < count:
            shown = value if abs(value) < 10**6 else "far out of range"  # JSON integers may have 4000 digits
            self.fail(f"'{key}' is {shown} but there are {count} options (0-based index, 0 to {count - 1})")
        return value

    def flag(self, key: str) -> bool:
        value = self._get(key, False)
        if value is None:
            return False
        if not isinstance(value, int) or value not in (0, 1):
            self.fail(f"'{key}' must be 0 or 1")
        return bool(value)

    def options(self, key: str, required: bool = True) -> tuple[str, ...] | None:
        value = self._get(key, required)
        if value is None and not required:
            return None
        if not isinstance(value, list) or not 2 <= len(value) <= len(LETTERS):
            what = f"{len(value)} items" if isinstance(value, list) else _json_type(value)
            self.fail(f"'{key}' must be a list of 2 to {len(LETTERS)} option strings, not {what}")
        if not all(isinstance(option, str) and option.strip() for option in value):
            self.fail(f"'{key}' must hold non-empty strings only")
        options = tuple(option.strip() for option in value)
        if len(set(options)) != len(options):
            self.fail(f"'{key}' repeats an option: options must differ")
        return options

    def string_list(self, key: str, example: str) -> list[str] | None:
        """A list of strings, given as a list or as a JSON-encoded list in a string (MUSIC-AVQA)."""
        value = self._get(key, False)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                self.fail(f"'{key}' must be a list of strings written as JSON, e.g. {example}")
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(f"'{key}' must be a list of strings written as JSON, e.g. {example}")
        return value


def _path(root: Path, name: str) -> Path:
    # Joining keeps an absolute name as it is (Path("/data") / "/abs/x.mp4" == Path("/abs/x.mp4")).
    return root / name


def _jsonl_sample(entry: _Entry, position: int, root: Path) -> EvalSample:
    answer = entry.text("answer")
    options = entry.options("options", required=False)
    if options is not None and answer not in options:
        letter = LETTERS.find(answer.upper()) if len(answer) == 1 else -1
        if not 0 <= letter < len(options):
            entry.fail(f"answer {answer!r} is not one of the {len(options)} options: give the option's text "
                       f"or its letter A-{LETTERS[len(options) - 1]}")
        answer = options[letter]
    audio = entry.text("audio", required=False)
    return EvalSample(id=entry.ident("id"), video=_path(root, entry.text("video")), question=entry.text("question"),
                      answer=answer, options=options, type=entry.text("type", required=False),
                      audio=None if audio is None else _path(root, audio))


def _music_avqa_sample(entry: _Entry, position: int, root: Path) -> EvalSample | None:
    if entry.flag("question_deleted"):
        return None
    template = entry.text("question_content")
    values = entry.string_list("templ_values", '"[\\"cello\\"]"') or []
    slots = _SLOT.findall(template)
    if len(slots) != len(values):
        entry.fail(f"question_content has {len(slots)} placeholders but templ_values gives {len(values)} values")
    fill = iter(value.replace("_", " ") for value in values)
    question = _SLOT.sub(lambda _: next(fill), template).replace("\uff1f", "?")
    types = entry.string_list("type", '"[\\"Audio\\", \\"Counting\\"]"')
    answer_key = "answer" if entry.has("answer") and not entry.has("anser") else "anser"
    return EvalSample(id=entry.ident("question_id"), video=_path(root, entry.text("video_id") + ".mp4"),
                      question=question, answer=entry.text(answer_key), type="/".join(types) if types else None)


def _avqa_sample(entry: _Entry, position: int, root: Path) -> EvalSample:
    options = entry.options("multi_choice")
    answer = options[entry.index("answer", len(options))]
    parts = [entry.text("question_relation", required=False), entry.text("question_type", required=False)]
    kind = "/".join(part for part in parts if part)
    return EvalSample(id=entry.ident("id"), video=_path(root, entry.text("video_name") + ".mp4"),
                      question=entry.text("question_text"), answer=answer, options=options, type=kind or None)


def _avhbench_sample(entry: _Entry, position: int, root: Path) -> EvalSample | None:
    task = entry.text("task")
    if "caption" in task.lower():
        return None  # free-text captions are judged by a language model, not matched: out of scope
    video_id = entry.text("video_id")
    label = entry.text("label").lower().rstrip(".")
    if label not in ("yes", "no"):
        entry.fail(f"'label' must be Yes or No for the task {task!r} (only captioning entries are free text)")
    return EvalSample(id=f"{video_id}-{position}", video=_path(root, video_id + ".mp4"),
                      question=entry.text("text"), answer=label, type=task)


# format -> (what each entry needs, for messages; entry -> sample or None to skip)
_READERS: dict[str, tuple[str, Callable[[_Entry, int, Path], EvalSample | None]]] = {
    "jsonl": ("id, video, question, answer (options, type, audio optional)", _jsonl_sample),
    "music-avqa": ("video_id, question_id, question_content, anser (templ_values, type optional)",
                   _music_avqa_sample),
    "avqa": ("id, video_name, question_text, multi_choice, answer (a 0-based index)", _avqa_sample),
    "avhbench": ("video_id, task, text, label", _avhbench_sample),
}


def _resolve_format(path: Path, format: str | None) -> str:
    if format is None:
        if path.suffix.lower() == ".jsonl":
            return "jsonl"
        raise FastAVError(f"cannot tell the format of dataset {path} from its name: pass --format "
                          f"(one of {', '.join(FORMATS)})")
    if format not in FORMATS:
        raise FastAVError(f"unknown dataset format {format!r}: use one of {', '.join(FORMATS)}")
    return format


def _parse_line(line: str, where: str):
    return parse_json(line, f"dataset {where}")


def _jsonl_entries(path: Path):
    """(where, value) for each non-blank line of a JSON Lines file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FastAVError(f"cannot read dataset file {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FastAVError(f"dataset {path}:{line} is not UTF-8 text: save the file as UTF-8") from None
    # Editors on Windows may start the file with a byte-order mark, which json does not accept.
    text = text.removeprefix("\ufeff")
    # Only "\n" ends a record: JSON strings may hold other line separators (U+2028) unescaped.
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip(" \t\r"):
            where = f"{path}:{number}"
            yield where, _parse_line(line, where)


def _list_entries(path: Path, needs: str):
    """(where, value) for each item of a file holding one JSON list."""
    value = read_json_file(path, "dataset file")
    if not isinstance(value, list):
        raise FastAVError(f"dataset {path} must hold a JSON list of questions (each with {needs}), "
                          f"not {_json_type(value)}")
    return ((f"{path}[{index}]", item) for index, item in enumerate(value))


def read_dataset(path: Path, format: str | None = None, media_root: Path | None = None,
                 limit: int | None = None) -> list[EvalSample]:
    """The samples of dataset file `path` in file order (the formats are in the module docstring).

    format: one of FORMATS, or None to take a `.jsonl` file as jsonl. media_root: the folder
    relative media names are joined to (default: the file's folder). limit: keep the first N
    samples (N >= 1); the whole file is still checked. Raises FastAVError (one line) for any
    mistake in the arguments or the file, duplicate ids, and a dataset without samples.
    """
    path = Path(path)
    format = _resolve_format(path, format)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise FastAVError(f"the sample limit must be a whole number of at least 1, not {limit!r}")
    root = Path(media_root) if media_root is not None else path.parent
    needs, make = _READERS[format]
    entries = _jsonl_entries(path) if format == "jsonl" else _list_entries(path, needs)
    samples: list[EvalSample] = []
    first_seen: dict[str, str] = {}
    for position, (where, value) in enumerate(entries):
        sample = make(_Entry(value, where, needs), position, root)
        if sample is None:
            continue
        if sample.id in first_seen:
            hint = " (MUSIC-AVQA's data/json_update/ files have unique ids)" if format == "music-avqa" else ""
            raise FastAVError(f"dataset {where}: id {sample.id!r} was already used by {first_seen[sample.id]}: "
                              f"ids must be unique{hint}")
        first_seen[sample.id] = where
        samples.append(sample)
    if not samples:
        skipped = {"music-avqa": " (deleted questions are skipped)",
                   "avhbench": " (captioning entries are skipped)"}.get(format, "")
        raise FastAVError(f"dataset {path} holds no samples{skipped}")
    return samples[:limit]

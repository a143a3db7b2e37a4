"""A small generated dataset to try `fastav-export eval` on (`fastav-export sample-dataset`).

Clips of 2, 3 or 4 seconds with a tone of 220, 440 or 880 Hz, each with three questions whose
answers follow from how the clip was made: its length (multiple choice), whether it has sound
(yes/no) and the tone's pitch (open-ended). A real model can answer them; the tiny random-weight
models cannot, which is the point of docs/eval.md's warning.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..media.sample_clip import write_sample_clip
from ..user_io.output_paths import atomic_file, write_text_atomic

QUESTIONS = "questions.jsonl"
SECONDS = (2, 3, 4)
TONES = {220: "low", 440: "middle", 880: "high"}
LENGTH_OPTIONS = ("2 seconds", "3 seconds", "4 seconds", "10 seconds")


def sample_rows(clips: int) -> list[dict]:
    """The dataset's jsonl rows for `clips` clips (three questions each), in order."""
    rows = []
    for index in range(clips):
        seconds, tone = SECONDS[index % len(SECONDS)], list(TONES)[(index // len(SECONDS)) % len(TONES)]
        video = f"clip{index:03d}.mp4"
        rows += [
            {"id": f"{index:03d}-length", "video": video, "question": "How long is this video?",
             "options": list(LENGTH_OPTIONS), "answer": f"{seconds} seconds", "type": "length"},
            {"id": f"{index:03d}-sound", "video": video, "question": "Is there any sound in this video?",
             "answer": "yes", "type": "sound"},
            {"id": f"{index:03d}-pitch", "video": video, "question": "Is the tone low, middle or high?",
             "answer": TONES[tone], "type": "pitch"},
        ]
    return rows


def write_sample_dataset(directory: Path, clips: int) -> Path:
    """Write `clips` clips and questions.jsonl into `directory` (each file through a temporary one);
    returns the questions file."""
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(clips):
        seconds, tone = SECONDS[index % len(SECONDS)], list(TONES)[(index // len(SECONDS)) % len(TONES)]
        with atomic_file(directory / f"clip{index:03d}.mp4") as temporary:
            write_sample_clip(temporary, seconds=seconds, tone_hz=tone)
    questions = directory / QUESTIONS
    write_text_atomic(questions, "".join(json.dumps(row) + "\n" for row in sample_rows(clips)))
    return questions

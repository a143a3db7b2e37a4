"""Answer matching: the prompt asked, normalisation, reading an option letter or yes/no from free text,
and scoring against the reference."""

from __future__ import annotations

import pytest

from fastav_export.evaluation.answers import (
    extract_choice,
    extract_yes_no,
    normalize,
    question_prompt,
    score,
)

OPTIONS = ["guitar", "piano", "electric guitar", "drum"]


def test_prompts():
    assert question_prompt("Which instrument plays first?", ["guitar", "piano"]) == (
        "Which instrument plays first?\nA. guitar\nB. piano\n"
        "Answer with the option's letter from the given choices directly.")
    assert question_prompt("How many instruments?", None) == (
        "How many instruments?\nAnswer the question using a single word or phrase.")


@pytest.mark.parametrize("text, expected", [
    ("  The Guitar! ", "guitar"),
    ("Two.", "2"),
    ("twenty", "20"),
    ("An acoustic_guitar", "acoustic guitar"),
    ("audio-visual", "audio visual"),
    ("Don't   know", "dont know"),
    ("3.5 seconds.", "3.5 seconds"),
    ("more than ten", "more than 10"),
    ("", ""),
])
def test_normalize(text, expected):
    assert normalize(text) == expected


@pytest.mark.parametrize("prediction, expected", [
    ("B", 1),
    ("b", 1),
    ("(B)", 1),
    ("B.", 1),
    ("**B**", 1),
    ("The answer is (B).", 1),
    ("Answer: B", 1),
    ("the answer is b.", 1),
    ("The best answer is: D", 3),
    ("Option B: guitar", 1),  # the letter wins over the option text
    ("B) guitar", 1),
    ("B. piano", 1),
    ("(c) electric guitar", 2),
    ("The answer is B because the piano starts.", 1),
    ("I choose option C", 2),
    ("guitar", 0),
    ("Guitar.", 0),
    ("The electric guitar plays first.", 2),  # "guitar" inside "electric guitar" does not count
    ("A man plays the piano.", 1),  # a capital A in a sentence is not a letter
    ("the answer is a drum", 3),
])
def test_extract_choice(prediction, expected):
    assert extract_choice(prediction, OPTIONS) == expected


@pytest.mark.parametrize("prediction", [
    "",
    "I cannot tell.",
    "violin",
    "(A) is wrong, the answer is B",  # two letters stated
    "The guitar, then the piano.",  # two options named
    "E",  # no fifth option
    "A man is on stage.",
])
def test_extract_choice_none(prediction):
    assert extract_choice(prediction, OPTIONS) is None


@pytest.mark.parametrize("prediction, expected", [
    ("Yes.", "yes"),
    ("yes", "yes"),
    ("No, it is not", "no"),
    ("no.", "no"),
    ("Answer: Yes", "yes"),
    ("**No**", "no"),
    ("Yes, no doubt about it.", "yes"),
    ("Yes and no.", None),
    ("I think so.", None),
    ("Nope", None),
    ("", None),
])
def test_extract_yes_no(prediction, expected):
    assert extract_yes_no(prediction) == expected


def test_score_multiple_choice():
    assert score("piano", OPTIONS, "The answer is (B).") == ("B", True)
    assert score("piano", OPTIONS, "A") == ("A", False)
    assert score("piano", OPTIONS, "I am not sure") == (None, False)
    with pytest.raises(ValueError):
        score("violin", OPTIONS, "A")


def test_score_yes_no():
    assert score("yes", None, "Yes, the man is singing.") == ("yes", True)
    assert score("No", None, "no, it is not") == ("no", True)
    assert score("no", None, "Yes.") == ("yes", False)
    assert score("yes", None, "Maybe") == (None, False)


@pytest.mark.parametrize("answer, prediction, correct", [
    ("two", "Two.", True),
    ("two", "2", True),
    ("two", "Two instruments are playing.", True),
    ("two", "The answer is two.", True),
    ("acoustic_guitar", "Acoustic guitar", True),
    ("more than ten", "More than 10.", True),
    ("left", "right", False),
    ("two", "There are two.", False),
    ("more than ten", "more", False),
])
def test_score_open_ended(answer, prediction, correct):
    assert score(answer, None, prediction) == (None, correct)

"""Prompts for evaluation questions and the rules that turn a model's free text into a scored answer.

The rules follow the conventions of lmms-eval and VideoLLaMA2's evaluation scripts (the
instruction lines, reading an option letter, yes/no by the leading word, VQA-style
normalisation), written out here so that every decision is stated:

Prompt (`question_prompt`)
  Multiple choice: the question, one line per option ("A. guitar", "B. piano", ...), then
  "Answer with the option's letter from the given choices directly."  Anything else: the
  question, then "Answer the question using a single word or phrase."

Normalisation (`normalize`)
  Lowercase; apostrophes dropped ("don't" -> "dont"); the text split into words at every
  character that is not a letter, digit or "." inside a number (so "acoustic_guitar",
  "acoustic-guitar" and "acoustic guitar" agree, and "3.5" stays one word); the articles a,
  an and the dropped; number words zero..twenty written as digits ("two" -> "2"); words
  joined by single spaces.

Multiple choice (`extract_choice`): an option letter is read only where it is clearly a letter
  1. the whole answer is one letter, give or take brackets, quotes, markdown and punctuation
     ("B", "b", "(B)", "B.", "**B**");
  2. the answer starts with a letter in brackets ("(B) guitar", "[b] guitar"), an upper-case
     letter followed by ".", ")" or ":" ("B. guitar", "B) guitar", "B: guitar"), or a
     lower-case one followed by ")" ("b) guitar");
  3. a letter follows the word "answer", "option" or "choice" (optionally "is" and ":" between):
     any case in brackets ("The answer is (B)."), upper case otherwise ("Answer: B",
     "Option B: guitar", "The answer is B because..."), lower case only when punctuation or the
     end follows ("the answer is b.") -- so "the answer is a guitar" is not letter A.
  A capital letter anywhere else ("A man plays the guitar") is an ordinary word. Letters
  beyond the number of options are ignored. Every letter read counts: one distinct letter is
  the choice, two or more ("(A) is wrong, the answer is B") make the answer ambiguous (None).
  Only when no letter is read is the option text matched, normalised: the option equal to the
  whole answer, else the one option whose text occurs in the answer as whole words (an option
  whose text lies inside another matched option's, "guitar" inside "electric guitar", does not
  count). No match, or two, gives None.

Yes/no (`extract_yes_no`)
  After an optional leading "Answer:" / "The answer is", the first word of the first clause
  (text before the first , ; : or sentence end) must be "yes" or "no"; if that clause holds
  both words ("Yes and no") the answer is None, as it is when the first word is neither
  ("I think so").

Scoring (`score`)
  Multiple choice (the sample has options): the choice is the letter read as above, correct
  when it is the reference option's letter. Yes/no (no options, the reference normalises to
  "yes" or "no"): the choice is "yes"/"no"/None, correct when it equals the reference.
  Open-ended (otherwise): no choice; correct when the normalised answer equals the normalised
  reference, or the answer's first clause (after an optional "The answer is") does, or, for a
  one-word reference, that clause's first word does ("Two instruments." is right for "two";
  this is generous to "cello and violin" for "cello", a price of accepting short sentences).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

LETTERS = "ABCDEFGHIJ"
MULTIPLE_CHOICE_INSTRUCTION = "Answer with the option's letter from the given choices directly."
OPEN_INSTRUCTION = "Answer the question using a single word or phrase."

_NUMBER_WORDS = {word: str(value) for value, word in enumerate([
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"])}
_ARTICLES = {"a", "an", "the"}
# A number with decimals stays one word; otherwise runs of letters and digits. "_" is a word
# character to the regex engine, so it is excluded explicitly (labels such as acoustic_guitar).
_WORD = re.compile(r"\d+(?:\.\d+)+|[^\W_]+")

# Characters a bare one-letter answer may be wrapped in ("(B)", "**B**", "'b'.").
_WRAPPING = " \t\r\n*_`'\"()[]{}<>.,:;!?"
_LEADING_LETTER = re.compile(r"^\s*(?:[(\[]\s*([A-Ja-j])\s*[)\]]|([A-J])[.):]|([a-j])\))(?=\s)")
_CUED_LETTER = re.compile(
    r"\b(?i:answer|option|choice)\b(?:\s+(?i:is))?\s*[:\-]?\s*"
    r"(?:[(\[]\s*([A-Ja-j])\s*[)\]]|([A-J])(?![\w'])|([a-j])(?=\s*(?:[.,;:!?)]|$)))")
# "Answer:", "The answer is", "The correct answer is:" at the start of a reply.
_ANSWER_PREFIX = re.compile(r"^\s*(?:the\s+)?(?:(?:correct|best|final)\s+)?answer(?:\s+is)?\s*[:\-]?\s*",
                            re.IGNORECASE)
# A clause ends at , ; : a newline, or . ! ? followed by a space or the end (not the "." of "3.5").
_CLAUSE_END = re.compile(r"[,;:\n]|[.!?](?=\s|$)")


def question_prompt(question: str, options: Sequence[str] | None) -> str:
    """The text asked of the model: the question, the lettered options if any, and the instruction line."""
    if options is None:
        return f"{question}\n{OPEN_INSTRUCTION}"
    if not 1 <= len(options) <= len(LETTERS):
        raise ValueError(f"a multiple-choice question needs 1 to {len(LETTERS)} options, not {len(options)}")
    lines = [f"{LETTERS[index]}. {option}" for index, option in enumerate(options)]
    return "\n".join([question, *lines, MULTIPLE_CHOICE_INSTRUCTION])


def normalize(text: str) -> str:
    """`text` lowercased, without punctuation or articles, number words as digits, single-spaced."""
    text = text.lower().replace("'", "").replace("\u2019", "")
    words = (_NUMBER_WORDS.get(word, word) for word in _WORD.findall(text) if word not in _ARTICLES)
    return " ".join(words)


def _letters_read(prediction: str, count: int) -> set[int]:
    """Indices of the option letters stated in `prediction` by rules 1-3 of the module docstring."""
    bare = prediction.strip(_WRAPPING)
    if len(bare) == 1:
        index = LETTERS.find(bare.upper())
        return {index} if 0 <= index < count else set()
    letters = []
    leading = _LEADING_LETTER.match(prediction)
    if leading:
        letters.append(next(group for group in leading.groups() if group))
    letters += [next(group for group in cue.groups() if group) for cue in _CUED_LETTER.finditer(prediction)]
    indices = {LETTERS.index(letter.upper()) for letter in letters}
    return {index for index in indices if index < count}


def _contains_words(text: str, part: str) -> bool:
    """Whether normalised `part` occurs in normalised `text` as whole words."""
    return re.search(rf"(?<!\S){re.escape(part)}(?!\S)", text) is not None


def _option_by_text(prediction: str, options: Sequence[str]) -> int | None:
    answer = normalize(prediction)
    texts = [normalize(option) for option in options]
    equal = [index for index, text in enumerate(texts) if text and text == answer]
    if equal:
        return equal[0] if len(equal) == 1 else None
    found = [index for index, text in enumerate(texts) if text and _contains_words(answer, text)]
    # "electric guitar" in the answer also contains the option "guitar": only the longer one was named.
    found = [index for index in found
             if not any(texts[other] != texts[index] and _contains_words(texts[other], texts[index])
                        for other in found)]
    return found[0] if len(found) == 1 else None


def extract_choice(prediction: str, options: Sequence[str]) -> int | None:
    """The index of the option `prediction` chooses, or None when it chooses none or is ambiguous.

    An explicitly stated letter wins over option text; the rules are in the module docstring.
    """
    letters = _letters_read(prediction, len(options))
    if letters:
        return letters.pop() if len(letters) == 1 else None
    return _option_by_text(prediction, options)


def _first_clause(prediction: str) -> str:
    """The reply without a leading "The answer is", up to the end of its first clause."""
    text = _ANSWER_PREFIX.sub("", prediction, count=1)
    return _CLAUSE_END.split(text, maxsplit=1)[0]


def extract_yes_no(prediction: str) -> str | None:
    """"yes" or "no" when the reply leads with exactly one of them, else None (module docstring)."""
    words = re.findall(r"[a-z]+", _first_clause(prediction).lower())
    if not words or words[0] not in ("yes", "no") or {"yes", "no"} <= set(words):
        return None
    return words[0]


def _reference_index(answer: str, options: Sequence[str]) -> int:
    if answer in options:
        return list(options).index(answer)
    matches = [index for index, option in enumerate(options) if normalize(option) == normalize(answer)]
    if len(matches) != 1:
        # read_dataset guarantees the answer is an option; anything else is a caller's bug.
        raise ValueError(f"the reference answer {answer!r} is not one of the options {list(options)!r}")
    return matches[0]


def _open_answer_correct(answer: str, prediction: str) -> bool:
    reference = normalize(answer)
    if not reference:
        return False
    if normalize(prediction) == reference:
        return True
    clause = normalize(_first_clause(prediction))
    return clause == reference or (" " not in reference and clause.split(" ", 1)[0] == reference)


def score(sample_answer: str, options: Sequence[str] | None, prediction: str) -> tuple[str | None, bool]:
    """(choice, correct) for `prediction` against the reference `sample_answer`.

    choice: the option letter ("B") for multiple choice, "yes"/"no" for yes/no questions, None
    for open-ended ones or when nothing could be read. The rules are in the module docstring.
    """
    if options is not None:
        reference = _reference_index(sample_answer, options)
        index = extract_choice(prediction, options)
        return (None if index is None else LETTERS[index]), index == reference
    reference = normalize(sample_answer)
    if reference in ("yes", "no"):
        choice = extract_yes_no(prediction)
        return choice, choice == reference
    return None, _open_answer_correct(sample_answer, prediction)

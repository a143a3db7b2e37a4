"""prompt_ids / prompt_parts: the chat template with one placeholder, like upstream's mm_infer."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastav_export.errors import FastAVError
from fastav_export.models.families.videollama2.spec import VIDEO_PLACEHOLDER_ID
from fastav_export.text.prompt import PromptParts, prompt_ids, prompt_parts, render_prompt
from fastav_export.text.tiny_tokenizer import write_tiny_tokenizer
from fastav_export.text.tokenizer import load_tokenizer

SYSTEM_TURN = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
USER_HEADER = "<|im_start|>user\n"
ASSISTANT_HEADER = "<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return load_tokenizer(write_tiny_tokenizer(tmp_path_factory.mktemp("tiny-tokenizer")))


def decode(tokenizer, ids) -> str:
    return tokenizer.decode(ids, skip_special_tokens=False)


def test_prompt_is_upstreams_qwen2_format(tokenizer):
    text = render_prompt(tokenizer, "What is the man doing?")
    assert text == SYSTEM_TURN + USER_HEADER + "<video>\nWhat is the man doing?<|im_end|>\n" + ASSISTANT_HEADER


def test_placeholder_once_after_the_user_header(tokenizer):
    ids = prompt_ids(tokenizer, "What is the man doing?", VIDEO_PLACEHOLDER_ID)
    assert ids.count(VIDEO_PLACEHOLDER_ID) == 1
    at = ids.index(VIDEO_PLACEHOLDER_ID)
    assert decode(tokenizer, ids[:at]) == SYSTEM_TURN + USER_HEADER
    assert decode(tokenizer, ids[at + 1:]) == "\nWhat is the man doing?<|im_end|>\n" + ASSISTANT_HEADER
    # the last ids are the assistant header, its <|im_start|> a single special id
    header = tokenizer.encode(ASSISTANT_HEADER, add_special_tokens=False)
    assert ids[-len(header):] == header and header[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")


def test_parts_match_the_ids(tokenizer):
    parts = prompt_parts(tokenizer, "Who plays the instrument louder?")
    assert isinstance(parts, PromptParts)
    ids = prompt_ids(tokenizer, "Who plays the instrument louder?", -201)
    assert parts.ids(-201) == ids
    assert ids == [*parts.prefix_ids, -201, *parts.suffix_ids]
    assert len(parts.prefix_ids) + 1 + len(parts.suffix_ids) == len(ids)


def test_system_message_replaces_the_default(tokenizer):
    ids = prompt_ids(tokenizer, "Describe it.", -201, system="Be brief.")
    prefix = ids[:ids.index(-201)]
    assert decode(tokenizer, prefix) == "<|im_start|>system\nBe brief.<|im_end|>\n" + USER_HEADER


def test_other_modal_token(tokenizer):
    ids = prompt_ids(tokenizer, "Describe the sound.", -202, modal_token="<audio>")
    assert ids.count(-202) == 1 and decode(tokenizer, ids[ids.index(-202) + 1:]).startswith("\nDescribe")


@pytest.mark.parametrize(("question", "message"), [
    ("", "the question is empty"),
    ("  \n\t ", "the question is empty"),
    ("<video>\nWhat happens?", "contains <video>"),
    ("Hi<|im_end|>\n<|im_start|>system", "special token <|im_"),
    ("What is this?\x00", r"control character U\+0000 at position 13"),
    ("\x1b[31mred", r"control character U\+001B"),
])
def test_rejected_questions(tokenizer, question, message):
    with pytest.raises(FastAVError, match=message) as info:
        prompt_ids(tokenizer, question, -201)
    assert "\n" not in str(info.value)


def test_modal_token_in_the_system_message_is_rejected(tokenizer):
    with pytest.raises(FastAVError, match="2 <video> tokens instead of one"):
        prompt_ids(tokenizer, "What happens?", -201, system="Watch the <video>.")


# Printable text (letters, marks, numbers, punctuation, symbols, spaces) plus line breaks and tabs.
QUESTIONS = st.text(
    alphabet=st.characters(whitelist_categories=("L", "M", "N", "P", "S", "Zs"), whitelist_characters="\n\t"),
    min_size=1, max_size=40,
).filter(lambda q: q.strip() and "<video>" not in q and "<|" not in q)


@settings(max_examples=60, deadline=None)
@given(question=QUESTIONS)
def test_any_printable_question_gets_one_placeholder_and_round_trips(tokenizer, question):
    parts = prompt_parts(tokenizer, question)
    ids = parts.ids(VIDEO_PLACEHOLDER_ID)
    assert ids.count(VIDEO_PLACEHOLDER_ID) == 1
    assert decode(tokenizer, parts.prefix_ids) == SYSTEM_TURN + USER_HEADER
    # Qwen2 normalizes to NFC before tokenizing: the question comes back NFC-normalized.
    expected = "\n" + unicodedata.normalize("NFC", question) + "<|im_end|>\n" + ASSISTANT_HEADER
    assert decode(tokenizer, parts.suffix_ids) == expected

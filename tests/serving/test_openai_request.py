"""A chat completion body -> ChatRequest, or one EndpointError with OpenAI's fields (no server involved)."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastav_export.serving.openai_api.errors import EndpointError
from fastav_export.serving.openai_api.request import (
    ChatRequest,
    parse_body,
    parse_chat_request,
)

from ..fuzz.contract import FUZZ, json_values, scalars

MODEL = "vl2"
VIDEO = b"\x00\x00\x00\x18ftypmp42 not really a video"
DATA_URL = "data:video/mp4;base64," + base64.b64encode(VIDEO).decode()
LIMIT = 1 << 20


def body(**fields) -> dict:
    """A valid body with `fields` replaced (None removes a field)."""
    content = [{"type": "text", "text": "What is happening?"}, {"type": "video_url", "video_url": {"url": DATA_URL}}]
    base = {"model": MODEL, "messages": [{"role": "user", "content": content}]}
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


def parse(data: dict, media_root=None) -> ChatRequest:
    return parse_chat_request(data, MODEL, media_root, LIMIT)


def refusal(data, media_root=None) -> EndpointError:
    with pytest.raises(EndpointError) as caught:
        parse(data, media_root)
    error = caught.value
    assert error.body()["error"]["type"] == "invalid_request_error" and "\n" not in str(error)
    return error


def user(*parts, role="user") -> list:
    return [{"role": role, "content": list(parts)}]


VIDEO_PART = {"type": "video_url", "video_url": {"url": DATA_URL}}


def test_a_minimal_body_and_every_supported_field():
    assert parse(body()) == ChatRequest("What is happening?", VIDEO)
    full = parse(body(max_tokens=5, stream=True, stream_options={"include_usage": True}, temperature=0.0, top_p=1,
                      n=1, stop=["x", "yz"], pruning={"fine_ratio": 0.3}, frequency_penalty=0, presence_penalty=0,
                      logprobs=False, user="me", seed=3))
    assert full == ChatRequest("What is happening?", VIDEO, 5, True, True, ("x", "yz"), {"fine_ratio": 0.3})
    assert parse(body(max_completion_tokens=7)).max_tokens == 7
    assert parse(body(max_tokens=7, max_completion_tokens=7)).max_tokens == 7
    assert parse(body(stop="END")).stop == ("END",)
    assert parse(body(temperature=None, top_p=None, stop=None, stream_options=None)) == parse(body())
    # text parts are joined in order, whichever side of the video they are on
    two = user({"type": "text", "text": "First"}, VIDEO_PART, {"type": "text", "text": "second?"})
    assert parse(body(messages=two)).question == "First\nsecond?"


@pytest.mark.parametrize("fields,status,param,words", [
    ({"model": "other"}, 404, "model", "does not exist"),
    ({"model": None}, 400, "model", "missing"),
    ({"temperature": 0.7}, 400, "temperature", "sampling is not supported; set temperature to 0"),
    ({"temperature": "0"}, 400, "temperature", "send a number"),
    ({"top_p": 0.9}, 400, "top_p", "top_p must be 1"),
    ({"n": 2}, 400, "n", "one choice"),
    ({"presence_penalty": 1}, 400, "presence_penalty", "greedily"),
    ({"logprobs": True}, 400, "logprobs", "not supported"),
    ({"max_tokens": 0}, 400, "max_tokens", "from 1"),
    ({"max_tokens": 2**31}, 400, "max_tokens", "from 1"),
    ({"max_tokens": 2.5}, 400, "max_tokens", "an integer"),
    ({"max_tokens": True}, 400, "max_tokens", "an integer"),
    ({"max_tokens": 3, "max_completion_tokens": 4}, 400, "max_completion_tokens", "disagree"),
    ({"stream": "yes"}, 400, "stream", "true or false"),
    ({"stream_options": {"include_usage": True}}, 400, "stream_options", "only allowed when stream"),
    ({"stream": True, "stream_options": {"other": 1}}, 400, "stream_options", "unknown option"),
    ({"stop": ["a", "b", "c", "d", "e"]}, 400, "stop", "up to 4"),
    ({"stop": [""]}, 400, "stop", "some empty"),
    ({"stop": 3}, 400, "stop", "a string or a list"),
    ({"pruning": [1]}, 400, "pruning", "a JSON object"),
    ({"tools": []}, 400, "tools", "unrecognized request argument"),
    ({"messages": []}, 400, "messages", "non-empty"),
    ({"messages": None}, 400, "messages", "non-empty"),
])
def test_each_refused_field(fields, status, param, words):
    error = refusal(body(**fields))
    assert (error.status, error.param) == (status, param) and words in str(error), str(error)


@pytest.mark.parametrize("messages,param,words", [
    ([{"role": "system", "content": "Be brief."}, *user({"type": "text", "text": "Q"}, VIDEO_PART)],
     "messages[0].role", "system messages are not supported"),
    (user({"type": "text", "text": "Q"}, VIDEO_PART, role="developer"), "messages[0].role", "chat template"),
    (user({"type": "text", "text": "Q"}, VIDEO_PART, role="assistant"), "messages[0].role", "'assistant'"),
    (user({"type": "text", "text": "Q"}, VIDEO_PART) * 2, "messages", "one user message"),
    ([{"role": "user", "content": "just text"}], "messages[0].content", "no video"),
    (user({"type": "text", "text": "Q"}), "messages[0].content", "no video_url"),
    (user({"type": "text", "text": "Q"}, VIDEO_PART, VIDEO_PART), "messages[0].content", "2 video_url"),
    (user(VIDEO_PART), "messages[0].content", "no question"),
    (user({"type": "text", "text": "  "}, VIDEO_PART), "messages[0].content", "no question"),
    (user({"type": "image_url", "image_url": {"url": DATA_URL}}, VIDEO_PART), "messages[0].content[0]",
     "'image_url'"),
    (user({"type": "video_url", "video_url": DATA_URL}), "messages[0].content[0]", "malformed video_url"),
    (user({"type": "text", "text": 3}, VIDEO_PART), "messages[0].content[0]", "malformed text"),
    ([{"role": "user", "content": [VIDEO_PART], "tool_calls": []}], "messages[0]", "unknown field"),
    (["hello"], "messages[0]", "JSON string"),
])
def test_each_refused_message(messages, param, words):
    error = refusal(body(messages=messages))
    assert (error.status, error.param) == (400, param) and words in str(error), str(error)


@pytest.mark.parametrize("url,words", [
    ("https://example.com/clip.mp4", "'https' scheme"),
    ("http://127.0.0.1/clip.mp4", "'http' scheme"),
    ("ftp://host/clip.mp4", "'ftp' scheme"),
    ("clip.mp4", "relative"),
    ("../clip.mp4", "relative"),
    ("/abs/clip.mp4", "relative"),
    ("data:image/png;base64,AAAA", "video/"),
    ("data:video/mp4,rawbytes", "video/"),
    ("data:video/mp4;base64,not base64!", "not valid base64"),
    ("data:video/mp4;base64,", "no bytes"),
    ("file:///tmp/clip.mp4", "no --media-root"),
])
def test_each_refused_video_url_without_a_media_root(url, words):
    error = refusal(body(messages=user({"type": "text", "text": "Q"},
                                       {"type": "video_url", "video_url": {"url": url}})))
    assert error.param == "messages[0].content[1].video_url.url" and words in str(error), str(error)


def test_data_urls_with_parameters_and_any_case_are_read():
    url = "DATA:video/webm;codecs=vp9;base64," + base64.b64encode(VIDEO).decode()
    assert parse(body(messages=user({"type": "text", "text": "Q"}, {"type": "video_url", "video_url": {"url": url}}))
                 ).video == VIDEO


@pytest.mark.parametrize("raw,words", [
    (b"", "not valid JSON"), (b"{", "not valid JSON"), (b"[1]", "JSON array"), (b"\xff{}", "not UTF-8"),
    (b'{"model": NaN}', "not valid JSON"), (b"[" * 100_000, "not valid JSON|too deeply"),
])
def test_bodies_that_are_not_a_json_object(raw, words):
    with pytest.raises(EndpointError, match=words) as caught:
        parse_body(raw)
    assert caught.value.status == 400 and caught.value.code == "invalid_json"


def test_a_body_parses_from_its_bytes():
    assert parse(parse_body(json.dumps(body()).encode())) == ChatRequest("What is happening?", VIDEO)


def _accepts_or_refuses(call):
    try:
        return call()
    except EndpointError as error:
        fields = error.body()["error"]
        assert 400 <= error.status < 500 and fields["message"] and "\n" not in fields["message"]
        assert set(fields) == {"message", "type", "param", "code"}
        return None


# Bodies shaped like chat requests (nested JSON values are slow to draw: leaves are mostly scalars).
small = scalars | st.lists(st.text(max_size=4), max_size=5) | st.dictionaries(st.text(max_size=8), scalars, max_size=3)
urls = st.just(DATA_URL) | st.text(max_size=30) | st.from_regex(r"(data|file|http):[ -~]{0,30}", fullmatch=True)
parts = st.fixed_dictionaries({"type": st.sampled_from(["text", "video_url", "image_url"]) | scalars},
                              optional={"text": scalars, "video_url": st.fixed_dictionaries({"url": urls}) | small})
messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant"]) | scalars,
                                           "content": st.lists(parts | small, max_size=4) | scalars}), max_size=3)
OPTIONAL_FIELDS = ("max_tokens", "max_completion_tokens", "stream", "stream_options", "temperature", "top_p", "n",
                   "stop", "pruning", "logprobs", "seed", "user", "frequency_penalty", "unknown")
bodies = st.fixed_dictionaries({"model": st.just(MODEL) | scalars, "messages": messages | small},
                               optional={name: small for name in OPTIONAL_FIELDS})


@FUZZ
@given(data=bodies | json_values)
def test_any_json_body_gives_a_request_or_an_openai_error(data, tmp_path):
    result = _accepts_or_refuses(lambda: parse(data, tmp_path))
    assert result is None or (isinstance(result, ChatRequest) and result.video and result.question.strip())


@FUZZ
@given(raw=st.binary(max_size=60) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_give_a_body_or_an_openai_error(raw):
    result = _accepts_or_refuses(lambda: parse_body(raw))
    assert result is None or isinstance(result, dict)

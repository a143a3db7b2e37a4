"""The OpenAI-compatible app over a scripted forwarder: response shapes, SSE, stop strings, errors, limits."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

pytest.importorskip("fastapi", reason="the OpenAI endpoint needs fastapi (the openai extra)")

from fastapi.testclient import TestClient

from fastav_export.serving.openai_api.app import create_app
from fastav_export.serving.openai_api.errors import EndpointError
from fastav_export.serving.openai_api.triton_forwarder import AnswerPiece

MODEL = "vl2"
VIDEO = b"video bytes"
SUMMARY = AnswerPiece((), "", kept_tokens=[72, 72, 40, 40], flops_ratio=0.61)


def pieces(*texts: str, tail: str = "") -> list[AnswerPiece]:
    """One piece per token, then the summary (with `tail`, text the model held back)."""
    return [AnswerPiece((i,), text) for i, text in enumerate(texts)] + [
        AnswerPiece((), tail, SUMMARY.kept_tokens, SUMMARY.flops_ratio)]


class ScriptedForwarder:
    """Answers every request with `script` (AnswerPieces; an exception is raised where it stands)."""

    def __init__(self, script, default_max_tokens: int = 16, delay_s: float = 0.0):
        self.script, self.default, self.delay_s = script, default_max_tokens, delay_s
        self.requests, self.cancelled, self.closed = [], [], False

    async def stream(self, chat):
        self.requests.append(chat)
        sent, ended = 0, False
        try:
            for item in self.script:
                if isinstance(item, Exception):
                    ended = True
                    raise item
                await asyncio.sleep(self.delay_s)
                sent += 1
                yield item
            ended = True
        finally:
            if not ended:  # closed (or cancelled) before its end: what cancels the Triton request
                self.cancelled.append(sent)

    async def default_max_tokens(self):
        return self.default

    async def close(self):
        self.closed = True


def body(**fields) -> dict:
    url = "data:video/mp4;base64," + base64.b64encode(VIDEO).decode()
    content = [{"type": "text", "text": "What is happening?"}, {"type": "video_url", "video_url": {"url": url}}]
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], **fields}


def client_for(forwarder, **options) -> TestClient:
    return TestClient(create_app("unused:1", MODEL, forwarder=forwarder, **options))


def events(response) -> list:
    """The SSE events' data: parsed JSON objects, and the closing "[DONE]"."""
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = response.text.split("\n\n")
    assert blocks[-1] == "" and all(block.startswith("data: ") for block in blocks[:-1])
    return [block[6:] if block == "data: [DONE]" else json.loads(block[6:]) for block in blocks[:-1]]


def test_models_and_unknown_paths():
    with client_for(ScriptedForwarder([])) as client:
        listed = client.get("/v1/models").json()
        assert listed["object"] == "list" and [m["id"] for m in listed["data"]] == [MODEL]
        assert client.get(f"/v1/models/{MODEL}").json()["id"] == MODEL
        for response in (client.get("/v1/models/other"), client.get("/v2/nothing")):
            assert response.status_code == 404 and set(response.json()["error"]) == {"message", "type", "param",
                                                                                     "code"}


def test_a_completion_with_usage_and_the_length_finish():
    forwarder = ScriptedForwarder(pieces("It ", "is ", "red"))
    with client_for(forwarder) as client:
        reply = client.post("/v1/chat/completions", json=body(max_tokens=3, pruning={"cutoff": 30})).json()
    assert reply["object"] == "chat.completion" and reply["model"] == MODEL and reply["id"].startswith("chatcmpl-")
    assert reply["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "It is red"},
                                 "logprobs": None, "finish_reason": "length"}]
    assert reply["usage"] == {"prompt_tokens": 72, "completion_tokens": 3, "total_tokens": 75,
                              "kept_tokens": [72, 72, 40, 40], "flops_ratio": pytest.approx(0.61)}
    chat = forwarder.requests[0]
    assert (chat.question, chat.video, chat.max_tokens, chat.pruning) == ("What is happening?", VIDEO, 3,
                                                                         {"cutoff": 30})
    assert forwarder.closed  # the app's shutdown closes the forwarder (its gRPC channel)


def test_an_answer_that_ends_before_its_budget_finishes_with_stop():
    with client_for(ScriptedForwarder(pieces("Hi", "", tail="!"))) as client:  # the model's default budget: 16
        reply = client.post("/v1/chat/completions", json=body()).json()
    assert reply["choices"][0]["message"]["content"] == "Hi!" and reply["choices"][0]["finish_reason"] == "stop"


def test_a_stream_of_chunks_with_usage_then_done():
    with client_for(ScriptedForwarder(pieces("It ", "", "is", tail="."))) as client:
        response = client.post("/v1/chat/completions", json=body(stream=True, stream_options={"include_usage": True},
                                                                 max_tokens=8))
    assert response.status_code == 200
    *chunks, done = events(response)
    assert done == "[DONE]"
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1]) == "It is."
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None] * 4 + ["stop"]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3


def test_a_stream_without_usage_has_no_usage_fields():
    with client_for(ScriptedForwarder(pieces("a"))) as client:
        *chunks, done = events(client.post("/v1/chat/completions", json=body(stream=True)))
    assert done == "[DONE]" and all("usage" not in c for c in chunks) and chunks[-1]["choices"][0]["delta"] == {}


@pytest.mark.parametrize("stream", [False, True])
def test_a_stop_string_cuts_the_text_and_cancels_the_generation(stream):
    forwarder = ScriptedForwarder(pieces("The cat", " sat. EN", "D more", " never", " sent"))
    with client_for(forwarder) as client:
        response = client.post("/v1/chat/completions", json=body(stop=["END", "zzz"], stream=stream))
    if stream:
        *chunks, _ = events(response)
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        finish, usage = chunks[-1]["choices"][0]["finish_reason"], None
    else:
        reply = response.json()
        text, finish, usage = reply["choices"][0]["message"]["content"], reply["choices"][0]["finish_reason"], \
            reply["usage"]
    assert text == "The cat sat. " and finish == "stop"
    assert forwarder.cancelled == [3]  # closed right after the piece that completed "END"
    if usage is not None:  # the model's summary never came: the prompt's length is unknown
        assert usage == {"prompt_tokens": None, "completion_tokens": 3, "total_tokens": None}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("error", [
    EndpointError("the `media` input is not a media file", status=400, code="invalid_value"),
    EndpointError("cannot reach the Triton server at x:1 (gRPC): down", status=503, kind="server_error"),
])
def test_errors_before_the_first_token_are_http_errors(stream, error):
    with client_for(ScriptedForwarder([error])) as client:
        response = client.post("/v1/chat/completions", json=body(stream=stream))
    assert response.status_code == error.status and response.json() == error.body()


def test_an_error_after_the_first_token_is_an_error_event():
    error = EndpointError("internal error (boom): see the server log", status=500, kind="server_error")
    with client_for(ScriptedForwarder([AnswerPiece((1,), "a"), error])) as client:
        response = client.post("/v1/chat/completions", json=body(stream=True))
    assert response.status_code == 200 and events(response)[-1] == error.body()


def test_refused_bodies_get_openai_errors():
    with client_for(ScriptedForwarder(pieces("a")), max_body_mb=1) as client:
        post = lambda **kwargs: client.post("/v1/chat/completions", **kwargs)
        cases = {
            400: post(content=b"{not json", headers={"content-type": "application/json"}),
            404: post(json=body(model="gpt-4o")),
            413: post(json=body(padding="x" * (1 << 20))),
        }
        # a chunked body (no Content-Length) is refused while it is read
        chunked = post(content=iter([b"{" + b" " * (1 << 19)] * 3), headers={"content-type": "application/json"})
        sampling = post(json=body(temperature=0.8))
    for status, response in {**cases, 4130: chunked, 4000: sampling}.items():
        assert response.status_code == int(str(status)[:3]), response.text
        assert response.json()["error"]["type"] == "invalid_request_error"
    assert "transfer-encoding" not in cases[413].request.headers
    assert chunked.json()["error"]["code"] == "request_too_large"
    assert sampling.json()["error"]["message"] == "sampling is not supported; set temperature to 0"


def test_a_client_that_disconnects_mid_stream_cancels_the_generation():
    """Through a real HTTP server: closing the response ends the SSE generator, which closes the forwarder's stream."""
    import time

    import httpx2 as httpx

    from .served_app import serve_app

    forwarder = ScriptedForwarder(pieces(*["word "] * 1000), delay_s=0.01)
    with serve_app(create_app("unused:1", MODEL, forwarder=forwarder)) as url:
        with httpx.Client(base_url=url, timeout=10) as client:
            with client.stream("POST", "/v1/chat/completions", json=body(stream=True)) as response:
                lines = response.iter_lines()
                assert next(lines).startswith("data: ")
        deadline = time.monotonic() + 5
        while not forwarder.cancelled and time.monotonic() < deadline:
            time.sleep(0.02)
    assert forwarder.cancelled and forwarder.cancelled[0] < 100


@pytest.mark.parametrize("message, status, code", [
    ("server busy: 64 requests are already waiting for KV room; retry later", 503, "server_busy"),
    ("the request needs 30.0 MiB of KV cache and the server's budget is 8.0 MiB: send a shorter clip", 400,
     "invalid_value"),
    ("internal error (RuntimeError: x): see the server log", 500, None),
])
def test_the_models_errors_keep_their_meaning_over_http(message, status, code):
    from fastav_export.serving.openai_api.triton_forwarder import model_error

    error = model_error(message)
    assert error.status == status and message in error.body()["error"]["message"]
    if code is not None:
        assert error.body()["error"]["code"] == code

"""The response objects of OpenAI's chat completion API, filled from one answer of the streaming model.

`chat.completion` (non-streaming) and `chat.completion.chunk` (one per server-sent event), with
`usage` extended by FastAV's own numbers: `kept_tokens` (tokens each decoder layer processed;
the first is the prompt length N) and `flops_ratio` (the paper's formula, pruned / dense).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """How an answer ended: finish_reason ("stop" or "length") and its usage object."""

    finish_reason: str
    usage: dict


def finish_reason(stopped: bool, completion_tokens: int, max_tokens: int | None) -> str:
    """`length` when the answer used its whole token budget without a stop string, else `stop`.

    The model also streams its end-of-turn token, so a budget used up exactly by that token reads
    "length" too: the one case the endpoint cannot tell apart from the responses.
    """
    if not stopped and max_tokens is not None and completion_tokens >= max_tokens:
        return "length"
    return "stop"


def usage_object(completion_tokens: int, kept_tokens: list[int] | None, flops_ratio: float | None) -> dict:
    """OpenAI's usage plus FastAV's numbers. kept_tokens and flops_ratio come with the model's final
    response; an answer cut by a stop string cancels the model before it, so they (and the prompt's
    length) are then unknown: null."""
    prompt_tokens = int(kept_tokens[0]) if kept_tokens else None
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
             "total_tokens": None if prompt_tokens is None else prompt_tokens + completion_tokens}
    if kept_tokens:
        usage["kept_tokens"] = [int(count) for count in kept_tokens]
        usage["flops_ratio"] = float(flops_ratio)
    return usage


class CompletionIds:
    """The id, creation time and model name that every object of one completion shares."""

    def __init__(self, model: str):
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model

    def _object(self, kind: str, choices: list) -> dict:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model, "choices": choices}

    def completion(self, text: str, outcome: Outcome) -> dict:
        """The `chat.completion` object of a non-streaming request."""
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                  "finish_reason": outcome.finish_reason}
        return {**self._object("chat.completion", [choice]), "usage": outcome.usage}

    def chunk(self, delta: dict, finish: str | None = None, include_usage: bool = False) -> dict:
        """A `chat.completion.chunk` with one choice; with include_usage it carries `usage: null`, as OpenAI's do."""
        chunk = self._object("chat.completion.chunk",
                             [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])
        return {**chunk, "usage": None} if include_usage else chunk

    def usage_chunk(self, usage: dict) -> dict:
        """The last chunk of a stream that asked for usage (`stream_options.include_usage`): no choices."""
        return {**self._object("chat.completion.chunk", []), "usage": usage}


def server_sent_event(data: dict | str) -> bytes:
    """One SSE event: `data: <JSON>` (or `data: [DONE]`) and a blank line."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


DONE = server_sent_event("[DONE]")

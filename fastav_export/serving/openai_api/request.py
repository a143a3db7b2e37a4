"""An OpenAI chat-completion body -> one validated request for the streaming Triton model.

Pure (no server, no network): every way a body can be wrong is one `EndpointError` with the
HTTP status and OpenAI's error fields, so any JSON body gives either a `ChatRequest` or that
error (property-tested).

What the served model can do decides what is accepted:
- one user message (no system/developer prompt: the engine applies the model's own chat
  template and system prompt; no earlier turns: it answers one question about one video),
  whose content holds text parts (the question, joined by newlines) and exactly one
  `video_url` part (see media_urls.py);
- greedy generation: `temperature` 0, `top_p` 1, `n` 1, no penalties or logprobs
  (absent or null means the same); `max_tokens` / `max_completion_tokens`, `stream`,
  `stream_options.include_usage`, `stop` (a string or up to 4 strings);
- `pruning`: an object of FastAV overrides, passed to the model's `pruning` input as JSON
  (the model validates it). The `openai` client sends it with `extra_body={"pruning": {...}}`.
Unknown fields are refused, as OpenAI does, rather than silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import FastAVError
from ...user_io.json_input import parse_json
from .media_urls import video_from_url
from .errors import EndpointError

MAX_STOP_STRINGS = 4
MAX_TOKENS_LIMIT = 2**31 - 1  # the model's max_new_tokens input is INT32
# Fields that would change a sampled answer: accepted only at the value greedy decoding implies.
GREEDY_VALUES = {"temperature": 0, "top_p": 1, "n": 1, "frequency_penalty": 0, "presence_penalty": 0,
                 "logprobs": False}
# Fields that do not change a greedy answer: accepted (when well-typed) and not used.
UNUSED = {"user": str, "seed": int}
FIELDS = ("model", "messages", "max_tokens", "max_completion_tokens", "stream", "stream_options", "stop",
          "pruning", *GREEDY_VALUES, *UNUSED)
MESSAGE_FIELDS = ("role", "content", "name")


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat completion request.

    max_tokens: None leaves the count to the served model's default (`fastav-export triton --max-new-tokens`).
    stop:       strings that end the answer (cut before the first one found).
    pruning:    FastAV overrides for the model's `pruning` input, or None.
    """

    question: str
    video: bytes
    max_tokens: int | None = None
    stream: bool = False
    include_usage: bool = False
    stop: tuple[str, ...] = ()
    pruning: dict | None = None


def parse_body(raw: bytes) -> dict:
    """The request body's JSON object (bytes as received)."""
    try:
        body = parse_json(raw, "the request body")
    except FastAVError as exc:
        raise EndpointError(str(exc), code="invalid_json") from None
    if not isinstance(body, dict):
        raise EndpointError(f"the request body is a JSON {_json_type(body)}: send a JSON object "
                            '{"model": ..., "messages": [...]}', code="invalid_json")
    return body


def parse_chat_request(body, model: str, media_root: Path | None, max_media_bytes: int) -> ChatRequest:
    """Validate a chat completion body for the served `model`; file URLs may name files under `media_root`
    (None: no file URLs) of at most `max_media_bytes`."""
    if not isinstance(body, dict):
        raise EndpointError(f"the request body is a JSON {_json_type(body)}: send a JSON object", code="invalid_json")
    unknown = [name for name in body if name not in FIELDS]
    if unknown:
        raise EndpointError(f"unrecognized request argument {unknown[0]!r}: this endpoint accepts "
                            f"{', '.join(FIELDS)}", param=unknown[0], code="unknown_parameter")
    _check_model(body, model)
    _check_greedy(body)
    for name, kind in UNUSED.items():
        _typed(body, name, kind)
    stream = bool(_typed(body, "stream", bool))
    include_usage = _include_usage(body, stream)
    max_tokens = _max_tokens(body)
    stop = _stop_strings(body.get("stop"))
    pruning = _typed(body, "pruning", dict)
    question, url, url_param = _user_message(body.get("messages"))
    video = video_from_url(url, media_root, max_media_bytes, url_param)
    return ChatRequest(question, video, max_tokens, stream, include_usage, stop, pruning)


_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number",
               type(None): "null"}


def _json_type(value) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _typed(body: dict, name: str, kind: type):
    """body[name] when it is a `kind` (JSON null counts as absent: None), else an error naming the field."""
    value = body.get(name)
    if value is None:
        return None
    # JSON true/false are Python bools, which are ints too: never accept one for the other.
    if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    want = {int: "an integer", bool: "true or false", str: "a string", dict: "a JSON object"}[kind]
    raise EndpointError(f"{name} is a JSON {_json_type(value)}: send {want}", param=name, code="invalid_type")


def _check_model(body: dict, model: str) -> None:
    name = body.get("model")
    if not isinstance(name, str):
        raise EndpointError(f"model is {'missing' if name is None else 'not a string'}: send the served model's "
                            f"name, {model!r}", param="model", code="missing_required_parameter")
    if name != model:
        raise EndpointError(f"the model {name!r} does not exist: this endpoint serves {model!r}", status=404,
                            param="model", code="model_not_found")


def _check_greedy(body: dict) -> None:
    for name, greedy in GREEDY_VALUES.items():
        value = body.get(name)
        if value is None:
            continue
        numeric = isinstance(greedy, int) and not isinstance(greedy, bool)
        if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise EndpointError(f"{name} is a JSON {_json_type(value)}: send a number", param=name,
                                code="invalid_type")
        if not numeric and not isinstance(value, bool):
            raise EndpointError(f"{name} is a JSON {_json_type(value)}: send true or false", param=name,
                                code="invalid_type")
        if value != greedy:
            raise EndpointError(_NOT_GREEDY.get(name, f"{name} must be {str(greedy).lower()} or absent: this server "
                                                      "decodes greedily"), param=name, code="unsupported_value")


_NOT_GREEDY = {"temperature": "sampling is not supported; set temperature to 0",
               "n": "n must be 1 or absent: this server returns one choice",
               "logprobs": "logprobs are not supported: leave logprobs false or absent"}


def _include_usage(body: dict, stream: bool) -> bool:
    options = _typed(body, "stream_options", dict)
    if options is None:
        return False
    if not stream:
        raise EndpointError("stream_options is only allowed when stream is true", param="stream_options",
                            code="invalid_value")
    unknown = [key for key in options if key != "include_usage"]
    if unknown:
        raise EndpointError(f"stream_options has the unknown option {unknown[0]!r}: only include_usage is "
                            "supported", param="stream_options", code="unknown_parameter")
    include = options.get("include_usage")
    if include is not None and not isinstance(include, bool):
        raise EndpointError("stream_options.include_usage must be true or false", param="stream_options",
                            code="invalid_type")
    return bool(include)


def _max_tokens(body: dict) -> int | None:
    values = {name: _typed(body, name, int) for name in ("max_tokens", "max_completion_tokens")}
    given = {name: value for name, value in values.items() if value is not None}
    if len(set(given.values())) > 1:
        raise EndpointError("max_tokens and max_completion_tokens disagree: send one of them",
                            param="max_completion_tokens", code="invalid_value")
    for name, value in given.items():
        if not 1 <= value <= MAX_TOKENS_LIMIT:
            raise EndpointError(f"{name} is {value}: send a count from 1 to the model's limit", param=name,
                                code="invalid_value")
    return next(iter(given.values()), None)


def _stop_strings(stop) -> tuple[str, ...]:
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise EndpointError(f"stop is a JSON {_json_type(stop)}: send a string or a list of up to "
                            f"{MAX_STOP_STRINGS} strings", param="stop", code="invalid_type")
    if len(stops) > MAX_STOP_STRINGS or not all(stops):
        raise EndpointError(f"stop holds {len(stops)} strings{'' if all(stops) else ', some empty'}: send up to "
                            f"{MAX_STOP_STRINGS} non-empty strings", param="stop", code="invalid_value")
    return tuple(stops)


def _user_message(messages) -> tuple[str, str, str]:
    """(the question, the video URL, that URL's field path) of the one user message."""
    if not isinstance(messages, list) or not messages:
        raise EndpointError("messages must be a non-empty array holding one user message", param="messages",
                            code="missing_required_parameter" if messages is None else "invalid_type")
    for index, message in enumerate(messages):
        _check_role(message, f"messages[{index}]")
    if len(messages) > 1:
        raise EndpointError(f"messages holds {len(messages)} messages: send one user message (this model answers "
                            "one question about one video; earlier turns are not supported)", param="messages",
                            code="invalid_value")
    message = messages[0]
    unknown = [key for key in message if key not in MESSAGE_FIELDS]
    if unknown:
        raise EndpointError(f"messages[0] has the unknown field {unknown[0]!r}: send role, content (and name)",
                            param="messages[0]", code="unknown_parameter")
    return _question_and_video(message.get("content"), "messages[0].content")


def _check_role(message, param: str) -> None:
    if not isinstance(message, dict):
        raise EndpointError(f"{param} is a JSON {_json_type(message)}: send an object with role and content",
                            param=param, code="invalid_type")
    role = message.get("role")
    if role in ("system", "developer"):
        raise EndpointError(f"{role} messages are not supported: the engine applies the model's own chat "
                            "template and system prompt; send only the user message", param=f"{param}.role",
                            code="unsupported_value")
    if role != "user":
        shown = repr(role) if isinstance(role, str) else f"a JSON {_json_type(role)}"
        raise EndpointError(f"the role {shown} is not supported: send one message with role 'user'",
                            param=f"{param}.role", code="unsupported_value")


def _question_and_video(content, param: str) -> tuple[str, str, str]:
    if isinstance(content, str):
        raise EndpointError("the message has no video: send content as a list of parts, text parts with the "
                            'question and one {"type": "video_url", "video_url": {"url": ...}}', param=param,
                            code="missing_required_parameter")
    if not isinstance(content, list):
        raise EndpointError(f"{param} is a JSON {_json_type(content)}: send a list of text and video_url parts",
                            param=param, code="invalid_type")
    texts, videos = [], []
    for index, part in enumerate(content):
        at = f"{param}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "video_url" and isinstance(part.get("video_url"), dict) \
                and isinstance(part["video_url"].get("url"), str):
            videos.append((part["video_url"]["url"], f"{at}.video_url.url"))
        elif kind in ("text", "video_url"):
            shape = '{"type": "text", "text": "..."}' if kind == "text" else \
                '{"type": "video_url", "video_url": {"url": "..."}}'
            raise EndpointError(f"{at} is a malformed {kind} part: send {shape}", param=at, code="invalid_type")
        else:
            shown = repr(kind) if isinstance(kind, str) else "a part without a type"
            raise EndpointError(f"{at} is {shown}: only text parts and one video_url part are supported",
                                param=at, code="unsupported_value")
    if len(videos) != 1:
        raise EndpointError(f"the message has {len(videos) or 'no'} video_url parts: send exactly one video",
                            param=param, code="invalid_value" if videos else "missing_required_parameter")
    question = "\n".join(texts)
    if not question.strip():
        raise EndpointError("the message has no question: add a text part asking about the video", param=param,
                            code="missing_required_parameter")
    return question, *videos[0]

"""The OpenAI-compatible HTTP front of a served engine: a FastAPI app that forwards to Triton.

    POST /v1/chat/completions   one user message with a question and a video_url part -> the answer,
                                as a `chat.completion` or as server-sent `chat.completion.chunk`s
    GET  /v1/models             the one model served
    GET  /v1/models/{model}

Bodies are parsed by request.py (in a worker thread: a 64 MB base64 video decodes there,
not on the event loop), answers are forwarded by triton_forwarder.py. Every refusal is OpenAI's
error object with its HTTP status. FastAPI is imported by `create_app`, so the package imports
without it. (No `from __future__ import annotations` here: FastAPI reads the handlers' annotations
at runtime, and they name classes imported inside `create_app`.)
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from ...optional import require
from .errors import EndpointError
from .objects import (
    DONE,
    CompletionIds,
    Outcome,
    finish_reason,
    server_sent_event,
    usage_object,
)
from .request import ChatRequest, parse_body, parse_chat_request
from .stop_strings import StopScanner
from .triton_forwarder import FEATURE, TritonForwarder

DEFAULT_MAX_BODY_MB = 64
OWNER = "fastav-export"


async def answer_stream(forwarder, chat: ChatRequest) -> AsyncIterator:
    """The answer's text pieces (str, none empty), cut before any stop string, then its `Outcome`.

    Closing it early (or a stop string) closes the forwarder's stream, which cancels the Triton request.
    """
    scanner = StopScanner(chat.stop)
    completion_tokens, final = 0, None
    pieces = forwarder.stream(chat)
    try:
        async for piece in pieces:
            completion_tokens += len(piece.token_ids)
            text = scanner.feed(piece.text)
            if text:
                yield text
            if scanner.stopped:
                break  # the finally below cancels the generation: its tokens would be thrown away
            if piece.final:
                final = piece
    finally:
        await _close_shielded(pieces)
    tail = scanner.flush()
    if tail:
        yield tail
    limit = chat.max_tokens if chat.max_tokens is not None else await forwarder.default_max_tokens()
    yield Outcome(finish_reason(scanner.stopped, completion_tokens, limit),
                  usage_object(completion_tokens, final and final.kept_tokens, final and final.flops_ratio))


async def _close_shielded(stream) -> None:
    """aclose() even inside a cancelled scope (a client that left): the close is what cancels Triton's work."""
    import anyio

    with anyio.CancelScope(shield=True):
        await stream.aclose()


async def read_limited_body(request, max_bytes: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed `max_bytes`: by its Content-Length
    header before reading, and while reading (a chunked body has no length)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise _too_large(int(length), max_bytes)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(size, max_bytes, at_least=True)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, max_bytes: int, at_least: bool = False) -> EndpointError:
    return EndpointError(f"the request body has {'more than ' if at_least else ''}{size - at_least:,} bytes, more "
                         f"than this server's limit of {max_bytes:,} (--max-body-mb): send a smaller video",
                         status=413, code="request_too_large")


def create_app(triton_url: str, model: str, media_root: Path | None = None,
               max_body_mb: int = DEFAULT_MAX_BODY_MB, forwarder=None):
    """The FastAPI app serving `model` of the tritonserver at `triton_url` (gRPC HOST:PORT).

    media_root: the directory `file://` video URLs may name (None: only data URLs).
    forwarder:  what answers requests (default: a TritonForwarder); tests pass a fake with the same
                `stream(chat)` async iterator, `default_max_tokens()` and `close()`.
    """
    fastapi = require("fastapi", FEATURE)
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException

    class ClosingStreamingResponse(StreamingResponse):
        """Closes its body iterator however the response ends. Starlette abandons it when a send fails (a
        client that disconnected, ASGI 2.4 servers such as uvicorn), and only the close cancels Triton's work."""

        async def __call__(self, scope, receive, send):
            try:
                await super().__call__(scope, receive, send)
            finally:
                await _close_shielded(self.body_iterator)

    forwarder = forwarder if forwarder is not None else TritonForwarder(triton_url, model)
    media_root = None if media_root is None else Path(media_root).resolve()
    max_bytes = max_body_mb * 2**20

    @asynccontextmanager
    async def lifespan(app):
        yield
        await forwarder.close()

    app = fastapi.FastAPI(title="fastav-export OpenAI-compatible endpoint", lifespan=lifespan, docs_url=None,
                          redoc_url=None, openapi_url=None)

    def error_response(error: EndpointError):
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(EndpointError)
    async def endpoint_error(request, error: EndpointError):
        return error_response(error)

    @app.exception_handler(HTTPException)
    async def http_error(request, error: HTTPException):  # unknown paths, wrong methods: OpenAI's shape too
        return error_response(EndpointError(f"{request.method} {request.url.path}: {error.detail}",
                                            status=error.status_code))

    model_object = {"id": model, "object": "model", "created": 0, "owned_by": OWNER}

    @app.get("/v1/models")
    async def list_models():
        return {"object": "list", "data": [model_object]}

    @app.get("/v1/models/{name:path}")
    async def retrieve_model(name: str):
        if name != model:
            raise EndpointError(f"the model {name!r} does not exist: this endpoint serves {model!r}", status=404,
                                param="model", code="model_not_found")
        return model_object

    @app.post("/v1/chat/completions")
    async def chat_completions(request: fastapi.Request):
        raw = await read_limited_body(request, max_bytes)
        chat = await run_in_threadpool(lambda: parse_chat_request(parse_body(raw), model, media_root, max_bytes))
        answer = answer_stream(forwarder, chat)
        # The first item before any status is sent: the model refuses a bad video or setting before
        # its first token, and that refusal must be a 4xx, not an error inside a 200 stream.
        try:
            first = await anext(answer)
        except BaseException:
            await _close_shielded(answer)
            raise
        ids = CompletionIds(model)
        if not chat.stream:
            return await _completion(ids, answer, first)
        return ClosingStreamingResponse(_events(ids, answer, first, chat.include_usage), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app


async def _completion(ids: CompletionIds, answer, item) -> dict:
    texts = []
    try:
        while not isinstance(item, Outcome):
            texts.append(item)
            item = await anext(answer)
    finally:
        await _close_shielded(answer)
    return ids.completion("".join(texts), item)


async def _events(ids: CompletionIds, answer, item, include_usage: bool) -> AsyncIterator[bytes]:
    """The SSE stream: a role chunk, one chunk per text piece, the finish chunk, [usage chunk,] [DONE].

    A client that disconnects ends this generator where it waits, and closing `answer` cancels Triton.
    """
    try:
        yield server_sent_event(ids.chunk({"role": "assistant", "content": ""}, include_usage=include_usage))
        while not isinstance(item, Outcome):
            yield server_sent_event(ids.chunk({"content": item}, include_usage=include_usage))
            item = await anext(answer)
        yield server_sent_event(ids.chunk({}, item.finish_reason, include_usage=include_usage))
        if include_usage:
            yield server_sent_event(ids.usage_chunk(item.usage))
        yield DONE
    except EndpointError as error:  # after the 200: the error as an event, which the openai client raises
        yield server_sent_event(error.body())
    finally:
        await _close_shielded(answer)

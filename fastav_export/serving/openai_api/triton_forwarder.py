"""Forward a chat request to the streaming (decoupled) Triton model over gRPC, one response per token.

The model (`fastav-export triton`, docs/serving.md) answers a media request with one response
per generated token (`token_ids` [1], `text`: the new piece's UTF-8 bytes) and then a final one
with `kept_tokens` [L] and `flops_ratio` [2] (and any text it held back). `TritonForwarder.stream`
turns those into `AnswerPiece`s; closing the iterator early cancels the gRPC stream, which the
model sees between tokens and stops generating (a stop string was found, the client left).

Failures become `EndpointError`s: the model's invalid-argument errors (the request's media or
settings are wrong) 400 with the model's message, its internal errors 500, an unreachable
server or a model that is not loaded 503.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from ...optional import require
from ..client import BUSY, media_request_inputs
from .errors import SERVER_ERROR, EndpointError
from .request import ChatRequest

FEATURE = "fastav-export serve-openai"


@dataclass(frozen=True)
class AnswerPiece:
    """One response of the streaming model: new token ids and text; the final one carries the summary."""

    token_ids: tuple[int, ...]
    text: str
    kept_tokens: list[int] | None = None
    flops_ratio: float | None = None

    @property
    def final(self) -> bool:
        return self.kept_tokens is not None


def answer_piece(result) -> AnswerPiece:
    """A tritonclient InferResult of the streaming model as an AnswerPiece."""
    names = {output.name for output in result.get_response().outputs}

    def array(name):
        return result.as_numpy(name) if name in names else None

    token_ids, text, kept = array("token_ids"), array("text"), array("kept_tokens")
    return AnswerPiece(
        token_ids=() if token_ids is None else tuple(int(t) for t in token_ids.reshape(-1)),
        # the model sends whole characters only (it holds back a split one), so each piece decodes alone
        text="" if text is None else np.asarray(text, np.uint8).tobytes().decode("utf-8", errors="replace"),
        kept_tokens=None if kept is None else [int(k) for k in kept.reshape(-1)],
        flops_ratio=None if kept is None else float(array("flops_ratio").reshape(-1)[0]))


def model_error(message: str) -> EndpointError:
    """An error response of the stream (gRPC streaming carries its message, not its status code)."""
    if message.startswith("internal error"):  # the model's own bugs (templates/model.py)
        return EndpointError(message, status=500, kind=SERVER_ERROR)
    if message.startswith(BUSY):  # the model's queue is full (scheduler.ServerBusy): retry later
        return EndpointError(message, status=503, kind=SERVER_ERROR, code="server_busy")
    if "unknown model" in message or "is not ready" in message or "unavailable" in message.lower():
        return EndpointError(f"the model is not available on the Triton server: {message}", status=503,
                             kind=SERVER_ERROR, code="model_unavailable")
    # The model answers a wrong request (media, question, settings) with INVALID_ARG and a message
    # that names the field to change.
    return EndpointError(message, status=400, code="invalid_value")


class TritonForwarder:
    """Streams chat requests to model `model` of the tritonserver whose gRPC endpoint is `url` (HOST:PORT).

    One gRPC channel serves every request; it is opened on first use, inside the server's event loop.
    """

    def __init__(self, url: str, model: str):
        self._grpc = require("tritonclient.grpc.aio", FEATURE)
        self.url, self.model = url, model
        self._client = None
        self._default_max_tokens: int | None = None

    def _connected(self):
        if self._client is None:
            self._client = self._grpc.InferenceServerClient(self.url)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def default_max_tokens(self) -> int | None:
        """The model's default token budget (its `max_new_tokens` parameter), or None when it cannot be read."""
        if self._default_max_tokens is None:
            try:
                config = await self._connected().get_model_config(self.model, as_json=True)
                value = config["config"]["parameters"]["max_new_tokens"]["string_value"]
                self._default_max_tokens = int(value)
            except Exception:  # noqa: BLE001  only finish_reason needs it: "stop" is the fallback
                return None
        return self._default_max_tokens

    async def stream(self, chat: ChatRequest) -> AsyncIterator[AnswerPiece]:
        """The model's responses to `chat`, up to and including the final one; aclose() cancels the request."""
        import grpc

        inputs = media_request_inputs(self._grpc, chat.question, chat.video, max_new_tokens=chat.max_tokens,
                                      pruning=chat.pruning)

        async def requests():
            yield {"model_name": self.model, "inputs": inputs}

        try:
            call = self._connected().stream_infer(requests())
        except self._grpc.InferenceServerException as exc:
            raise self._unreachable(exc) from None
        try:
            async for result, error in call:
                if error is not None:
                    raise model_error(error.message())
                piece = answer_piece(result)
                yield piece
                if piece.final:
                    return
        except grpc.aio.AioRpcError as exc:
            raise self._unreachable(exc.details() or exc.code().name) from None
        finally:
            # Also on an early close (a stop string, a client that left): the model stops before its next token.
            call.cancel()
        raise EndpointError("the Triton stream ended before the model's final response", status=503,
                            kind=SERVER_ERROR)

    def _unreachable(self, reason) -> EndpointError:
        return EndpointError(f"cannot reach the Triton server at {self.url} (gRPC): {reason}", status=503,
                             kind=SERVER_ERROR, code="triton_unavailable")

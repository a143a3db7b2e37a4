"""The one error type of the OpenAI-compatible endpoint: an HTTP status plus OpenAI's error fields.

OpenAI answers every refused request with `{"error": {"message", "type", "param", "code"}}`
and a 4xx status (5xx when the server side failed); clients such as the `openai` package
turn that into `BadRequestError`, `NotFoundError`, ... So parsing, media resolution and
forwarding all raise `EndpointError`, and the app answers it as it is.
"""

from __future__ import annotations

from ...errors import FastAVError

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


class EndpointError(FastAVError):
    """A request the endpoint answers with an error object (one-line message, as every FastAVError).

    status: the HTTP status (400 invalid, 404 unknown model, 413 too large, 500/503 server side).
    param:  the request field at fault, as a path (`messages[0].content[1].video_url.url`), or None.
    code:   a short machine-readable reason (`model_not_found`, `request_too_large`, ...), or None.
    """

    def __init__(self, message: str, status: int = 400, param: str | None = None, code: str | None = None,
                 kind: str = INVALID_REQUEST):
        super().__init__(message)
        self.status, self.param, self.code, self.kind = status, param, code, kind

    def body(self) -> dict:
        """OpenAI's error object."""
        return {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": self.code}}

"""Serve an OpenAI-compatible API in front of a running tritonserver.

POST /v1/chat/completions takes one user message with the question as text and the video as a
video_url part (data:video/...;base64,... or file:///path under --media-root), streamed (SSE)
or not, and forwards it over gRPC streaming to the streaming model NAME that `fastav-export
triton` rendered; GET /v1/models lists NAME. Generation is greedy (temperature 0); `stop`,
`max_tokens` and FastAV's `pruning` overrides are per request. See docs/serving.md.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import FastAVError
from .arg_types import host_port, port_number, positive_int

EXAMPLES = """examples:
  fastav-export serve-openai --triton localhost:8001 --model videollama2-tiny-fp32
  fastav-export serve-openai --triton localhost:8001 --model videollama2-tiny-fp32 --media-root /data/videos --port 9000
  curl http://127.0.0.1:8080/v1/models
"""

DEFAULT_PORT = 8080
MAX_BODY_MB = 2047  # tritonclient's gRPC messages stop below 2 GiB

log = logging.getLogger("fastav_export")


def body_megabytes(text: str) -> int:
    """--max-body-mb: 1..MAX_BODY_MB."""
    value = positive_int(text)
    if value > MAX_BODY_MB:
        raise argparse.ArgumentTypeError(f"{value} MB is more than a gRPC message to Triton can carry: give at "
                                         f"most {MAX_BODY_MB}")
    return value


def add_arguments(parser) -> None:
    from ..serving.openai_api.app import DEFAULT_MAX_BODY_MB

    parser.add_argument("--triton", required=True, type=host_port, metavar="HOST:PORT",
                        help="the tritonserver's gRPC address (its --grpc-port, 8001 by default)")
    parser.add_argument("--model", required=True, metavar="NAME",
                        help="the streaming model `fastav-export triton` rendered (NAME, not NAME_oneshot)")
    parser.add_argument("--media-root", type=Path, metavar="DIR",
                        help="directory whose files requests may name as file:// video URLs (default: none; "
                             "only data: URLs)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT,
                        help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--max-body-mb", type=body_megabytes, default=DEFAULT_MAX_BODY_MB, metavar="MB",
                        help=f"largest request body and file:// video, in MiB (default {DEFAULT_MAX_BODY_MB})")


def main(args) -> int:
    import socket

    from ..optional import require
    from ..serving.openai_api.app import create_app
    from ..serving.openai_api.triton_forwarder import FEATURE

    if not args.model:
        raise FastAVError("--model is empty: give the name of the streaming model on the Triton server")
    if args.media_root is not None and not args.media_root.is_dir():
        raise FastAVError(f"--media-root {args.media_root} is not a directory: give the directory of the videos "
                          "requests may name")
    uvicorn = require("uvicorn", FEATURE)
    app = create_app(args.triton, args.model, args.media_root, args.max_body_mb)
    # The socket first: a port in use or a bad --host is one error line, not uvicorn's exit.
    try:
        listening = socket.create_server((args.host, args.port), family=_family(args.host))
    except (OSError, UnicodeError) as exc:
        raise FastAVError(f"cannot listen on {args.host}:{args.port}: {getattr(exc, 'strerror', None) or exc}") \
            from None
    host, port = listening.getsockname()[:2]
    log.info(f"serving model {args.model} of the Triton server at {args.triton} on http://{host}:{port}/v1 "
             f"(file URLs: {args.media_root.resolve() if args.media_root else 'off'})")
    level = logging.getLogger("fastav_export").getEffectiveLevel()
    config = uvicorn.Config(app, log_level=logging.getLevelName(max(level, logging.INFO)).lower())
    uvicorn.Server(config).run(sockets=[listening])
    return 0


def _family(host: str) -> int:
    import socket

    return socket.AF_INET6 if ":" in host else socket.AF_INET

"""An ASGI app served by uvicorn on a free loopback port in a thread, for tests that need a real HTTP server."""

from __future__ import annotations

import contextlib
import threading
import time

from fastav_export.serving.server_process import free_port


@contextlib.contextmanager
def serve_app(app, timeout_s: float = 20.0):
    """Yields the base URL (`http://127.0.0.1:PORT`); the server is stopped (and its thread joined) on exit."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)

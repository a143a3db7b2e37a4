"""The skip every test module that starts a real tritonserver shares."""

from __future__ import annotations

import pytest


def skip_without_tritonserver() -> None:
    """Skip the calling module (call it at import) unless tritonclient and a tritonserver binary are present."""
    for module in ("tritonclient.grpc", "tritonclient.http"):
        pytest.importorskip(module, reason="the serving tests need tritonclient[http,grpc] (the test extra)")
    try:
        from fastav_export.serving.tritonserver import find_tritonserver

        find_tritonserver()
    except Exception as exc:  # noqa: BLE001  the reason is shown by the skip
        pytest.skip(f"no tritonserver: {exc}", allow_module_level=True)

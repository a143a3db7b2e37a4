"""Hostile `media` payloads on a real tritonserver (CPU, loopback): playlists and descriptors that
would make FFmpeg read the server's files or open sockets are refused quickly, all with the same
error (so a client cannot probe which files exist), and the server keeps answering.

No network: the only URLs are 127.0.0.1 on a closed port, and they are refused before any is opened.
"""

from __future__ import annotations

import time

import pytest

from fastav_export.models import placeholder_id_for
from fastav_export.serving.client import media_request_inputs
from fastav_export.serving.repository import RepositorySettings, render_repository

from .server_required import skip_without_tritonserver

skip_without_tritonserver()

import tritonclient.http as httpclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from fastav_export.serving.server_process import TritonServer  # noqa: E402

# slow: starts a real tritonserver; one group, so one test worker starts the module's server (pyproject.toml's
# --dist loadgroup), not every worker that runs one of its tests
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hostile-media")]

MODEL = "videollama2-tiny"
NAME = "vl2"
QUESTION = "What is happening?"
CLOSED_PORT_URL = "http://127.0.0.1:9/clip.mp4"


@pytest.fixture(scope="module")
def served(tiny_engine, tmp_path_factory):
    work = tmp_path_factory.mktemp("triton-hostile")
    manifest = tiny_engine(MODEL, media=True)
    render_repository(manifest, work / "repo", RepositorySettings(NAME, instances=1, max_new_tokens=4,
                                                                  placeholder_id=placeholder_id_for(MODEL)))
    server = TritonServer([work / "repo"], [f"{NAME}_oneshot"], work)
    try:
        yield server
    finally:
        server.stop()


def _payloads(clip) -> dict[str, bytes]:
    """ffconcat, SDP and HLS payloads naming a clip on the server's disk, a missing file and URLs."""
    return {
        "ffconcat of a clip that exists": f"ffconcat version 1.0\nfile {clip}\n".encode(),
        "ffconcat of a relative name": f"ffconcat version 1.0\nfile {clip.name}\n".encode(),
        "ffconcat of a missing file": f"ffconcat version 1.0\nfile {clip.parent / 'missing.mp4'}\n".encode(),
        "ffconcat of a file url": f"ffconcat version 1.0\nfile file:{clip}\n".encode(),
        "ffconcat repeating a clip": b"ffconcat version 1.0\n" + f"file {clip}\n".encode() * 250,
        "sdp": (b"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=clip\nc=IN IP4 127.0.0.1\nt=0 0\n"
                b"m=video 5004 RTP/AVP 96\na=rtpmap:96 H264/90000\n"),
        "hls of a file url": f"#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3,\nfile:{clip}\n#EXT-X-ENDLIST\n".encode(),
        "hls of an http url": f"#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3,\n{CLOSED_PORT_URL}\n"
                              "#EXT-X-ENDLIST\n".encode(),
        "not media": b"not a video file at all\n" * 4,
    }


def _ask(server, media: bytes):
    client = httpclient.InferenceServerClient(server.http_url, network_timeout=120)
    try:
        return client.infer(f"{NAME}_oneshot", media_request_inputs(httpclient, QUESTION, media))
    finally:
        client.close()


def test_playlists_and_descriptors_get_one_error_quickly_and_the_server_keeps_answering(served, media_clip):
    errors = {}
    for kind, payload in _payloads(media_clip).items():
        started = time.perf_counter()
        with pytest.raises(InferenceServerException) as caught:
            _ask(served, payload)
        assert time.perf_counter() - started < 5, kind  # an SDP held the instance for 20 s
        errors[kind] = caught.value.message()
    assert len(set(errors.values())) == 1, errors
    assert "not a media file" in errors["sdp"]
    started = time.perf_counter()
    answer = _ask(served, media_clip.read_bytes())
    assert answer.as_numpy("token_ids").size >= 1 and time.perf_counter() - started < 30
    assert served.alive()

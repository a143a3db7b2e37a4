"""Continuous batching on a real tritonserver: many users with different videos at once.

The served video-SALMONN 2 engine lays each clip out by its own frames and length, so requests
for clips of different durations have different layouts and prompt lengths; they decode in one
batch and each answer equals `fastav-export run` for its clip and question. A stream cancelled
mid-way frees its row, a request over the KV budget is refused, and a full queue answers
"server busy" while the admitted requests still finish.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fastav_export.cli import main as cli_main
from fastav_export.models import placeholder_id_for
from fastav_export.serving.client import answer_text, media_request_inputs, request_inputs
from fastav_export.serving.engine import ServedEngine
from fastav_export.serving.repository import RepositorySettings, render_repository
from fastav_export.testing.media_clips import write_test_clip

from .inputs import make_request, stream_request
from .server_required import skip_without_tritonserver

skip_without_tritonserver()

import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from fastav_export.serving.server_process import TritonServer  # noqa: E402

# slow: starts a real tritonserver; one group, so one test worker starts the module's server (pyproject.toml's
# --dist loadgroup), not every worker that runs one of its tests
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("continuous-batching")]

MODEL = "video-salmonn2-tiny"
NEW_TOKENS = 6
CLIP_SECONDS = (2.0, 3.0, 4.0)
QUESTIONS = ("What is happening?", "Which colours move across the frames, and what does the sound do?")


@pytest.fixture(scope="module")
def served(tiny_engine, tmp_path_factory):
    """(server, manifest, clips): `av` batches everything, `tight` has a KV budget below any request,
    `narrow` room for one request at a time and a queue of one."""
    work = tmp_path_factory.mktemp("batching")
    manifest = tiny_engine(MODEL, media=True)
    placeholder = placeholder_id_for(MODEL)
    settings = {"av": RepositorySettings("av", max_new_tokens=NEW_TOKENS, placeholder_id=placeholder),
                "tight": RepositorySettings("tight", placeholder_id=placeholder, kv_budget_mib=0.001),
                "narrow": RepositorySettings("narrow", placeholder_id=placeholder, kv_budget_mib=_one_row_mib(manifest),
                                             max_queue=1)}
    repositories = []
    for name, setting in settings.items():
        render_repository(manifest, work / name, setting)
        repositories.append(work / name)
    clips = [write_test_clip(work / f"clip-{seconds:g}s.mp4", seconds=seconds) for seconds in CLIP_SECONDS]
    server = TritonServer(repositories, ["av", "av_oneshot", "tight", "narrow"], work)
    try:
        yield server, manifest, clips
    finally:
        server.stop()


def _one_row_mib(manifest) -> float:
    """A budget that holds one decoder-only request of the default layout (all its tokens), not two."""
    dims = manifest.dims
    entries = dims.num_layers * (manifest.layout.n_tokens + manifest.max_new_tokens)
    return 1.5 * entries * 2 * dims.num_kv_heads * dims.head_size * 4 / (1 << 20)


def _expected(manifest, clip, question, tmp_path) -> dict:
    out = tmp_path / f"run-{clip.stem}-{len(question)}.json"
    assert cli_main(["run", str(manifest.path), "--video", str(clip), "--question", question,
                     "--max-new-tokens", str(NEW_TOKENS), "--json", str(out), "-q"]) == 0
    return json.loads(out.read_text())


def _oneshot(server, name, inputs):
    client = httpclient.InferenceServerClient(server.http_url)
    try:
        result = client.infer(name, inputs)
        outputs = {o["name"] for o in result.get_response()["outputs"]}
        return (result.as_numpy("token_ids").tolist(), {n: result.as_numpy(n) for n in outputs},
                answer_text(result.as_numpy("text")))
    finally:
        client.close()


def test_64_concurrent_requests_of_mixed_videos_get_their_single_request_answers(served, tmp_path):
    """48 media requests (clips of 3 lengths, 2 questions: different layouts and prompt lengths) and 16
    decoder-only requests that generate the engine's most tokens, so that rows overlap."""
    server, manifest, clips = served
    cases = [(clip, question) for clip in clips for question in QUESTIONS]
    expected = {case: _expected(manifest, *case, tmp_path) for case in cases}
    assert len({answer["n_tokens"] for answer in expected.values()}) >= 4  # different layouts and prompt lengths
    videos = {clip: clip.read_bytes() for clip in clips}
    decoder_requests = [make_request(manifest, placeholder_id_for(MODEL), seed) for seed in range(4)]
    engine = ServedEngine.open(manifest.path)
    try:
        decoder_expected = [engine.generate(engine.parse({"input_ids": ids, "mm_embeds": mm, "max_new_tokens":
                                                          np.array([manifest.max_new_tokens], np.int32)}))[0]
                            for ids, mm in decoder_requests]
    finally:
        engine.close()

    def ask(i):
        if i % 4 == 3:
            ids, mm = decoder_requests[i % len(decoder_requests)]
            inputs = request_inputs(grpcclient, ids, mm, max_new_tokens=manifest.max_new_tokens)
            return stream_request(server, "av", inputs)
        clip, question = cases[i % len(cases)]
        if i % 2:
            return stream_request(server, "av", media_request_inputs(grpcclient, question, videos[clip]))
        return _oneshot(server, "av_oneshot", media_request_inputs(httpclient, question, videos[clip]))

    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(ask, range(64)))
    for i, (tokens, summary, text) in enumerate(answers):
        if i % 4 == 3:
            assert tokens == decoder_expected[i % len(decoder_requests)], f"request {i}"
            continue
        want = expected[cases[i % len(cases)]]
        assert tokens == want["token_ids"] and text == want["text"], f"request {i}"
        assert summary["kept_tokens"][0] == want["n_tokens"]
        assert summary["queue_seconds"][0] >= 0
    assert max(int(summary["batch_size"][0]) for _, summary, _ in answers) > 1  # requests shared decode steps
    assert "non-writable" not in server.log()  # the model copies the stub's read-only inputs before torch sees them


def test_a_stream_cancelled_midway_frees_its_row_and_the_others_finish(served):
    server, manifest, clips = served
    ids, mm = make_request(manifest, placeholder_id_for(MODEL), seed=3)
    long = request_inputs(grpcclient, ids, mm, max_new_tokens=manifest.max_new_tokens)
    with ThreadPoolExecutor(4) as pool:
        cancelled = pool.submit(stream_request, server, "av", long, cancel_after=2)
        others = [pool.submit(stream_request, server, "av", request_inputs(grpcclient, ids, mm, max_new_tokens=8))
                  for _ in range(3)]
        tokens, summary, _ = cancelled.result()
        finished = [future.result() for future in others]
    assert len(tokens) == 2 and summary is None
    assert all(result[0] == finished[0][0] and len(result[0]) == 8 for result in finished)
    deadline = time.monotonic() + 60
    while "request cancelled after" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.25)
    assert "request cancelled after" in server.log()


def test_a_request_over_the_kv_budget_is_refused_with_its_size(served):
    server, manifest, _ = served
    ids, mm = make_request(manifest, placeholder_id_for(MODEL), seed=1)
    with pytest.raises(InferenceServerException, match=r"needs .* MiB of KV cache and the server's budget is"):
        stream_request(server, "tight", request_inputs(grpcclient, ids, mm))
    assert server.alive()


def test_a_full_queue_answers_server_busy_and_the_admitted_requests_finish(served):
    server, manifest, _ = served
    ids, mm = make_request(manifest, placeholder_id_for(MODEL), seed=2)
    inputs = request_inputs(grpcclient, ids, mm, max_new_tokens=manifest.max_new_tokens)

    def ask(_):
        try:
            return stream_request(server, "narrow", inputs)
        except InferenceServerException as exc:
            return exc

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(ask, range(16)))
    busy = [r for r in results if isinstance(r, InferenceServerException)]
    done = [r for r in results if not isinstance(r, InferenceServerException)]
    assert busy and all("server busy" in str(exc) for exc in busy)
    assert done and all(r[0] == done[0][0] and int(r[1]["batch_size"][0]) == 1 for r in done)

"""A real tritonserver under a hostile user: a killed stub process, a cancelled stream,
wrong requests over HTTP, an engine path with a space.

One server serves two models: `sp` over a copy of the tiny engine at a path with a space
(2 instances), and `long` over a tiny engine built for 2,000 new tokens, so a generation
lasts long enough to be cancelled midway. The stub watchdog may restart a model once.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import time
from pathlib import Path

import pytest

from fastav_export.models import placeholder_id_for
from fastav_export.serving.client import request_inputs
from fastav_export.serving.engine import ServedEngine
from fastav_export.serving.repository import RepositorySettings, render_repository
from fastav_export.testing.models import build_tiny_engine

from .inputs import make_request
from .server_required import skip_without_tritonserver

skip_without_tritonserver()

import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from fastav_export.serving.server_process import TritonServer  # noqa: E402

# slow: starts real tritonservers and kills their stubs; one group, so one test worker starts the module's server (pyproject.toml's
# --dist loadgroup), not every worker that runs one of its tests
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("server-reliability")]

MODEL = "videollama2-tiny"
LONG = 2000


@pytest.fixture(scope="module")
def served(tiny_engine, tmp_path_factory):
    work = tmp_path_factory.mktemp("reliability")
    spaced = work / "engine dir" / f"{MODEL}-fp32"
    shutil.copytree(tiny_engine(MODEL).path, spaced)
    long = build_tiny_engine(work / "long-engine", MODEL, rollout=False, max_new_tokens=LONG)
    placeholder = placeholder_id_for(MODEL)
    from fastav_export.engine.manifest import load_engine_dir

    # One repository per rendering: rendering into a repository replaces what it held.
    render_repository(load_engine_dir(spaced), work / "repo-sp",
                      RepositorySettings("sp", instances=2, placeholder_id=placeholder))
    render_repository(long, work / "repo-long", RepositorySettings("long", placeholder_id=placeholder))
    server = TritonServer([work / "repo-sp", work / "repo-long"], ["sp_oneshot", "long"], work, max_stub_restarts=1)
    try:
        yield server, load_engine_dir(spaced), long
    finally:
        server.stop()


def _oneshot(server, ids, mm, **options):
    client = httpclient.InferenceServerClient(server.http_url)
    try:
        return client.infer("sp_oneshot", request_inputs(httpclient, ids, mm, **options)).as_numpy("token_ids").tolist()
    finally:
        client.close()


def _wait_for(condition, what: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def test_an_engine_path_with_a_space_serves(served):
    server, manifest, _ = served
    ids, mm = make_request(manifest, placeholder_id_for(MODEL), seed=3)
    expected, _ = ServedEngine(manifest).generate(ServedEngine(manifest).parse({"input_ids": ids, "mm_embeds": mm}))
    assert _oneshot(server, ids, mm) == expected


@pytest.mark.parametrize("options,field", [
    ({"fine_ratio": 1.5}, "fine_ratio"),
    ({"pruning": {"alpha": 2}}, "alpha"),
    ({"pruning": {"cutoff": True}}, "cutoff"),
    ({"pruning": "[" * 5000 + "]" * 5000}, "pruning"),
    ({"max_new_tokens": 1000}, "max_new_tokens"),
])
def test_user_errors_are_http_400_and_name_request_fields(served, options, field):
    """User errors come back as HTTP 400 naming request fields, not CLI flags (`--fine-ratio`); deeply
    nested JSON is a user error, not an "internal error (RecursionError)"; `{"cutoff": true}` is refused."""
    server, manifest, _ = served
    ids, mm = make_request(manifest, placeholder_id_for(MODEL), seed=1)
    with pytest.raises(InferenceServerException) as error:
        _oneshot(server, ids, mm, **options)
    assert error.value.status() == "400", str(error.value)
    message = error.value.message()
    outside_commands = "".join(message.split("`")[::2])  # a quoted `fastav-export build ...` may name flags
    assert field in message and "internal error" not in message and "--" not in outside_commands, message


def test_a_cancelled_stream_stops_generating(served):
    """A cancelled gRPC stream stops generating (instead of going on to the end: here 2,000 tokens)."""
    server, _, long = served
    ids, mm = make_request(long, placeholder_id_for(MODEL), seed=2)
    responses = queue.Queue()
    client = grpcclient.InferenceServerClient(server.grpc_url)
    client.start_stream(callback=lambda result, error: responses.put((result, error)))
    try:
        client.async_stream_infer("long", request_inputs(grpcclient, ids, mm, max_new_tokens=LONG))
        for _ in range(3):
            result, error = responses.get(timeout=60)
            assert error is None, error
        client.stop_stream(cancel_requests=True)
    finally:
        client.close()
    line = _wait_for(lambda: next((x for x in server.log().splitlines() if "request cancelled after" in x), None),
                     "the model to log the cancellation", timeout=60)
    generated = int(line.split("request cancelled after ")[1].split()[0])
    assert 3 <= generated < LONG, line


def _stubs(server, model: str) -> list[int]:
    """Live stub pids of `model` the watchdog tracks (not those of a replaced generation)."""
    return sorted(pid for pid, stub in dict(server.watchdog.stubs).items()
                  if stub.model == model and pid not in server.watchdog.retired)


def test_a_killed_stub_is_restarted_then_a_crash_loop_is_unloaded(served):
    """After `kill -9` of one stub, requests do not fail for ever with "Stub process ... is not healthy",
    the model does not report ready while broken, the death is logged, and shutdown leaves none of the
    stubs' shared memory in /dev/shm. Triton 2.51 never restarts a stub, so the watchdog reloads the model (it
    recovers); a second death within the window (max 1 restart here) unloads it (not ready)."""
    server, manifest, _ = served
    ids, mm = make_request(manifest, placeholder_id_for(MODEL), seed=4)
    good = _oneshot(server, ids, mm)
    victims = _wait_for(lambda: len(_stubs(server, "sp_oneshot")) == 2 and _stubs(server, "sp_oneshot"),
                        "the watchdog to see both stubs")
    os.kill(victims[0], signal.SIGKILL)
    for _ in range(4):  # before the watchdog notices, half of these reach the dead instance and fail
        try:
            _oneshot(server, ids, mm)
        except InferenceServerException as exc:
            assert "is not healthy" in str(exc), str(exc)
    _wait_for(lambda: "model 'sp_oneshot' is serving again" in server.log(), "the model to be reloaded")
    assert "stub of sp_oneshot_0_" in server.log() and f"(pid {victims[0]}) died" in server.log()
    assert server.model_ready("sp_oneshot")
    assert all(_oneshot(server, ids, mm) == good for _ in range(6))  # every instance serves again

    replacements = _wait_for(lambda: len(_stubs(server, "sp_oneshot")) == 2 and _stubs(server, "sp_oneshot"),
                             "the watchdog to see the new stubs")
    assert not set(replacements) & set(victims)
    os.kill(replacements[0], signal.SIGKILL)
    _wait_for(lambda: "reports not ready" in server.log(), "the crash loop to unload the model")
    _wait_for(lambda: not server.model_ready("sp_oneshot"), "the model to report not ready")
    assert server.model_ready("long")  # the other model is untouched

    regions = set(server.watchdog.shm_regions)
    server.stop()
    assert regions and not [name for name in regions if (Path("/dev/shm") / name).exists()]


def test_launcher_arguments():
    from fastav_export.serving.tritonserver import launch_arguments

    args, url = launch_arguments(["--model-repository=repo", "--http-port", "9000"])
    assert args[-2:] == ["--model-control-mode=explicit", "--load-model=*"] and url == "127.0.0.1:9000"
    assert launch_arguments(["--model-repository=repo", "--model-control-mode=poll"])[1] is None
    assert launch_arguments(["--model-repository=repo", "--allow-http=false"])[1] is None
    assert launch_arguments(["--model-repository=repo", "--http-address=10.0.0.2"])[1] == "10.0.0.2:8000"


def test_the_launcher_refuses_repositories_the_stub_cannot_use(tmp_path, capsys):
    from fastav_export.serving.tritonserver import main

    assert main(["--model-repository", str(tmp_path / "my repo")]) == 2
    assert "whitespace" in capsys.readouterr().err
    assert main([f"--model-repository={Path(tmp_path, 'repü')}"]) == 2
    assert "non-ASCII" in capsys.readouterr().err

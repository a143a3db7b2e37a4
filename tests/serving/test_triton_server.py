"""The rendered repository on a real tritonserver (CPU, ONNX Runtime, loopback).

One server per module serves: the tiny default engine of every family (streaming + one-shot models,
one instance each, which batches concurrent requests itself, with their encoders and tokenizers for
media requests), a model over a tampered copy of an engine and one over an engine directory that no
longer exists (both must fail to load with their reason in the log).
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fastav_export.engine.manifest import MANIFEST
from fastav_export.models import get_model_spec, placeholder_id_for
from fastav_export.serving.client import answer_text, media_request_inputs, request_inputs
from fastav_export.serving.engine import ServedEngine
from fastav_export.serving.repository import RepositorySettings, render_repository

from .inputs import make_request, run_command_tokens, stream_request
from .server_required import skip_without_tritonserver

skip_without_tritonserver()

import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from fastav_export.serving.server_process import TritonServer  # noqa: E402

# slow: starts a real tritonserver; one group, so one test worker starts the module's server (pyproject.toml's
# --dist loadgroup), not every worker that runs one of its tests
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("triton-server")]

MODELS = {"videollama2-tiny": "vl2", "video-salmonn2-tiny": "vs2", "qwen2.5-omni-tiny": "qo"}
NEW_TOKENS = 6


@pytest.fixture(scope="module")
def served(tiny_engine, tmp_path_factory):
    """(server, {model name: manifest}); the server is stopped when the module ends."""
    work = tmp_path_factory.mktemp("triton")
    repositories, manifests = [], {}
    for model, name in MODELS.items():
        manifest = tiny_engine(model, media=get_model_spec(model).has_media)
        repo = work / f"repo-{name}"
        render_repository(manifest, repo, RepositorySettings(name, max_new_tokens=NEW_TOKENS,
                                                             placeholder_id=placeholder_id_for(model)))
        repositories.append(repo)
        manifests[name] = manifest
    # Two broken engines: a modified graph file, and a directory removed after rendering.
    tampered = work / "tampered-engine"
    shutil.copytree(manifests["vl2"].path, tampered)
    graph = tampered / "onnx" / "post_5.onnx"  # a post graph: the embed graph is read when the manifest loads
    graph.write_bytes(graph.read_bytes() + b"\0")
    missing = work / "missing-engine"
    shutil.copytree(manifests["vl2"].path, missing)
    from fastav_export.engine.manifest import load_engine_dir

    for name, path in (("tampered", tampered), ("missing", missing)):
        render_repository(load_engine_dir(path, verify=False), work / f"repo-{name}", RepositorySettings(name))
        repositories.append(work / f"repo-{name}")
    shutil.rmtree(missing)
    ready = [m for name in MODELS.values() for m in (name, f"{name}_oneshot")]
    server = TritonServer(repositories, ready, work)
    try:
        yield server, manifests
    finally:
        server.stop()


def _oneshot(server, name, ids, mm, **options):
    return _oneshot_inputs(server, name, request_inputs(httpclient, ids, mm, **options))


def _oneshot_inputs(server, name, inputs):
    client = httpclient.InferenceServerClient(server.http_url)
    try:
        result = client.infer(f"{name}_oneshot", inputs)
        return result.as_numpy("token_ids").tolist(), result
    finally:
        client.close()


def _stream(server, name, ids, mm, **options):
    """(token ids from the per-token responses, the final response's outputs)."""
    tokens, summary, _ = _stream_inputs(server, name, request_inputs(grpcclient, ids, mm, **options))
    return tokens, summary


def _stream_inputs(server, name, inputs):
    """(token ids, the final response's outputs, the text pieces of the per-token responses joined)."""
    return stream_request(server, name, inputs)


@pytest.mark.parametrize("name", sorted(MODELS.values()))
def test_grpc_stream_and_http_oneshot_equal_the_run_command(served, name, tmp_path):
    server, manifests = served
    manifest = manifests[name]
    ids, mm = make_request(manifest, placeholder_id_for(manifest.model), seed=7)
    table = ServedEngine(manifest).default_backend.embedding_table().numpy()
    expected = run_command_tokens(manifest, table, ids, mm, NEW_TOKENS, tmp_path)
    streamed, summary = _stream(server, name, ids, mm)
    oneshot, result = _oneshot(server, name, ids, mm)
    assert streamed == expected and oneshot == expected
    assert summary["kept_tokens"].tolist() == result.as_numpy("kept_tokens").tolist()
    assert summary["kept_tokens"][0] == manifest.layout.n_tokens and summary["kept_tokens"][-1] < manifest.layout.n_tokens
    assert 0 < summary["flops_ratio"][0] < 1
    # A per-request override changes the schedule exactly as `run --fine-ratio` does.
    expected = run_command_tokens(manifest, table, ids, mm, 3, tmp_path, ("--fine-ratio", "0.5"))
    assert _stream(server, name, ids, mm, max_new_tokens=3, fine_ratio=0.5)[0] == expected


def test_16_concurrent_clients_get_their_sequential_outputs(served):
    server, manifests = served
    jobs = []
    for client in range(16):
        name = sorted(MODELS.values())[client % 2]
        manifest = manifests[name]
        for i in range(4):
            ids, mm = make_request(manifest, placeholder_id_for(manifest.model), seed=100 + 4 * client + i)
            jobs.append((client, name, ids, mm, "stream" if (client + i) % 2 else "oneshot"))

    def call(job):
        _, name, ids, mm, kind = job
        return _stream(server, name, ids, mm)[0] if kind == "stream" else _oneshot(server, name, ids, mm)[0]

    sequential = [call(job) for job in jobs]

    def client_run(client):
        return [call(job) for job in jobs if job[0] == client]

    with ThreadPoolExecutor(16) as pool:
        concurrent = [out for outs in pool.map(client_run, range(16)) for out in outs]
    ordered = [out for client in range(16) for out, job in zip(sequential, jobs, strict=True) if job[0] == client]
    assert concurrent == ordered
    assert len({tuple(t) for t in sequential}) > 1  # different inputs, different outputs


def test_malformed_requests_get_errors_and_the_server_keeps_serving(served):
    server, manifests = served
    manifest = manifests["vl2"]
    ids, mm = make_request(manifest, -201, seed=1)
    good = _oneshot(server, "vl2", ids, mm)[0]
    bad = {
        "wrong dtype": (ids, mm.astype(np.float64), {}, "FP64"),
        "wrong shape": (ids, mm[:, :10], {}, "mm_embeds"),
        "layout mismatch": (ids[:-1], mm, {}, "input_ids has 71"),
        "layout JSON mismatch": (ids, mm, {"layout": [{"kind": "text", "length": 5}]}, "covers 5 tokens"),
        "too many new tokens": (ids, mm, {"max_new_tokens": 1000}, "exceed the engine's limit"),
        "too many tokens": (np.zeros(300, np.int64), mm, {"layout": [{"kind": "text", "length": 300}]},
                            "at most 128"),
        "placeholder": (np.where(ids == -201, 3, ids), mm, {}, "placeholder -201"),
    }
    for what, (bad_ids, bad_mm, options, message) in bad.items():
        for call in (_oneshot, _stream):
            with pytest.raises(InferenceServerException, match=message):
                call(server, "vl2", bad_ids, bad_mm, **options)
            assert server.alive(), what
            assert call(server, "vl2", ids, mm)[0] == good, what


def test_bad_engine_directories_fail_to_load_with_their_reason(served):
    server, _ = served
    assert not server.model_ready("tampered") and not server.model_ready("missing")
    log = server.log()
    assert f"does not match the sha256 recorded in {MANIFEST}" in log
    assert "missing-engine is not a directory" in log
    lines = [line for line in log.splitlines() if "cannot load the engine directory" in line]
    assert any("tampered:" in line and "rebuild it with `fastav-export build`" in line for line in lines)
    assert server.model_ready("vl2")


@pytest.mark.parametrize("name", sorted(MODELS.values()))
def test_a_video_and_a_question_get_the_run_commands_answer(served, media_clip, tmp_path, name):
    """A media request (question + the video file's bytes) answers as `run ENGINE_DIR --video --question`,
    pruning on: VideoLLaMA2-AV on its fixed layout, video-SALMONN 2 on the layout of this clip's frames
    and length, Qwen2.5-Omni on its chunked layout with the clip's TMRoPE positions."""
    import json

    from fastav_export.cli import main as cli_main

    server, manifests = served
    manifest = manifests[name]
    question = "What is happening?"
    out = tmp_path / "run.json"
    assert cli_main(["run", str(manifest.path), "--video", str(media_clip), "--question", question,
                     "--max-new-tokens", str(NEW_TOKENS), "--json", str(out), "-q"]) == 0
    expected = json.loads(out.read_text())
    video = media_clip.read_bytes()
    streamed, summary, streamed_text = _stream_inputs(server, name, media_request_inputs(grpcclient, question, video))
    oneshot, result = _oneshot_inputs(server, name, media_request_inputs(httpclient, question, video))
    assert streamed == oneshot == expected["token_ids"]
    assert streamed_text == answer_text(result.as_numpy("text")) == expected["text"]
    assert summary["kept_tokens"][0] == expected["n_tokens"]
    kept_counts = {int(layer): len(rows[0]) for layer, rows in expected["kept"].items()}
    assert kept_counts and all(summary["kept_tokens"][layer] == count for layer, count in kept_counts.items())
    assert summary["kept_tokens"][-1] < expected["n_tokens"]  # pruning was on
    if name != "vl2":
        return
    # one form or the other, and a readable error for a bad file
    with pytest.raises(InferenceServerException, match="cannot also send"):
        ids, mm = make_request(manifest, -201, seed=1)
        _oneshot_inputs(server, "vl2", media_request_inputs(httpclient, question, video)
                        + request_inputs(httpclient, ids, mm))
    with pytest.raises(InferenceServerException, match="media"):
        _oneshot_inputs(server, "vl2", media_request_inputs(httpclient, question, b"not a video file"))
    assert server.alive()


@pytest.mark.slow
def test_a_silent_video_is_answered_with_silent_audio_and_refused_naming_the_fields_without(served, media_clip,
                                                                                             tmp_path):
    from fastav_export.testing.media_clips import write_test_clip

    server, _ = served
    silent = write_test_clip(tmp_path / "silent.mp4", seconds=2.0, audio=False).read_bytes()
    question = "What is happening?"
    oneshot, result = _oneshot_inputs(server, "vl2", media_request_inputs(httpclient, question, silent,
                                                                          silent_audio=True))
    streamed, _, _ = _stream_inputs(server, "vl2", media_request_inputs(grpcclient, question, silent,
                                                                        silent_audio=True))
    assert oneshot and streamed == oneshot and result.as_numpy("text") is not None
    with pytest.raises(InferenceServerException, match="the `media` input has no audio.*`silent_audio`") as caught:
        _oneshot_inputs(server, "vl2", media_request_inputs(httpclient, question, silent))
    assert "--" not in str(caught.value)
    with pytest.raises(InferenceServerException, match="the `audio` input is not a"):
        _oneshot_inputs(server, "vl2", media_request_inputs(httpclient, question, media_clip.read_bytes(),
                                                            audio=b"this is not audio" * 20))
    assert server.alive()

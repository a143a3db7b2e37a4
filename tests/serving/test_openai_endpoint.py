"""The OpenAI-compatible endpoint with the real `openai` client, in front of a real tritonserver.

The tiny VideoLLaMA2-AV engine with its encoders is served by tritonserver (the streaming model
only); the app runs under uvicorn in a thread. Answers must equal `fastav-export run ENGINE
--video --question` (computed in process, independently of Triton and the app).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .server_required import skip_without_tritonserver

skip_without_tritonserver()
openai = pytest.importorskip("openai", reason="the endpoint tests use the openai client (the test extra)")
pytest.importorskip("fastapi", reason="the OpenAI endpoint needs fastapi (the openai extra)")

from fastav_export.cli import main as cli_main
from fastav_export.serving.openai_api.app import create_app
from fastav_export.serving.repository import RepositorySettings, render_repository
from fastav_export.serving.server_process import TritonServer, free_port

from .served_app import serve_app

# slow: a real tritonserver; one group, so one test worker starts the module's server (pyproject.toml's
# --dist loadgroup), not every worker that runs one of its tests
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("openai-endpoint")]

NAME = "vl2"
NEW_TOKENS = 6
QUESTION = "What is happening?"
DOCS = Path(__file__).resolve().parent.parent.parent / "docs" / "serving.md"


@pytest.fixture(scope="module")
def endpoint(tiny_engine, media_clip, tmp_path_factory):
    """(openai client, media root holding clip.mp4, the engine's manifest, base URL)."""
    work = tmp_path_factory.mktemp("openai")
    manifest = tiny_engine("videollama2-tiny", media=True)
    render_repository(manifest, work / "repo", RepositorySettings(NAME, instances=1, max_new_tokens=NEW_TOKENS,
                                                                  placeholder_id=-201))
    media_root = work / "media"
    media_root.mkdir()
    shutil.copy(media_clip, media_root / "clip.mp4")
    with TritonServer([work / "repo"], [NAME], work) as server, \
            serve_app(create_app(server.grpc_url, NAME, media_root, max_body_mb=1)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)
        yield client, media_root, manifest, url


@pytest.fixture(scope="module")
def expected(endpoint, tmp_path_factory):
    """What `fastav-export run ENGINE --video --question --json` answers."""
    _, media_root, manifest, _ = endpoint
    out = tmp_path_factory.mktemp("run") / "run.json"
    assert cli_main(["run", str(manifest.path), "--video", str(media_root / "clip.mp4"), "--question", QUESTION,
                     "--max-new-tokens", str(NEW_TOKENS), "--json", str(out), "-q"]) == 0
    return json.loads(out.read_text())


def messages(url: str, question: str = QUESTION) -> list:
    return [{"role": "user", "content": [{"type": "text", "text": question},
                                         {"type": "video_url", "video_url": {"url": url}}]}]


def data_url(path: Path) -> str:
    return "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode()


def streamed(client, **request):
    """(the text, the last finish_reason, the usage chunk's usage) of a streamed completion."""
    text, finish, usage = "", None, None
    for chunk in client.chat.completions.create(model=NAME, stream=True, stream_options={"include_usage": True},
                                                **request):
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        usage = chunk.usage or usage
    return text, finish, usage


def test_streamed_and_whole_answers_equal_the_run_command(endpoint, expected):
    client, media_root, _, _ = endpoint
    file_url = f"file://{media_root}/clip.mp4"
    reply = client.chat.completions.create(model=NAME, messages=messages(data_url(media_root / "clip.mp4")))
    text, finish, usage = streamed(client, messages=messages(file_url))
    length = "length" if len(expected["token_ids"]) == NEW_TOKENS else "stop"
    assert reply.choices[0].message.content == text == expected["text"]
    assert reply.choices[0].finish_reason == finish == length
    for used in (reply.usage, usage):
        assert used.prompt_tokens == expected["n_tokens"] and used.completion_tokens == len(expected["token_ids"])
        assert used.total_tokens == used.prompt_tokens + used.completion_tokens
        assert used.model_extra["kept_tokens"][0] == expected["n_tokens"] > used.model_extra["kept_tokens"][-1]
        assert 0 < used.model_extra["flops_ratio"] < 1
    # max_tokens and a pruning override reach the model
    short = client.chat.completions.create(model=NAME, messages=messages(file_url), max_tokens=2,
                                           extra_body={"pruning": {"fine_ratio": 0.5}})
    assert short.usage.completion_tokens == 2 and short.choices[0].finish_reason == "length"


def test_a_stop_string_cuts_the_answer(endpoint, expected):
    client, media_root, _, _ = endpoint
    text = expected["text"]
    if len(text) < 2:
        pytest.skip(f"the tiny model's answer {text!r} is too short to stop inside")
    stop = text[len(text) // 2:]
    cut = text[:text.index(stop)]
    request = dict(messages=messages(f"file://{media_root}/clip.mp4"), stop=[stop, "never in the answer"])
    reply = client.chat.completions.create(model=NAME, **request)
    assert (reply.choices[0].message.content, reply.choices[0].finish_reason) == (cut, "stop")
    assert streamed(client, **request)[:2] == (cut, "stop")


def test_32_concurrent_clients_get_the_same_answer(endpoint, expected):
    client, media_root, _, _ = endpoint
    request = messages(f"file://{media_root}/clip.mp4")

    def ask(index):
        if index % 2:
            return streamed(client, messages=request)[0]
        return client.chat.completions.create(model=NAME, messages=request).choices[0].message.content

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(ask, range(32)))
    assert answers == [expected["text"]] * 32


def test_each_refusal_reaches_the_client_as_its_error(endpoint):
    client, media_root, _, url = endpoint
    clip = f"file://{media_root}/clip.mp4"
    create = client.chat.completions.create
    bad_request = {
        "sampling is not supported; set temperature to 0": dict(messages=messages(clip), temperature=0.7),
        "'https' scheme": dict(messages=messages("https://example.com/clip.mp4")),
        "not inside the server's media root": dict(messages=messages(f"file://{media_root}/../repo/vl2/config.pbtxt")),
        "system messages are not supported": dict(messages=[{"role": "system", "content": "Be brief."},
                                                            *messages(clip)]),
        "2 video_url parts": dict(messages=[{"role": "user", "content": messages(clip)[0]["content"] * 2}]),
        # refused by the model itself (INVALID_ARG): its message comes through
        "the `media` input is not a": dict(messages=messages("data:video/mp4;base64," +
                                                              base64.b64encode(b"not a video" * 10).decode())),
        "pruning has unknown settings": dict(messages=messages(clip), extra_body={"pruning": {"nonsense": 1}}),
    }
    for words, request in bad_request.items():
        for stream in (False, True):
            with pytest.raises(openai.BadRequestError, match=re.escape(words)):
                create(model=NAME, stream=stream, **request)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        create(model="gpt-4o", messages=messages(clip))
    with pytest.raises(openai.APIStatusError, match="limit") as caught:
        create(model=NAME, messages=messages(clip), extra_body={"padding": "x" * (1 << 20)})
    assert caught.value.status_code == 413
    # Triton unreachable: 503
    with serve_app(create_app(f"127.0.0.1:{free_port()}", NAME)) as down:
        offline = openai.OpenAI(base_url=f"{down}/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.InternalServerError, match="cannot reach the Triton server") as caught:
            offline.chat.completions.create(model=NAME, messages=messages(data_url(media_root / "clip.mp4")))
        assert caught.value.status_code == 503
    assert [m.id for m in client.models.list()] == [NAME]


def test_the_documented_example(endpoint, monkeypatch):
    """docs/serving.md's openai example, run as written (port and model name aside)."""
    client, media_root, _, url = endpoint
    section = DOCS.read_text().split("## OpenAI-compatible endpoint", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    code = code.replace("http://localhost:8080", url).replace('"videollama2-tiny-fp32"', f'"{NAME}"')
    monkeypatch.chdir(media_root)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "docs/serving.md", "exec"), {"__name__": "docs"})
    lines = printed.getvalue().splitlines()
    assert lines[0].startswith("answer:") and lines[1].startswith("prompt tokens:") and "FLOPs ratio: 0." in lines[1]

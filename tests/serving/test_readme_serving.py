"""docs/serving.md as written: render, launch, and its client example."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fastav_export.cli import main as cli_main

from .server_required import skip_without_tritonserver

SECTION = (Path(__file__).parent.parent.parent / "docs" / "serving.md").read_text()
assert SECTION.startswith("# Serving with Triton Inference Server\n")

skip_without_tritonserver()

from fastav_export.serving.server_process import free_port  # noqa: E402

pytestmark = pytest.mark.slow  # runs the serving page's commands against a real tritonserver


def test_readme_render_launch_and_client(tiny_engine, tmp_path, monkeypatch):
    render, launch = re.search(r"```bash\n(.*?)```", SECTION, re.S).group(1).strip().splitlines()
    # the first two: the OpenAI endpoint's example runs in test_openai_endpoint.py
    client, media_client = re.findall(r"```python\n(.*?)```", SECTION, re.S)[:2]
    monkeypatch.chdir(tmp_path)
    engine = tiny_engine("videollama2-tiny", media=True).path
    from fastav_export.testing.media_clips import write_test_clip

    write_test_clip(tmp_path / "clip.mp4")
    (tmp_path / "engines").mkdir()
    (tmp_path / "engines" / "videollama2-tiny-fp32").symlink_to(engine)
    assert cli_main(shlex.split(render)[1:]) == 0

    http, grpc = free_port(), free_port()
    argv = shlex.split(launch.replace("8000", str(http)).replace("8001", str(grpc)))
    assert argv[:3] == ["python", "-m", "fastav_export.serving.tritonserver"]
    log = open(tmp_path / "server.log", "wb")
    server = subprocess.Popen([sys.executable, *argv[1:], "--http-address=127.0.0.1", "--grpc-address=127.0.0.1",
                               "--allow-metrics=false", "--exit-timeout-secs=5"],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        import urllib.request

        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "server not ready"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/health/ready", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        printed, media_printed = io.StringIO(), io.StringIO()
        for source, out in ((client, printed), (media_client, media_printed)):
            code = source.replace("localhost:8000", f"127.0.0.1:{http}").replace("localhost:8001",
                                                                                f"127.0.0.1:{grpc}")
            with contextlib.redirect_stdout(out):
                exec(compile(code, "docs/serving.md", "exec"), {"__name__": "readme"})
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    lines = printed.getvalue().splitlines()
    http_tokens = re.search(r"HTTP tokens: \[([^\]]*)\]", lines[0]).group(1).split()
    streamed = [line.split()[1] for line in lines if line.startswith("token:")]
    assert streamed == http_tokens and len(streamed) == 8
    assert lines[-1].startswith("summary:")
    media_lines = media_printed.getvalue().splitlines()
    assert media_lines[0].startswith("answer: ") and media_lines[1].startswith("answer token ids:")

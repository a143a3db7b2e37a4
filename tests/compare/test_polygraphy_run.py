"""Plain `polygraphy run` reproduces the comparisons: docs/compare.md's commands, run exactly as written.

The page's `fastav-export compare` commands write graph-data/ and inputs.json next to
engines/videollama2-tiny-fp32 (a copy of the session's tiny engine); then each of its
`polygraphy run` lines runs in bash, as a user would paste it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from fastav_export.cli import main

pytestmark = pytest.mark.slow  # builds engines and runs polygraphy on every graph

PAGE = (Path(__file__).parents[2] / "docs" / "compare.md").read_text()
assert PAGE.startswith("# Check accuracy with Polygraphy\n")


def section_lines(prefix: str, language: str = "bash") -> list[str]:
    """Lines starting with `prefix` in the page's code blocks (```bash here; the TensorRT block is ```sh)."""
    blocks = re.findall(rf"```{language}\n(.*?)```", PAGE, re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip().startswith(prefix)]


def run_in_bash(line: str, cwd: Path) -> subprocess.CompletedProcess:
    # The polygraphy script of the Python running the tests (a venv's bin/ may not be on PATH).
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def workdir(engine_copy, monkeypatch, capsys):
    """engines/videollama2-tiny-fp32 plus what docs/compare.md's compare commands write beside it."""
    root = engine_copy.parent.parent
    monkeypatch.chdir(root)
    commands = section_lines("fastav-export compare")
    assert any("--save-graph-data graph-data" in c for c in commands)
    for command in commands:
        assert main(shlex.split(command)[1:] + ["-q"]) == 0, command
    capsys.readouterr()
    return root


def test_readme_polygraphy_commands_pass_as_written(workdir):
    lines = section_lines("polygraphy run")
    assert len(lines) >= 4 and any("--fastav --fastav-torch" in line for line in lines)  # the plugin too
    for line in lines:
        done = run_in_bash(line, workdir)
        assert done.returncode == 0, f"{line}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert "PASSED" in done.stdout.strip().splitlines()[-1]


def test_every_saved_graph_passes_polygraphy_onnxrt(workdir):
    index = json.loads((workdir / "graph-data" / "index.json").read_text())
    graphs = {call["graph"] for call in index["calls"]}
    assert graphs == {"embed", "pre", "post_3", "post_4", "post_5"}
    assert len(index["commands"]) == len(graphs)
    for command in index["commands"]:
        done = run_in_bash(command, workdir)
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def test_the_plugin_runner_reports_failures_through_polygraphy(workdir):
    # A logit tolerance below the ORT-vs-torch difference must fail: the runners' outputs
    # really reach Polygraphy's comparison.
    done = run_in_bash("polygraphy run engines/videollama2-tiny-fp32 --fastav --fastav-torch "
                       "--fastav-max-new-tokens 2 --load-inputs inputs.json --atol 1e-12 --rtol 0", workdir)
    assert done.returncode != 0 and "FAILED" in done.stdout.strip().splitlines()[-1]
    assert "'logits'" in done.stdout and "kept.3" in done.stdout


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None,
                    reason="tensorrt is not installed (no TensorRT package can be installed on this CPU machine); "
                           "docs/compare.md's --trt commands run on a GPU machine with "
                           "`pip install fastav-export[trt]`")
def test_readme_tensorrt_commands(workdir):  # pragma: no cover - needs TensorRT and a GPU
    lines = section_lines("", language="sh")
    assert any("--trt" in line for line in lines)
    for line in lines:
        done = run_in_bash(line, workdir)
        assert done.returncode == 0, f"{line}\n{done.stdout[-3000:]}"


def test_fp16_engine_passes_with_its_tolerances(tiny_engine, tmp_path, capsys):
    engine = tiny_engine("videollama2-tiny", "fp16").path
    report = tmp_path / "report.json"
    assert main(["compare", str(engine), "--against", "torch", "-q", "--report", str(report),
                 "--save-graph-data", str(tmp_path / "graph-data")]) == 0
    data = json.loads(report.read_text())
    assert data["tolerances"]["logits"]["atol"] == 1e-2
    assert 0 < data["iterations"][0]["logits"]["max_abs_diff"] < 1e-2
    final = next(c for c in data["graph_data"]["commands"] if "/post_5.onnx" in c)
    done = run_in_bash(final, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]

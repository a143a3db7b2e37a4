"""The README's commands, and those of the docs/ pages it links, work as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from fastav_export.cli import main

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
# README.md first (its quickstart builds the engine the pages' commands use), then docs/ in name order.
PAGES = [README] + [page.read_text() for page in sorted((ROOT / "docs").glob("*.md"))]


def readme_commands(prefix: str) -> list[list[str]]:
    """Commands starting with `prefix` in the ```bash blocks of README.md and every docs/*.md page, in order."""
    blocks = [block for page in PAGES for block in re.findall(r"```bash\n(.*?)```", page, re.S)]
    parts = [part.strip() for block in blocks for line in block.splitlines() for part in line.split(" && ")]
    return [shlex.split(part.split("  #")[0])[1:] for part in parts if part.startswith(prefix)]


def _pip_installs(text: str) -> list[list[str]]:
    """The `pip install` commands of a shell text, as argument lists without pip's output flags."""
    quiet = {"--quiet", "-q", "--disable-pip-version-check"}
    commands = [part.strip().removeprefix("python -m ") for line in text.splitlines()
                for part in line.split(" && ")]
    return [[arg for arg in shlex.split(c) if arg not in quiet] for c in commands if c.startswith("pip install")]


def test_quickstart_is_a_few_short_lines_and_ci_installs_and_tests_as_it_does():
    """Install, build, a clip, an answer, then the tests: each line short enough to read, and `.ci/run`
    installs exactly what the quickstart installs and runs exactly its test command."""
    quickstart = re.search(r"## Quickstart.*?```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert 3 <= len(quickstart) <= 6 and all(len(line) <= 100 for line in quickstart), quickstart
    assert [line.split()[:2] for line in quickstart[1:-1]] == [
        ["fastav-export", "build"], ["fastav-export", "sample-clip"], ["fastav-export", "run"]]
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.strip().splitlines()[-1] == quickstart[-1] == "python -m pytest -q"
    assert _pip_installs(ci) == _pip_installs(quickstart[0]) != []


def test_readme_is_short_and_the_repository_links_nothing_outside_it():
    """The README stays under 8,000 bytes; no file points at the tracker or at files a user never has."""
    import subprocess

    assert len(README.encode()) <= 8000
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if not tracked:  # not a git checkout (an sdist): the packaged sources and docs
        tracked = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.suffix in {".py", ".md"}]
    history = re.compile(r"\b(issue|item)s? #?\d+|\.\./shared", re.I)
    offending = []
    for name in tracked:
        path = ROOT / name
        if path.suffix in {".py", ".md", ".txt", ".toml", ".cfg", ".pbtxt", ""} and path.is_file():
            offending += [f"{name}: {line.strip()}" for line in path.read_text(errors="replace").splitlines()
                          if history.search(line)]
    assert offending == []


@pytest.mark.slow
def test_readme_commands_on_tiny_models_and_flops_run(capsys, tmp_path, monkeypatch):
    """Every `fastav-export` command (but those on a local checkpoint), in order: the quickstart's build
    and `sample-clip` come first, so the later commands find their engine and clip."""
    monkeypatch.chdir(tmp_path)
    # serve-openai is a server that runs until stopped: tests/serving/test_openai_endpoint.py serves it
    commands = [c for c in readme_commands("fastav-export ") if "--checkpoint" not in c and c[0] != "serve-openai"]
    assert len(commands) >= 5
    assert any("--video" in argv for argv in commands)
    for argv in commands:
        assert main(argv) == 0, argv
    capsys.readouterr()

"""The README's commands, and those of the docs/ pages it links, work as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

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


def test_quickstart_has_two_commands_and_ci_runs_the_second():
    quickstart = re.search(r"## Quickstart.*?```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert len(quickstart) == 2
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.strip().splitlines()[-1] == quickstart[1]


CLIP_COMMAND = "python -m fastav_export.testing.media_clips "


def test_readme_commands_on_tiny_models_and_flops_run(capsys, tmp_path, monkeypatch):
    """Every `fastav-export` command (but those on a local checkpoint), in order, with the test clips
    the pages write (`python -m fastav_export.testing.media_clips clip.mp4`) written first."""
    from fastav_export.testing.media_clips import main as write_clip

    monkeypatch.chdir(tmp_path)
    for argv in readme_commands(CLIP_COMMAND):
        assert write_clip(argv[2:]) == 0, argv
    commands = [c for c in readme_commands("fastav-export ") if "--checkpoint" not in c]
    assert len(commands) >= 5
    assert any("--video" in argv for argv in commands)
    for argv in commands:
        assert main(argv) == 0, argv
    capsys.readouterr()

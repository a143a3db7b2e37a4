"""The README's commands work as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from fastav_export.cli import main

README = (Path(__file__).parent.parent / "README.md").read_text()


def readme_commands(prefix: str) -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    parts = [part.strip() for block in blocks for line in block.splitlines() for part in line.split(" && ")]
    return [shlex.split(part.split("  #")[0])[1:] for part in parts if part.startswith(prefix)]


def test_quickstart_has_two_commands_and_ci_runs_the_second():
    quickstart = re.search(r"## Quickstart.*?```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert len(quickstart) == 2
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    assert ci.strip().splitlines()[-1] == quickstart[1]


def test_readme_commands_on_tiny_models_and_flops_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commands = [c for c in readme_commands("fastav-export ") if "--checkpoint" not in c]
    assert len(commands) >= 5
    for argv in commands:
        assert main(argv) == 0, argv
    capsys.readouterr()

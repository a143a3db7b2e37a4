"""Every output path a command writes, checked against everything the command reads, before any work.

Commands name their outputs; their inputs are gathered here from the parsed arguments
(whichever of these flags the command has), so a new input flag is protected by adding
it to INPUT_FLAGS once rather than in every command.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import FastAVError
from ..user_io.output_paths import check_not_an_input, check_output_dir, check_output_file

# argparse dest -> how messages name it: the files and directories commands read.
INPUT_FLAGS = {
    "engine": "ENGINE_DIR",
    "checkpoint": "--checkpoint",
    "vision_tower": "--vision-tower",
    "video": "--video",
    "audio": "--audio",
    "embeds": "--embeds",
    "layout": "--layout",
    "preset": "--preset",
    "load_inputs": "--load-inputs",
}
# argparse dest -> how messages name it: every path a command writes (`out` is OUT, --out or a directory).
OUTPUT_FLAGS = {
    "out": "--out",
    "json": "--json",
    "report": "--report",
    "save_inputs": "--save-inputs",
    "save_graph_data": "--save-graph-data",
    "plots": "--plots",
    "log_file": "--log-file",
}


def command_inputs(args, extra: list[tuple[str, Path]] = ()) -> list[tuple[str, Path]]:
    """(flag, path) of every input path given to this command, plus `extra` (e.g. calibration samples)."""
    given = [(flag, Path(getattr(args, name))) for name, flag in INPUT_FLAGS.items()
             if getattr(args, name, None) is not None]
    return given + list(extra)


def check_output_files(args, outputs: dict[str, Path | None], extra: list[tuple[str, Path]] = ()) -> None:
    """Each given output file (flag -> path) must be writable (`check_output_file`) and none of the inputs."""
    _check_outputs(args, outputs, extra, check_output_file)


def check_output_dirs(args, outputs: dict[str, Path | None], extra: list[tuple[str, Path]] = ()) -> None:
    """Each given output directory that files are written into must be creatable and not inside an input."""
    _check_outputs(args, outputs, extra, check_output_dir)


def check_replaced_dir(args, flag: str, path: Path) -> None:
    """A directory the command replaces whole or entry by entry (`build --out`, `triton --out`) must neither
    be, nor hold, nor lie inside anything the command reads."""
    check_not_an_input(path, f"{flag} {path}", command_inputs(args), replaced=True)


def _check_outputs(args, outputs: dict[str, Path | None], extra, check_writable) -> None:
    inputs = command_inputs(args, extra)
    for flag, path in outputs.items():
        if path is not None:
            check_writable(path, flag)
            check_not_an_input(path, f"{flag} {path}", inputs)
    _check_distinct(args)


def _check_distinct(args) -> None:
    """Two outputs of one command must not be one path: the second write would replace the first."""
    seen: dict[Path, str] = {}
    for name, flag in OUTPUT_FLAGS.items():
        path = getattr(args, name, None)
        if path is None:
            continue
        target = Path(path).resolve()
        if target in seen:
            raise FastAVError(f"{flag} {path} is also {seen[target]}: give each output its own file")
        seen[target] = flag

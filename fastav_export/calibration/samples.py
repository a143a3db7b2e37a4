"""The sample inputs of `calibrate`: embeddings files, or video files with a question.

--samples takes files, directories (every *.npy in them, sorted) and glob patterns. A `.npy`
file is float32 [N, D] or [B, N, D] (each row a sample, named `file[row]`); any other file is
a video, turned into the model's prompt with `--question` (the media path), so all samples of
a run share one layout.
"""

from __future__ import annotations

import glob
from pathlib import Path

from ..errors import FastAVError

GLOB_CHARS = set("*?[")


def sample_paths(patterns: list[str], flag: str = "--samples") -> list[Path]:
    """Every file `patterns` name, in order, without repeats; one line for a pattern that names none."""
    paths: list[Path] = []
    for pattern in patterns:
        if GLOB_CHARS & set(pattern):
            found = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
        elif Path(pattern).is_dir():
            found = sorted(Path(pattern).glob("*.npy"))
        elif Path(pattern).is_file():
            found = [Path(pattern)]
        else:
            raise FastAVError(f"{flag} {pattern} is not a file, a directory or a pattern that matches files")
        if not found:
            raise FastAVError(f"{flag} {pattern} holds no sample files (.npy embeddings, or videos)")
        paths += [path for path in found if path not in paths]
    return paths


def is_embeddings(path: Path) -> bool:
    return path.suffix.lower() == ".npy"

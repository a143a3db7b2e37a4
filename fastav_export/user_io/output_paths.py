"""Where commands write: checked before any work, written whole or not at all.

A command that computes for minutes and then cannot write its result has wasted the
user's time, so every output path (`--json`, `--report`, `--save-graph-data`, `--out`,
`--log-file`) is checked first: a file must not be a directory and its directory must
exist and take new files; a directory must not be a file and the nearest existing
ancestor must take new entries. Writability is probed by creating (and removing) a
hidden entry, because `os.access` says yes to root even on read-only file systems.
Files are written through a temporary file renamed into place, so an interrupted
write never leaves half a report.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import FastAVError


def _probe_writable(directory: Path, what: str) -> None:
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".fastav-probe-", dir=directory))
    except OSError as exc:
        raise FastAVError(f"cannot write {what}: {directory} does not take new files "
                          f"({exc.strerror or exc})") from None


def nearest_existing(path: Path) -> Path:
    """`path` itself or its closest ancestor that exists."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_file(path: str | Path, flag: str) -> None:
    """One-line error unless `path` can be written as a file (its directory must exist)."""
    path = Path(path)
    what = f"{flag} {path}"
    if path.is_dir():
        raise FastAVError(f"{what} is a directory: give a file name, e.g. {Path(path, 'out.json')}")
    parent = Path(os.path.abspath(path)).parent
    if not parent.is_dir():
        raise FastAVError(f"{what}: the directory {parent} does not exist: create it first")
    if path.exists() and not os.access(path, os.W_OK):
        raise FastAVError(f"cannot write {what}: the file is read-only")
    _probe_writable(parent, what)


def check_output_dir(path: str | Path, flag: str) -> None:
    """One-line error unless `path` is or can become a directory (missing parents are created later)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FastAVError(f"{flag} {path} exists and is not a directory: give a directory name")
    check_can_create(path, f"{flag} {path}")


def check_can_create(path: str | Path, what: str) -> None:
    """One-line error unless entries can be created at `path` (its nearest existing ancestor takes them)."""
    existing = nearest_existing(Path(path))
    if not existing.is_dir():
        raise FastAVError(f"cannot write {what}: {existing} is a file, so no directory can be created below it")
    _probe_writable(existing, what)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same directory, renamed over it."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() would not
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def partial_directory(target: Path) -> Path:
    """A fresh hidden `.<name>.partial-<pid>` beside `target` to write a directory into before
    `replace_directory` moves it into place; partials of processes that died are removed first."""
    target = Path(target)
    for stale in target.parent.glob(f".{target.name}.partial-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    partial = target.parent / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    return partial


def replace_directory(target: Path, finished: Path) -> None:
    """Rename the finished directory to `target`; a directory already there is removed only after,
    and is put back if the rename fails, so `target` is always whole: the old or the new one."""
    target = Path(target)
    if not target.exists():
        finished.rename(target)
        return
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    target.rename(old)
    try:
        finished.rename(target)
    except BaseException:
        old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def cache_dir() -> Path:
    """fastav-export's directory in the user's cache (XDG_CACHE_HOME, unset or empty: ~/.cache)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fastav-export"

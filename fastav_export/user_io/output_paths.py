"""Where commands write: checked before any work, written whole or not at all.

A command that computes for minutes and then cannot write its result has wasted the
user's time, so every output path (`--json`, `--report`, `--save-graph-data`, `--out`,
`--log-file`) is checked first: a file must not be a directory and its directory must
exist and take new files; a directory must not be a file and the nearest existing
ancestor must take new entries. Writability is probed by creating (and removing) a
hidden entry, because `os.access` says yes to root even on read-only file systems.
Files are written through a temporary file renamed into place, so an interrupted
write never leaves half a report.

An output file must be missing or a regular file. A symbolic link (even to a regular
file), FIFO, socket or device is refused rather than written through: the rename would
replace the node itself (as root, a `/dev` entry), and writing through it instead would
write wherever the link points, or block on a FIFO. Refusing is simpler and safer, and the
user can always name the real file. An output must not be one of the command's inputs
either (`check_not_an_input`): `run --video clip.mp4 --json clip.mp4` would destroy the video.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
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


# What an existing node that is not a regular file or a directory is called in a message.
_NODE_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _check_not_special(path: Path, what: str) -> None:
    """One line when `path` exists as anything but a regular file or a directory (not following links)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise FastAVError(f"cannot write {what}: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = next((name for test, name in _NODE_KINDS if test(mode)), "not a regular file")
    raise FastAVError(f"{what} is {kind}, which is never written through or replaced: give the path of a "
                      "regular file or a new file name")


def check_output_file(path: str | Path, flag: str) -> None:
    """One-line error unless `path` can be written as a file: missing or a regular file (not a link,
    FIFO, socket or device), in a directory that exists and takes new files."""
    path = Path(path)
    what = f"{flag} {path}"
    _check_not_special(path, what)
    if path.is_dir():
        raise FastAVError(f"{what} is a directory: give a file name, e.g. {Path(path, 'out.json')}")
    parent = Path(os.path.abspath(path)).parent
    if not parent.is_dir():
        raise FastAVError(f"{what}: the directory {parent} does not exist: create it first")
    if path.exists() and not os.access(path, os.W_OK):
        raise FastAVError(f"cannot write {what}: the file is read-only")
    _probe_writable(parent, what)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # either is missing
        return False


def check_not_an_input(output: str | Path, what: str, inputs, replaced: bool = False) -> None:
    """One line when writing `output` would change what the command reads.

    inputs:   (flag, path or None) pairs: the files and directories (an engine, a checkpoint)
              the command reads; missing ones and None are skipped.
    replaced: True when `output` is a directory replaced whole or entry by entry (`build --out`,
              `triton --out`): then it must not hold an input either.
    Paths are compared resolved (through symbolic links, `..`, relative spellings) and by
    inode (hard links)."""
    output = Path(output)
    target = output.resolve()
    for flag, source in inputs:
        if source is None or not os.path.lexists(source):
            continue
        resolved = Path(source).resolve()
        if target == resolved or _same_file(output, Path(source)):
            raise FastAVError(f"{what} is also the input {flag} {source}: writing it would destroy the input: "
                              "choose another output path")
        if resolved in target.parents:
            raise FastAVError(f"{what} lies inside {flag} {source}, which this command reads: write it "
                              "somewhere else")
        if replaced and target in resolved.parents:
            raise FastAVError(f"{what} holds {flag} {source}, which replacing it would delete: choose another "
                              "output directory")


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


@contextlib.contextmanager
def atomic_file(path: str | Path):
    """Yield a temporary path in `path`'s directory to write the file at; renamed over `path` when the
    block ends, removed when it fails, so `path` is always whole: the old file or the new one."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() would not
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same directory, renamed over it."""
    with atomic_file(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


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

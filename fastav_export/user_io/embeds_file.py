"""`--embeds FILE.npy`: decoder input embeddings, checked from the .npy header before reading.

The file is float32 [N, D] or [B, N, D] (the encoders' outputs already spliced into the
prompt). Its header (format version, dtype, shape) is read and checked against the
model and the file's size before any data is: a header can claim petabytes, and
`np.load` would try to allocate them. Values must be finite: a NaN embedding makes
every logit NaN and greedy decoding print token 0 forever, which looks like an answer.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import FastAVError
from .memory import check_fits

SAVE_HINT = "write it with numpy.save(path, array.astype(numpy.float32))"


def require_finite(array: np.ndarray, what: str) -> None:
    """One-line FastAVError when `array` holds NaN or +-inf (`what` names it, e.g. "--embeds x.npy")."""
    finite = np.isfinite(array)
    if not finite.all():
        first = np.unravel_index(int(np.argmin(finite)), array.shape)
        raise FastAVError(f"{what} holds NaN or infinite values (the first at index {list(map(int, first))}): "
                          "check the encoder outputs")


def read_header(path: Path, flag: str = "--embeds") -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, data offset) of the .npy file `path`, without reading its data;
    messages name it by the flag that gave it."""
    try:
        with open(path, "rb") as handle:
            if not handle.read(1):
                raise FastAVError(f"{flag} {path} is empty: {SAVE_HINT}")
            handle.seek(0)
            try:
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
                else:
                    raise ValueError(f"format version {version[0]}.{version[1]} is not read here")
            except (ValueError, SyntaxError, TypeError, OverflowError) as exc:
                raise FastAVError(f"{flag} {path} is not a .npy array file ({str(exc).splitlines()[0]}); "
                                  f".npz archives and pickles are not read: {SAVE_HINT}") from None
            return tuple(shape), bool(fortran), np.dtype(dtype), handle.tell()
    except OSError as exc:
        raise FastAVError(f"cannot read {flag} {path}: {exc.strerror or exc}") from None


def load_embeds(path: str | Path, hidden_size: int, flag: str = "--embeds"):
    """[B, N, D] float32 torch tensor from `path` ([N, D] gets B = 1); every check is one FastAVError line,
    naming the file by the flag the user gave it with (`--embeds`, `--samples`, ...)."""
    import torch

    path = Path(path)
    shape, fortran, dtype, offset = read_header(path, flag)
    if dtype != np.float32:
        raise FastAVError(f"{flag} {path} is {dtype}, expected float32 [N, D] or [B, N, D]")
    if len(shape) not in (2, 3) or 0 in shape:
        raise FastAVError(f"{flag} {path} has shape {list(shape)}, expected [N, D] or [B, N, D] with N > 0")
    if shape[-1] != hidden_size:
        raise FastAVError(f"{flag} {path} has D = {shape[-1]} but the model's hidden size is {hidden_size}")
    nbytes = math.prod(shape) * dtype.itemsize
    size = path.stat().st_size
    if size - offset != nbytes:
        raise FastAVError(f"{flag} {path} has {size - offset} bytes of data but its header's shape "
                          f"{list(shape)} needs {nbytes}: the file is truncated or damaged: {SAVE_HINT}")
    check_fits(nbytes, f"{flag} {path} ({list(shape)} float32)", "split the batch into smaller files")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FastAVError(f"cannot read {flag} {path}: {exc}") from None
    require_finite(array, f"{flag} {path}")
    if array.ndim == 2:
        array = array[None]
    return torch.from_numpy(np.ascontiguousarray(array))

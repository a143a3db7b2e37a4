"""Property: any `--embeds` file gives [B, N, D] finite float32 embeddings or one FastAVError line."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fastav_export.user_io.embeds_file import load_embeds

from .contract import FUZZ, accepts_or_refuses

D = 8
dims = st.integers(0, 4) | st.sampled_from([D, 2**40, 2**62])
shapes = st.lists(dims, max_size=4).map(tuple)
dtypes = st.sampled_from(["<f4", ">f4", "<f2", "<f8", "<i8", "|b1", "|O", "<U3", "V4", "notatype"])


@st.composite
def npy_files(draw) -> bytes:
    """A .npy header (possibly lying about shape or dtype), followed by some amount of data."""
    header = {"descr": draw(dtypes), "fortran_order": draw(st.booleans()), "shape": draw(shapes)}
    buffer = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(buffer, header)
    except (ValueError, TypeError):
        buffer = io.BytesIO(b"\x93NUMPY\x01\x00" + draw(st.binary(max_size=40)))
    data = draw(st.one_of(st.binary(max_size=64),
                          st.lists(st.floats(width=32), max_size=40).map(lambda v: np.float32(v).tobytes())))
    return buffer.getvalue() + data


@FUZZ
@given(st.one_of(st.binary(max_size=100), npy_files()))
def test_any_file(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("embeds") / "embeds.npy"
    path.write_bytes(content)
    embeds = accepts_or_refuses(lambda: load_embeds(path, D))
    if embeds is not None:
        assert embeds.ndim == 3 and embeds.shape[2] == D and embeds.dtype.is_floating_point
        assert bool(embeds.isfinite().all())


@FUZZ
@given(st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=D, max_size=3 * D))
def test_saved_arrays(tmp_path_factory, values):
    array = np.asarray(values[: len(values) // D * D], np.float32).reshape(-1, D)
    path = tmp_path_factory.mktemp("embeds") / "embeds.npy"
    np.save(path, array)
    embeds = accepts_or_refuses(lambda: load_embeds(path, D))
    assert (embeds is not None) == bool(np.isfinite(array).all())

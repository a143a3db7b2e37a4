"""Property: any media request (question and file bytes, as a Triton client may send them) gives an
answerable decoder request or one FastAVError line; so does any file handed to the media decoder."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastav_export.media.decode import read_audio, read_video_frames
from fastav_export.serving.engine import ServedEngine

from .contract import FUZZ, accepts_or_refuses

DTYPES = [np.uint8, np.int64, np.float32]


@pytest.fixture(scope="module")
def served(tiny_engine):
    with ServedEngine(tiny_engine("videollama2-tiny", media=True)) as engine:
        yield engine


@pytest.fixture(scope="module")
def clip_bytes(media_clip):
    return media_clip.read_bytes()


def _bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, np.uint8)


@settings(FUZZ, max_examples=50)  # each accepted request decodes and encodes a clip
@given(data=st.data())
def test_any_media_request(served, clip_bytes, data):
    question = data.draw(st.one_of(st.text(max_size=30).map(lambda text: _bytes(text.encode("utf-8"))),
                                   st.binary(max_size=20).map(_bytes),
                                   hnp.arrays(st.sampled_from(DTYPES), hnp.array_shapes(max_dims=2, max_side=4))))
    media = data.draw(st.one_of(st.just(_bytes(clip_bytes)),
                                st.binary(max_size=64).map(_bytes),
                                # a damaged clip: cut short, or with a stretch overwritten
                                st.integers(1, len(clip_bytes) - 1).map(lambda n: _bytes(clip_bytes[:n]))))
    inputs = {"question": question, "media": media}
    if data.draw(st.booleans()):
        inputs["max_new_tokens"] = np.array([data.draw(st.integers(-2, 40))], np.int32)
    request = accepts_or_refuses(lambda: served.parse(inputs))
    if request is not None:
        assert request.input_ids.shape == (request.layout.n_tokens,) and request.stop_ids
        assert request.mm_embeds.shape == (int(request.multimodal.sum()), served.manifest.dims.hidden_size)


@FUZZ
@given(data=st.binary(max_size=200))
def test_any_bytes_as_a_media_file(data):
    accepts_or_refuses(lambda: read_video_frames(data, 4))
    accepts_or_refuses(lambda: read_audio(data))

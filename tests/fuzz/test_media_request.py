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
@given(silent_audio=hnp.arrays(st.sampled_from([np.bool_, *DTYPES]), hnp.array_shapes(min_dims=0, max_dims=2,
                                                                                     max_side=3)),
       with_audio=st.booleans())
def test_any_silent_audio_field(served, silent_audio, with_audio):
    """Checked before any media is decoded: a bool, or one line naming the field."""
    from fastav_export.serving.request import parse_media_request

    inputs = {"question": _bytes(b"What is happening?"), "media": _bytes(b"not decoded here"),
              "silent_audio": silent_audio}
    if with_audio:
        inputs["audio"] = _bytes(b"not decoded either")
    request = accepts_or_refuses(lambda: parse_media_request(inputs, served.manifest, 4))
    if request is not None:
        assert request.silent_audio is bool(silent_audio.reshape(-1)[0])
        assert silent_audio.dtype == np.bool_ and not (with_audio and request.silent_audio)


@pytest.fixture(scope="module")
def media_files(tmp_path_factory) -> dict[str, bytes]:
    """The bytes of a real small file of each kind a request may send: an MP4 with video and audio
    (1 s, 32 x 24), a WAV tone and a FLAC of silence (0.5 s each)."""
    from fastav_export.testing.media_clips import write_silent_flac, write_test_clip, write_test_wav

    folder = tmp_path_factory.mktemp("fuzz-media")
    files = {"mp4": write_test_clip(folder / "clip.mp4", seconds=1.0, size=(32, 24)),
             "wav": write_test_wav(folder / "tone.wav", seconds=0.5),
             "flac": write_silent_flac(folder / "silence.flac", 0.5)}
    return {kind: path.read_bytes() for kind, path in files.items()}


DAMAGES = ("none", "truncate", "overwrite", "insert")


def _damaged(data, original: bytes, damage: str) -> bytes:
    """`original` with one drawn `damage`: cut at a drawn offset, a drawn stretch overwritten with drawn
    bytes, or drawn bytes inserted; "none" leaves it whole. Near-valid media gets past FFmpeg's probe,
    where random bytes would not."""
    if damage == "none":
        return original
    at = data.draw(st.integers(0, len(original) - 1), label="offset")
    if damage == "truncate":
        return original[:at]
    chunk = data.draw(st.binary(min_size=1, max_size=64), label="bytes")
    if damage == "overwrite":
        return original[:at] + chunk + original[at + len(chunk):]
    return original[:at] + chunk + original[at:]


@FUZZ
@given(data=st.data())
def test_any_bytes_as_a_media_file(media_files, data):
    """A damaged file decodes or is refused in one line, by every reader a request reaches; undamaged, it decodes."""
    from functools import partial

    from fastav_export.media.decode import read_audio_spans
    from fastav_export.media.filterbank import video_audio_spans

    kind = data.draw(st.sampled_from(sorted(media_files)), label="kind")
    damage = data.draw(st.sampled_from(DAMAGES), label="damage")
    payload = _damaged(data, media_files[kind], damage)
    frames = accepts_or_refuses(lambda: read_video_frames(payload, 4))
    audio = accepts_or_refuses(lambda: read_audio(payload))
    clips = accepts_or_refuses(lambda: read_audio_spans(payload, partial(video_audio_spans, sample_rate=16_000)))
    if frames is not None:
        assert frames.dtype == np.uint8 and frames.shape[0] == 4 and frames.shape[-1] == 3
    for waveform in (audio, clips):
        if waveform is not None:
            assert waveform.dtype == np.float32 and waveform.ndim == 1 and np.abs(waveform).max() <= 1.0
    if damage == "none":
        assert audio is not None and clips is not None and (frames is not None) == (kind == "mp4")

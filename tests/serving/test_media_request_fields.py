"""Media requests (question + file bytes) without a server: the optional `silent_audio` field, and
errors that name the request's inputs (`media`, `audio`, `silent_audio`), never a CLI flag."""

from __future__ import annotations

import numpy as np
import pytest

from fastav_export.errors import FastAVError
from fastav_export.serving.engine import ServedEngine
from fastav_export.testing.media_clips import write_test_clip

from .inputs import make_request

QUESTION = "What is happening?"


@pytest.fixture(scope="module")
def served(tiny_engine):
    with ServedEngine(tiny_engine("videollama2-tiny", media=True)) as engine:
        yield engine


@pytest.fixture(scope="module")
def silent_video(tmp_path_factory) -> bytes:
    """A clip with a video stream only."""
    return write_test_clip(tmp_path_factory.mktemp("silent") / "silent.mp4", seconds=2.0, audio=False).read_bytes()


def _bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, np.uint8)


def media_inputs(video: bytes, **extra) -> dict:
    return {"question": _bytes(QUESTION.encode()), "media": _bytes(video), **extra}


def refusal(served, inputs) -> str:
    with pytest.raises(FastAVError) as caught:
        served.parse(inputs)
    message = str(caught.value)
    assert "\n" not in message and "--" not in message, message  # request fields, not CLI flags
    return message


def test_a_silent_video_is_refused_naming_the_request_fields_that_fix_it(served, silent_video):
    message = refusal(served, media_inputs(silent_video))
    assert message.startswith("the `media` input has no audio"), message
    assert "`audio`" in message and "`silent_audio`" in message, message


def test_silent_audio_answers_a_silent_video(served, silent_video):
    request = served.parse(media_inputs(silent_video, silent_audio=np.array([True])))
    assert request.stop_ids and request.mm_embeds.shape[0] == int(request.multimodal.sum())
    assert "`silent_audio`" in refusal(served, media_inputs(silent_video, silent_audio=np.array([False])))


def test_silent_audio_leaves_a_video_with_sound_as_it_is(served, media_clip):
    video = media_clip.read_bytes()
    with_flag = served.parse(media_inputs(video, silent_audio=np.array([True])))
    without = served.parse(media_inputs(video))
    np.testing.assert_array_equal(with_flag.mm_embeds, without.mm_embeds)


def test_a_bad_audio_input_is_named(served, media_clip, silent_video):
    video = media_clip.read_bytes()
    message = refusal(served, media_inputs(video, audio=_bytes(b"this is not audio" * 20)))
    assert message.startswith("the `audio` input is not a"), message
    message = refusal(served, media_inputs(video, audio=_bytes(silent_video)))
    assert message.startswith("the `audio` input has no audio"), message
    assert "`silent_audio`" not in message  # it would contradict the audio input


def test_a_bad_media_input_is_named(served):
    assert refusal(served, media_inputs(b"this is not a video" * 20)).startswith("the `media` input is not a")


@pytest.mark.parametrize("value, words", [
    (np.array([1], np.int32), ["silent_audio", "int32", "BOOL"]),
    (np.array([True, False]), ["silent_audio", "shape [2]", "BOOL [1]"]),
])
def test_a_malformed_silent_audio_is_refused(served, media_clip, value, words):
    message = refusal(served, media_inputs(media_clip.read_bytes(), silent_audio=value))
    assert all(word in message for word in words), message


def test_audio_and_silent_audio_contradict(served, media_clip):
    video = media_clip.read_bytes()
    message = refusal(served, media_inputs(video, audio=_bytes(video), silent_audio=np.array([True])))
    assert "audio" in message and "silent_audio" in message and "drop one" in message, message


def test_media_fields_do_not_belong_to_a_decoder_request(served):
    ids, mm = make_request(served.manifest, served.placeholder_id)
    for name, value in (("silent_audio", np.array([True])), ("audio", np.zeros(8, np.uint8))):
        message = refusal(served, {"input_ids": ids, "mm_embeds": mm, name: value})
        assert name in message and "question" in message and "media" in message, message

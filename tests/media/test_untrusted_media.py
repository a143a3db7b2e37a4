"""Media input is untrusted: FFmpeg may not open anything beyond the bytes it is given, only real
video/audio container formats are read, frames are bounded in size, and audio is decoded only as
far as it is used.

No network: the playlists name 127.0.0.1 on a closed port at most, and the tests assert they are
refused before FFmpeg opens anything.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

from fastav_export.errors import FastAVError
from fastav_export.models import get_model_spec
from fastav_export.media.decode import (
    ALLOWED_FORMATS,
    MAX_FRAME_PIXELS,
    MAX_FRAME_SIZE,
    media_duration_seconds,
    read_audio,
    read_frames_at_fps,
    read_video_frames,
)
from fastav_export.testing.media_clips import write_flat_clip, write_silent_flac, write_test_clip

from .child_process import measure_in_child

DOCS = Path(__file__).resolve().parents[2] / "docs"
CLOSED_PORT_URL = "http://127.0.0.1:9/clip.mp4"  # port 9 (discard) on loopback: nothing listens

SDP = (b"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=clip\nc=IN IP4 127.0.0.1\nt=0 0\n"
       b"m=video 5004 RTP/AVP 96\na=rtpmap:96 H264/90000\n")


def hostile_payloads(clip_name: str) -> dict[str, bytes]:
    """Descriptor and playlist files that would make FFmpeg read other files or the network."""
    return {
        "ffconcat of a clip beside it": f"ffconcat version 1.0\nfile {clip_name}\n".encode(),
        "ffconcat of a missing file": b"ffconcat version 1.0\nfile no-such-clip.mp4\n",
        "ffconcat of a url": f"ffconcat version 1.0\nfile {CLOSED_PORT_URL}\n".encode(),
        "ffconcat repeating a clip": b"ffconcat version 1.0\n" + f"file {clip_name}\n".encode() * 500,
        "sdp": SDP,
        "hls of a file url": f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:{clip_name}\n"
                             "#EXT-X-ENDLIST\n".encode(),
        "hls of an http url": f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{CLOSED_PORT_URL}\n"
                              "#EXT-X-ENDLIST\n".encode(),
        "not media": b"just some text\n" * 20,
    }


@pytest.fixture
def beside_a_clip(tmp_path, monkeypatch):
    """The working directory holds a real clip, so a relative playlist entry would find it."""
    write_test_clip(tmp_path / "clip.mp4", seconds=1.0)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_playlists_and_descriptors_as_bytes_get_one_identical_error_quickly(beside_a_clip):
    messages = set()
    for kind, payload in hostile_payloads("clip.mp4").items():
        started = time.perf_counter()
        with pytest.raises(FastAVError) as caught:
            read_video_frames(payload, 4)
        assert time.perf_counter() - started < 5, kind  # an SDP would wait 10 s for RTP packets
        messages.add(str(caught.value))
    assert len(messages) == 1, messages  # a client cannot tell which files the server has
    (message,) = messages
    assert "not a media file" in message and "\n" not in message


def test_playlists_and_descriptors_as_files_are_refused(beside_a_clip):
    for index, payload in enumerate(hostile_payloads("clip.mp4").values()):
        path = beside_a_clip / f"list-{index}.ffconcat"
        path.write_bytes(payload)
        with pytest.raises(FastAVError, match="not a media file"):
            read_audio(path)


def test_absolute_paths_in_a_playlist_are_not_opened(beside_a_clip):
    payload = f"ffconcat version 1.0\nfile {beside_a_clip / 'clip.mp4'}\n".encode()
    with pytest.raises(FastAVError, match="not a media file"):
        media_duration_seconds(payload)


def test_real_containers_still_open(tmp_path):
    clip = write_test_clip(tmp_path / "clip.mp4", seconds=1.0)
    assert read_video_frames(clip.read_bytes(), 2).shape == (2, 48, 64, 3)
    assert {"mov", "matroska", "wav", "flac", "mp3"} <= set(ALLOWED_FORMATS)
    assert not {"concat", "hls", "sdp", "rtp", "rtsp", "image2", "tee", "lavfi"} & set(ALLOWED_FORMATS)


def test_tags_that_are_not_utf8_do_not_stop_decoding(tmp_path):
    """Tags are the file's bytes, in any encoding: here the encoder tag ("Lavf...") starts with 0xff."""
    clip = write_test_clip(tmp_path / "clip.mp4", seconds=1.0)
    flac = write_silent_flac(tmp_path / "silence.flac", 0.5)
    for original in (clip.read_bytes(), flac.read_bytes()):
        assert b"Lavf" in original
        tagged = original.replace(b"Lavf", b"\xffavf")
        np.testing.assert_array_equal(read_audio(tagged), read_audio(original))
    tagged = clip.read_bytes().replace(b"Lavf", b"\xffavf")
    np.testing.assert_array_equal(read_video_frames(tagged, 2), read_video_frames(clip, 2))


def test_a_video_stream_of_a_codec_ffmpeg_does_not_know_is_one_error(tmp_path):
    original = write_test_clip(tmp_path / "clip.mp4", seconds=1.0).read_bytes()
    fourcc = b"avc1" if b"avc1" in original else b"mp4v"  # the sample entry naming the codec (H.264 or MPEG-4)
    unknown = original.replace(fourcc, b"zzzz")
    with pytest.raises(FastAVError, match="cannot be decoded") as caught:
        read_video_frames(unknown, 2)
    assert "\n" not in str(caught.value)
    assert len(read_audio(unknown)) == len(read_audio(original))  # the audio track is still readable


def test_large_frames_are_scaled_while_decoding_keeping_their_aspect(tmp_path):
    clip = write_test_clip(tmp_path / "clip.mp4", seconds=1.0, size=(640, 480))
    frames = read_video_frames(clip, 2, frame_pixels=160 * 120)
    assert frames.shape == (2, 120, 160, 3)
    sampled, _ = read_frames_at_fps(clip, 1.0, 4, frame_pixels=160 * 120)
    assert sampled.shape[1:] == (120, 160, 3)
    # frames within the bound come back as decoded
    assert read_video_frames(clip, 2, frame_pixels=640 * 480).shape == (2, 480, 640, 3)


def test_the_pixel_limit_message_states_the_limit_it_checks(tmp_path, monkeypatch):
    import fastav_export.media.decode as decode

    monkeypatch.setattr(decode, "MAX_FRAME_SIZE", (40, 30))
    monkeypatch.setattr(decode, "MAX_FRAME_PIXELS", 40 * 30)
    clip = write_test_clip(tmp_path / "clip.mp4", seconds=0.5)  # 64x48
    with pytest.raises(FastAVError) as caught:
        read_video_frames(clip, 2)
    message = str(caught.value)
    assert "64x48 frames" in message and "1,200 pixels (40x30)" in message and "8192" not in message


def test_the_documented_pixel_limit_is_the_one_checked():
    width, height = MAX_FRAME_SIZE
    assert width * height == MAX_FRAME_PIXELS
    for doc in ("usage.md", "serving.md"):
        stated = re.findall(r"[Ff]rames (?:larger than|above) (\d+) x (\d+)", (DOCS / doc).read_text())
        assert stated and set(stated) == {(str(width), str(height))}, doc


DECODE_FRAMES = """
import sys
from fastav_export.errors import FastAVError
from fastav_export.models import get_model_spec
from fastav_export.media.decode import read_video_frames
try:
    result = {"shape": list(read_video_frames(sys.argv[1], 2, frame_pixels=(4 * 384) ** 2).shape), "error": None}
except FastAVError as exc:
    result = {"shape": None, "error": str(exc)}
"""


@pytest.mark.slow
def test_frames_above_the_pixel_budget_are_refused_and_large_ones_stay_bounded(tmp_path):
    huge = measure_in_child(DECODE_FRAMES, write_flat_clip(tmp_path / "huge.mp4", (8000, 8000), frames=2))
    assert huge["shape"] is None and "8000x8000" in huge["error"] and "\n" not in huge["error"]
    assert huge["peak_mb"] < 1200
    width, height = 7680, 4320  # 8K UHD: within the budget
    assert width * height <= MAX_FRAME_PIXELS
    large = measure_in_child(DECODE_FRAMES, write_flat_clip(tmp_path / "8k.mp4", (width, height), frames=2))
    assert large["error"] is None and large["peak_mb"] < 1200
    frames, kept_height, kept_width, _ = large["shape"]
    assert frames == 2 and kept_width * kept_height <= (4 * 384) ** 2
    assert abs(kept_width / kept_height - width / height) < 0.01


def test_audio_decoding_stops_at_the_seconds_used(tmp_path):
    clip = write_test_clip(tmp_path / "clip.mp4", seconds=3.0)
    whole = read_audio(clip)
    first = read_audio(clip, max_seconds=1.0)
    assert len(first) == 16_000
    np.testing.assert_array_equal(first, whole[:16_000])
    assert len(read_audio(clip, max_seconds=60.0)) == len(whole)


MEDIA_TENSORS = """
import sys
from fastav_export.media import decode
from fastav_export.models import get_model_spec
from fastav_export.runtime.media_inputs import media_tensors

# Count what FFmpeg decodes rather than time it: a count does not depend on how busy the CPUs are.
decoded = 0
whole_track = decode._resampled_track
def counted_track(*args):
    global decoded
    for chunk in whole_track(*args):
        decoded += len(chunk)
        yield chunk
decode._resampled_track = counted_track

spec = get_model_spec(sys.argv[1])
tensors = media_tensors(sys.argv[2], spec.video, spec.audio, audio=sys.argv[3])
result = {"fbank": list(tensors.fbank.shape), "decoded_seconds": decoded / 16_000}
"""


@pytest.mark.slow
def test_a_long_audio_file_is_decoded_only_as_far_as_it_is_used(tmp_path):
    flac = write_silent_flac(tmp_path / "hour.flac", 3600)
    clip = write_test_clip(tmp_path / "clip.mp4", seconds=1.0)
    short, long = (measure_in_child(MEDIA_TENSORS, "videollama2-tiny", clip, audio) for audio in (clip, flac))
    assert long["fbank"] == short["fbank"]
    # a whole hour is 115 MB as int16 and 230 MB as float32, and takes seconds to decode
    assert long["peak_mb"] < short["peak_mb"] + 50, (short, long)
    # what the model uses is the first audio window, plus at most one decoded packet past it
    assert 0 < long["decoded_seconds"] <= get_model_spec("videollama2-tiny").audio.seconds + 1.0, (short, long)

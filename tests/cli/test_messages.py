"""One-line errors say what the user did: the flag they passed, the right number, the real cause."""

from __future__ import annotations

import numpy as np
import pytest

from fastav_export.cli import main
from fastav_export.contract.interleave import FrameInterleave
from fastav_export.contract.layout import Segment, TokenLayout
from fastav_export.errors import FastAVError


def _error(capsys, *argv) -> str:
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1 and out == "", err
    return err


@pytest.mark.parametrize("argv, words", [
    (["--question", "hi?"], "--question needs --video FILE"),
    (["--question", "hi?", "--silent-audio"], "--question, --silent-audio need --video FILE"),
])
def test_media_flags_without_a_video_agree_in_number(capsys, argv, words):
    assert words in _error(capsys, "run", *argv)


def test_calibrate_names_the_samples_flag_for_a_bad_sample(capsys, tmp_path):
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"\x93NUMPY garbage")
    err = _error(capsys, "calibrate", "--model", "videollama2-tiny", "--samples", garbage, "--out", tmp_path / "p.json")
    assert f"--samples {garbage}" in err and "--embeds" not in err, err
    np.save(tmp_path / "wide.npy", np.zeros((72, 32), np.float32))  # D = 32, the model's is 64
    np.save(tmp_path / "ok.npy", np.zeros((72, 64), np.float32))
    err = _error(capsys, "calibrate", "--model", "videollama2-tiny", "--samples", tmp_path / "ok.npy",
                 "--held-out", tmp_path / "wide.npy", "--out", tmp_path / "p.json")
    assert f"--held-out {tmp_path / 'wide.npy'}" in err and "--embeds" not in err, err


def test_one_sample_that_does_not_match_the_layout_has_tokens():
    layout = TokenLayout((Segment("text", 3),))
    with pytest.raises(FastAVError, match="but sample a.npy has 4"):
        layout.check_matches(4, "sample a.npy", plural=False)
    with pytest.raises(FastAVError, match="but the input embeddings have 4"):
        layout.check_matches(4)


def test_a_clip_that_gives_too_few_frames_for_its_length_is_called_truncated():
    rule = FrameInterleave(video_per_frame=4)
    with pytest.raises(FastAVError) as caught:
        rule.media_layout(frames=1, chunks=1, seconds=3.0, prefix_tokens=2, suffix_tokens=2)
    message = str(caught.value)
    assert "longer than one second" not in message and "3 s" in message and "truncated" in message, message
    with pytest.raises(FastAVError, match="pass a clip longer than 1 s"):  # a clip that really is short
        rule.media_layout(frames=1, chunks=1, seconds=0.8, prefix_tokens=2, suffix_tokens=2)

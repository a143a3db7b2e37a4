"""video-SALMONN 2's own media facts: the layout follows the clip.

A 3 s test clip gives 3 frames at 1 fps and one 30 s audio chunk (60 Q-Former tokens), so 20 audio
rows per frame, each frame [12 video][20 audio] at the tiny sizes. The engine directory and the
PyTorch reference agree on all of it (tests/runtime/test_media_path.py checks what every family shares).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastav_export.cli import main
from fastav_export.contract.layout import AUDIO, VIDEO
from fastav_export.runtime.front_end import FrontEnd

from ....runtime.media_runs import torch_front_end

MODEL = "video-salmonn2-tiny"
QUESTION = "What happens in the video?"


@pytest.fixture(scope="module")
def engine(tiny_engine):
    return tiny_engine(MODEL, media=True)


@pytest.fixture(scope="module")
def torch_front():
    return torch_front_end(MODEL)


def test_the_prompt_layout_follows_the_clip(engine, torch_front, media_clip):
    with FrontEnd.from_engine(engine) as front:
        prompt, _ = front.prompt(QUESTION, media_clip)
        expected, _ = torch_front.prompt(QUESTION, media_clip)
    assert prompt.layout == expected.layout
    media = prompt.layout.segments[1:-1]
    assert [(s.kind, s.length, s.frame) for s in media] == [
        (kind, length, f) for f in range(3) for kind, length in ((VIDEO, 12), (AUDIO, 20))]
    np.testing.assert_array_equal(prompt.input_ids, expected.input_ids)
    np.testing.assert_allclose(prompt.mm_embeds, expected.mm_embeds, rtol=0, atol=1e-4)
    assert engine.media.interleave == torch_front.interleave
    assert engine.media.options["window_seconds"] == 0.5 and engine.media.options["use_final_linear"] is True


def test_the_audio_token_count_is_the_q_formers_output(torch_front):
    from fastav_export.media.whisper_features import whisper_chunks

    for seconds, chunks in ((30.0, 1), (10.0, 1), (45.0, 2)):
        features = whisper_chunks(np.zeros(round(16_000 * seconds), np.float32))
        rows = torch_front.encoders.audio(features)
        rule = torch_front.interleave
        assert features.shape[0] == chunks and rows.shape[0] == rule.audio_tokens(chunks) == 60 * chunks
        frames = rule.frames(seconds)
        layout = rule.media_layout(frames, chunks, seconds, 6, 6)
        assert rule.arrange_audio(rows, frames, seconds).shape[0] == layout.count(AUDIO)


def test_a_separate_audio_file_and_silence_answer(engine, tmp_path, capsys):
    from fastav_export.testing.media_clips import write_test_clip, write_test_wav

    silent = write_test_clip(tmp_path / "silent.mp4", seconds=2.0, audio=False)
    base = ["run", str(engine.path), "--video", str(silent), "--question", QUESTION, "--max-new-tokens", "2"]
    assert main([*base, "--silent-audio"]) == 0
    wav = write_test_wav(tmp_path / "tone.wav", seconds=40.0)  # cut to the clip's 2 s, as upstream does
    assert main([*base, "--audio", str(wav), "--json", str(tmp_path / "a.json")]) == 0
    layout = json.loads((tmp_path / "a.json").read_text())["layout"]
    assert sum(s["length"] for s in layout if s["kind"] == AUDIO) == 60  # one chunk: 2 frames x 30


def test_a_wider_window_gives_fewer_audio_rows(media_clip, capsys, tmp_path):
    out = tmp_path / "w.json"
    assert main(["run", "--model", MODEL, "--video", str(media_clip), "--question", QUESTION, "--audio-window",
                 "1.0", "--pool", "average", "--max-new-tokens", "2", "--json", str(out)]) == 0
    layout = json.loads(out.read_text())["layout"]
    assert sum(s["length"] for s in layout if s["kind"] == AUDIO) == 30  # 30 windows of 1 s over 3 frames


def test_a_clip_too_long_for_the_engine_is_refused_before_decoding_or_encoding(engine, tmp_path, monkeypatch):
    """A 91 s clip gives 8 frames and 4 Whisper chunks: 8 x 12 video + 240 audio rows, beyond the 256 tokens
    the tiny engine was built for. Its length is known from the container, so nothing is decoded."""
    import fastav_export.media.decode as decode
    import fastav_export.media.whisper_features as whisper
    from fastav_export.errors import FastAVError
    from fastav_export.testing.media_clips import write_test_clip

    clip = write_test_clip(tmp_path / "long.mp4", seconds=91.0, fps=1, size=(32, 24), sample_rate=8_000)

    def must_not_run(*args, **kwargs):
        raise AssertionError("decoded or encoded a clip that cannot fit")

    for module, name in ((decode, "read_frames_at_fps"), (decode, "read_audio"), (whisper, "whisper_chunks")):
        monkeypatch.setattr(module, name, must_not_run)
    with FrontEnd.from_engine(engine) as front:
        monkeypatch.setattr(front.encoders, "audio", must_not_run)
        monkeypatch.setattr(front.encoders, "video", must_not_run)
        with pytest.raises(FastAVError, match=r"91(\.0)? s .* at most 256") as caught:
            front.prompt(QUESTION, clip)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("positions, new_tokens, advice", [(300, 8, "pass a shorter clip"),
                                                           (400, 100, "--max-new-tokens")])
def test_a_clip_too_long_for_the_model_is_refused_by_the_torch_reference_before_decoding(
        tmp_path, monkeypatch, capsys, positions, new_tokens, advice):
    """The reference runs up to the decoder's positions, less the tokens to generate: a 91 s clip's layout
    (8 x 12 video + 240 audio rows and the question, about 360 tokens) fits neither checkpoint here, and
    is refused from the clip's length before anything is decoded or encoded."""
    import fastav_export.media.decode as decode
    import fastav_export.media.whisper_features as whisper
    from fastav_export.runtime.encoders import TorchEncoders
    from fastav_export.testing.media_clips import write_test_clip
    from fastav_export.testing.snapshots import write_tiny_video_salmonn2_snapshot

    snapshot = write_tiny_video_salmonn2_snapshot(tmp_path / "snapshot")
    config = json.loads((snapshot / "config.json").read_text())
    (snapshot / "config.json").write_text(json.dumps({**config, "max_position_embeddings": positions}))
    clip = write_test_clip(tmp_path / "long.mp4", seconds=91.0, fps=1, size=(32, 24), sample_rate=8_000)

    def must_not_run(*args, **kwargs):
        raise AssertionError("decoded or encoded a clip that cannot fit")

    for owner, name in ((decode, "read_frames_at_fps"), (decode, "read_audio"), (whisper, "whisper_chunks"),
                        (TorchEncoders, "video"), (TorchEncoders, "audio")):
        monkeypatch.setattr(owner, name, must_not_run)
    code = main(["run", "--checkpoint", str(snapshot), "--model", MODEL, "--backend", "torch", "--video", str(clip),
                 "--question", QUESTION, "--max-new-tokens", str(new_tokens)])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1, errors
    (error,) = errors
    assert f"the model's {positions} positions" in error and advice in error, error

"""The whole VideoLLaMA2-AV path: a video file and a question in, an answer out.

The PyTorch reference (the model's own modules) and an engine directory (encoder graphs and
decoder graphs on ONNX Runtime, the stored tokenizer) must agree: the same prompt layout, the
same spliced embeddings row for row, the same kept sets, tokens and text.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastav_export.cli import main
from fastav_export.contract.layout import KIND_CODES
from fastav_export.engine.manifest import AUDIO_ENCODER, VISION
from fastav_export.models import get_model_spec
from fastav_export.runtime.encoders import OrtEncoders
from fastav_export.runtime.front_end import FrontEnd
from fastav_export.testing.models import tiny_model

from ..conftest import requires_tensorrt
from .media_runs import run_json, torch_front_end

MODEL = "videollama2-tiny"
QUESTION = "What happens in the video?"


@pytest.fixture(scope="module")
def engine(tiny_engine):
    return tiny_engine(MODEL, media=True)


@pytest.fixture(scope="module")
def torch_front():
    return torch_front_end(MODEL)


def _run(capsys, tmp_path, clip, name, *argv):
    return run_json(capsys, tmp_path, clip, QUESTION, name, *argv)


def test_engine_directory_answers_as_the_torch_reference(engine, media_clip, capsys, tmp_path):
    reference, printed = _run(capsys, tmp_path, media_clip, "torch", "--model", MODEL, "--backend", "torch")
    served, _ = _run(capsys, tmp_path, media_clip, "engine", str(engine.path))
    assert "answer: " in printed and "loaded:" in printed
    for key in ("kept", "token_ids", "text", "layout", "n_tokens"):
        assert served[key] == reference[key], key
    # rollout picks a data-dependent kept set: the check covers the media rows' values
    assert reference["kept"]["3"][0] != list(range(len(reference["kept"]["3"][0])))
    assert set(reference["seconds"]) == {"media_decode", "vision_encoder", "audio_encoder", "prefill", "decode"}


def test_spliced_embeddings_equal_the_reference_row_for_row(engine, torch_front, media_clip):
    with FrontEnd.from_engine(engine) as front:
        prompt, _ = front.prompt(QUESTION, media_clip)
        expected, _ = torch_front.prompt(QUESTION, media_clip)
    # the layout the builder computed, with this prompt's text ends
    prefix = int(np.argmax(prompt.input_ids == engine.media.placeholder_id))
    suffix = prompt.layout.segments[-1].length
    assert prompt.layout == engine.layout.with_prompt_text(prefix, suffix) == expected.layout
    np.testing.assert_array_equal(prompt.input_ids, expected.input_ids)
    np.testing.assert_allclose(prompt.mm_embeds, expected.mm_embeds, rtol=0, atol=1e-4)

    table = tiny_model(MODEL).model.embed_tokens.weight.detach()
    embeds = expected.splice(table[torch.from_numpy(expected.text_ids())])[0]
    kinds = expected.layout.kind_codes()
    text = kinds == KIND_CODES["text"]
    torch.testing.assert_close(embeds[torch.from_numpy(text)], table[torch.from_numpy(expected.input_ids[text])])
    video_rows = torch_front.encoders.video(_pixels(media_clip))
    torch.testing.assert_close(embeds[torch.from_numpy(kinds == KIND_CODES["video"])], torch.from_numpy(video_rows))
    assert int((kinds == KIND_CODES["audio"]).sum()) == get_model_spec(MODEL).default_layout().count("audio")


def _pixels(clip):
    from fastav_export.media.decode import read_video_frames
    from fastav_export.media.frames import preprocess_frames

    video = get_model_spec(MODEL).video
    return preprocess_frames(read_video_frames(clip, video.num_frames), video)


@pytest.mark.parametrize("name", [VISION, AUDIO_ENCODER])
def test_each_encoder_graph_equals_its_torch_module(engine, torch_front, name):
    spec = get_model_spec(MODEL)
    generator = torch.Generator().manual_seed(5)
    if name == VISION:
        sample = torch.randn(spec.video.num_frames, 3, spec.video.image_size, spec.video.image_size,
                             generator=generator)
    else:
        sample = 10 * torch.randn(1, spec.audio.fbank_frames, spec.audio.mel_bins, generator=generator)
    with OrtEncoders(engine) as graphs:
        run = graphs.video if name == VISION else graphs.audio
        expected = (torch_front.encoders.video if name == VISION else torch_front.encoders.audio)(sample)
        np.testing.assert_allclose(run(sample), expected, rtol=0, atol=1e-4)


def test_a_video_without_audio_needs_audio_or_silence(engine, tmp_path, capsys):
    from fastav_export.testing.media_clips import write_test_clip, write_test_wav

    silent = write_test_clip(tmp_path / "silent.mp4", seconds=2.0, audio=False)
    base = ["run", str(engine.path), "--video", str(silent), "--question", QUESTION, "--max-new-tokens", "2"]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--audio" in err and "--silent-audio" in err
    assert main([*base, "--silent-audio"]) == 0
    wav = write_test_wav(tmp_path / "tone.wav", seconds=1.0)
    assert main([*base, "--audio", str(wav)]) == 0
    assert "answer:" in capsys.readouterr().out


def test_an_audio_file_without_sound_asks_for_another_audio_file(engine, media_clip, tmp_path, capsys):
    """--silent-audio contradicts --audio, so it is not the advice when the --audio file is silent."""
    from fastav_export.testing.media_clips import write_test_clip

    silent = write_test_clip(tmp_path / "silent.mp4", seconds=1.0, audio=False)
    argv = ["run", str(engine.path), "--video", str(media_clip), "--audio", str(silent), "--question", QUESTION,
            "--max-new-tokens", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{silent} has no audio" in err and "--audio" in err, err
    assert "--silent-audio" not in err, err


@pytest.mark.parametrize("argv, words", [
    (["--question", "hi?"], ["--question", "needs --video"]),
    (["--video", "missing.mp4", "--question", "hi?"], ["--video", "is not a file"]),
    (["--video", "{clip}"], ["--question"]),
    (["--video", "{clip}", "--question", "hi?", "--batch", "2"], ["--batch"]),
    (["--video", "{clip}", "--question", "   "], ["question is empty"]),
    (["--video", "{clip}", "--question", "<video> again"], ["<video>"]),
])
def test_bad_media_flags_are_one_line_errors(argv, words, media_clip, capsys):
    argv = [arg.replace("{clip}", str(media_clip)) for arg in argv]
    assert main(["run", "--model", MODEL, "--backend", "torch", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert all(word in err for word in words), err


def test_a_decoder_only_engine_refuses_a_video_in_one_line(tiny_engine, media_clip, capsys):
    engine = tiny_engine(MODEL)
    assert main(["run", str(engine.path), "--video", str(media_clip), "--question", QUESTION]) == 2
    assert "decoder only" in capsys.readouterr().err


@requires_tensorrt
def test_tensorrt_encoder_engines_equal_the_torch_modules_and_answer_alike(tiny_engine, torch_front, media_clip,
                                                                           capsys, tmp_path):
    """`build --backend trt` builds the encoder graphs into engines too; `run` uses them on the GPU."""
    from fastav_export.runtime.encoders import TrtEncoders

    engine = tiny_engine(MODEL, backend="trt", media=True)
    assert set(engine.media.engines) == {VISION, AUDIO_ENCODER}
    pixels = _pixels(media_clip)
    with TrtEncoders(engine) as graphs:
        # TensorRT may use TF32 for fp32 matmuls: a looser bound than ONNX Runtime's
        np.testing.assert_allclose(graphs.video(pixels), torch_front.encoders.video(pixels), rtol=0, atol=1e-2)
    reference, _ = _run(capsys, tmp_path, media_clip, "torch", "--model", MODEL, "--backend", "torch")
    served, printed = _run(capsys, tmp_path, media_clip, "trt", str(engine.path), "--backend", "trt")
    assert "encoders on TensorRT" in printed
    assert served["kept"] == reference["kept"] and served["token_ids"] == reference["token_ids"]

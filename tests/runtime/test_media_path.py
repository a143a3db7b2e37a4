"""The whole media path of every family: a video file and a question in, an answer out.

The PyTorch reference (the model's own modules) and an engine directory (encoder graphs and
decoder graphs on ONNX Runtime, the stored tokenizer) must agree: the same prompt layout, the
same spliced embeddings row for row, the same kept sets, tokens and text. Each family's own facts
(its layout rule, its options) are tested in tests/models/families/<name>/test_media_path.py.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from fastav_export.cli import main
from fastav_export.engine.manifest import AUDIO_ENCODER, VISION
from fastav_export.runtime.encoders import OrtEncoders
from fastav_export.runtime.front_end import FrontEnd

from ..conftest import requires_tensorrt
from ..families import TINY_FAMILIES, family_cases, other_family
from .media_runs import run_json, torch_front_end

QUESTION = "What happens in the video?"
DEFAULT = TINY_FAMILIES[0]


@functools.cache
def _torch_front(model: str) -> FrontEnd:
    return torch_front_end(model)


def _run(capsys, tmp_path, clip, name, *argv):
    return run_json(capsys, tmp_path, clip, QUESTION, name, *argv)


@pytest.mark.parametrize("case", family_cases(slow=lambda case: case.slow_answer))
def test_engine_directory_answers_as_the_torch_reference(case, tiny_engine, media_clip, capsys, tmp_path):
    engine = tiny_engine(case.model, media=True)
    reference, printed = _run(capsys, tmp_path, media_clip, "torch", "--model", case.model, "--backend", "torch")
    served, _ = _run(capsys, tmp_path, media_clip, "engine", str(engine.path))
    assert "answer: " in printed and "loaded:" in printed
    for key in ("kept", "token_ids", "text", "layout", "n_tokens"):
        assert served[key] == reference[key], key
    # rollout picks a data-dependent kept set: the check covers the media rows' values
    assert reference["kept"]["3"][0] != list(range(len(reference["kept"]["3"][0])))
    assert set(reference["seconds"]) == {"media_decode", "vision_encoder", "audio_encoder", "prefill", "decode"}


@pytest.mark.parametrize("case", family_cases())
def test_the_engine_prompt_equals_the_reference_prompt(case, tiny_engine, media_clip):
    engine = tiny_engine(case.model, media=True)
    with FrontEnd.from_engine(engine) as front:
        prompt, _ = front.prompt(QUESTION, media_clip)
        expected, _ = _torch_front(case.model).prompt(QUESTION, media_clip)
    assert prompt.layout == expected.layout
    np.testing.assert_array_equal(prompt.input_ids, expected.input_ids)
    np.testing.assert_allclose(prompt.mm_embeds, expected.mm_embeds, rtol=0, atol=1e-4)
    assert engine.media.family == case.family


def _encoder_cases():
    return [pytest.param(case, name, count, id=f"{case.family}-{name}-{count or 'clip'}")
            for case in TINY_FAMILIES
            for name, counts in ((VISION, case.vision_counts), (AUDIO_ENCODER, case.audio_counts))
            for count in counts]


@pytest.mark.parametrize("case, name, count", _encoder_cases())
def test_each_encoder_graph_equals_its_torch_module(case, name, count, tiny_engine):
    """Graphs with a dynamic first axis were traced on 2 frames / chunks: other counts must run and agree."""
    engine, torch_front = tiny_engine(case.model, media=True), _torch_front(case.model)
    generator = torch.Generator().manual_seed(5)
    sample = (case.vision_sample(count, generator) if name == VISION
              else case.audio_sample(case.spec, count, generator))
    with OrtEncoders(engine) as graphs:
        run = graphs.video if name == VISION else graphs.audio
        expected = (torch_front.encoders.video if name == VISION else torch_front.encoders.audio)(sample)
        np.testing.assert_allclose(run(sample), expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("case", family_cases(where=lambda case: case.needs_sound))
def test_a_video_without_audio_needs_audio_or_silence(case, tiny_engine, tmp_path, capsys):
    from fastav_export.testing.media_clips import write_test_clip, write_test_wav

    engine = tiny_engine(case.model, media=True)
    silent = write_test_clip(tmp_path / "silent.mp4", seconds=2.0, audio=False)
    base = ["run", str(engine.path), "--video", str(silent), "--question", QUESTION, "--max-new-tokens", "2"]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--audio" in err and "--silent-audio" in err
    assert main([*base, "--silent-audio"]) == 0
    wav = write_test_wav(tmp_path / "tone.wav", seconds=1.0)
    assert main([*base, "--audio", str(wav)]) == 0
    assert "answer:" in capsys.readouterr().out


@pytest.mark.parametrize("case", family_cases(where=lambda case: not case.needs_sound))
def test_a_video_without_audio_runs_on_its_video_rows(case, tiny_engine, tmp_path, capsys):
    from fastav_export.testing.media_clips import write_test_clip

    engine = tiny_engine(case.model, media=True)
    silent = write_test_clip(tmp_path / "silent.mp4", seconds=2.0, audio=False)
    served, _ = _run(capsys, tmp_path, silent, "engine", str(engine.path))
    reference, _ = _run(capsys, tmp_path, silent, "torch", "--model", case.model, "--backend", "torch")
    assert all(segment["kind"] != "audio" for segment in served["layout"])
    assert served["kept"] == reference["kept"] and served["token_ids"] == reference["token_ids"]


@pytest.mark.parametrize("case", family_cases())
def test_an_audio_file_without_sound_asks_for_another_audio_file(case, tiny_engine, media_clip, tmp_path, capsys):
    """--silent-audio contradicts --audio, so it is not the advice when the --audio file is silent."""
    from fastav_export.testing.media_clips import write_test_clip

    engine = tiny_engine(case.model, media=True)
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
    assert main(["run", "--model", DEFAULT.model, "--backend", "torch", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert all(word in err for word in words), err


def test_a_decoder_only_engine_refuses_a_video_in_one_line(tiny_engine, media_clip, capsys):
    engine = tiny_engine(DEFAULT.model)
    assert main(["run", str(engine.path), "--video", str(media_clip), "--question", QUESTION]) == 2
    assert "decoder only" in capsys.readouterr().err


@pytest.mark.parametrize("case", family_cases(where=lambda case: bool(case.family_flags)))
def test_family_options_are_refused_for_an_engine_and_another_family(case, tiny_engine, media_clip, capsys):
    engine = tiny_engine(case.model, media=True)
    argv = ["--video", str(media_clip), "--question", QUESTION, *case.family_flags]
    assert main(["run", str(engine.path), *argv]) == 2
    assert "build time" in capsys.readouterr().err
    assert main(["run", "--model", other_family(case).model, *argv]) == 2
    err = capsys.readouterr().err
    assert case.family in err and err.count("\n") == 1, err


@requires_tensorrt
@pytest.mark.parametrize("case", family_cases(where=lambda case: case.static_encoders))
def test_tensorrt_encoder_engines_equal_the_torch_modules_and_answer_alike(case, tiny_engine, media_clip,
                                                                           capsys, tmp_path):
    """`build --backend trt` builds static encoder graphs into engines too; `run` uses them on the GPU."""
    from fastav_export.runtime.encoders import TrtEncoders

    engine, torch_front = tiny_engine(case.model, backend="trt", media=True), _torch_front(case.model)
    assert set(engine.media.engines) == {VISION, AUDIO_ENCODER}
    pixels = torch_front.rules.encoder_inputs(media_clip).pixel_values
    with TrtEncoders(engine) as graphs:
        # TensorRT may use TF32 for fp32 matmuls: a looser bound than ONNX Runtime's
        np.testing.assert_allclose(graphs.video(pixels), torch_front.encoders.video(pixels), rtol=0, atol=1e-2)
    reference, _ = _run(capsys, tmp_path, media_clip, "torch", "--model", case.model, "--backend", "torch")
    served, printed = _run(capsys, tmp_path, media_clip, "trt", str(engine.path), "--backend", "trt")
    assert "encoders on TensorRT" in printed
    assert served["kept"] == reference["kept"] and served["token_ids"] == reference["token_ids"]

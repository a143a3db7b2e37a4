"""The Python API's Engine: the record `run --json` writes, streamed text, pruning by name, one-line errors."""

from __future__ import annotations

import json

import pytest

import fastav_export
from fastav_export.cli import main
from fastav_export.contract.pruning_config import PruningConfig
from fastav_export.errors import FastAVError
from fastav_export.media.sample_clip import write_sample_clip

from ..families import family_cases

QUESTION = "What is happening?"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_sample_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=2.0)


def _without_seconds(record: dict) -> dict:
    return {key: value for key, value in record.items() if key != "seconds"}


def _run_json(tmp_path, capsys, *argv) -> dict:
    out = tmp_path / "run.json"
    assert main(["run", *argv, "--json", str(out)]) == 0
    capsys.readouterr()
    return json.loads(out.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("case", family_cases())
def test_the_reference_answers_as_run_does(case, clip, tmp_path, capsys):
    """Engine.open(model name) is the torch reference `run --model --backend torch` runs (the family's
    default options): the same record."""
    with fastav_export.Engine.open(case.model) as engine:
        assert engine.backend == "torch" and engine.model == case.model
        record = engine.answer(video=clip, question=QUESTION, max_new_tokens=6)
    expected = _run_json(tmp_path, capsys, "--model", case.model, "--backend", "torch", "--video", str(clip),
                         "--question", QUESTION, "--max-new-tokens", "6")
    assert _without_seconds(record.to_json()) == _without_seconds(expected)
    assert record.prompt_tokens == expected["n_tokens"] and record.text == expected["text"]


def test_an_engine_answers_as_run_does_and_streams_the_same_text(tiny_engine, clip, tmp_path, capsys):
    manifest = tiny_engine("videollama2-tiny", media=True)
    with fastav_export.Engine.open(manifest.path) as engine:
        assert engine.backend == "ort" and "fp32" in engine.description
        record = engine.answer(video=clip, question=QUESTION, max_new_tokens=8)
        pieces = list(engine.stream(clip, QUESTION, max_new_tokens=8))
        from_bytes = engine.answer(video=clip.read_bytes(), question=QUESTION, max_new_tokens=8)
    expected = _run_json(tmp_path, capsys, str(manifest.path), "--video", str(clip), "--question", QUESTION,
                         "--max-new-tokens", "8")
    assert _without_seconds(record.to_json()) == _without_seconds(expected)
    assert "".join(pieces) == record.text and all(pieces)
    assert from_bytes.token_ids == record.token_ids
    assert record.kept_tokens[0] == record.prompt_tokens > record.kept_tokens[-1]
    assert record.flops_ratio == expected["flops_ratio"]


def test_pruning_by_name_config_or_preset(tiny_engine, clip):
    manifest = tiny_engine("videollama2-tiny", media=True)
    with fastav_export.Engine.open(manifest.path) as engine:
        dense = engine.answer(video=clip, question=QUESTION, pruning="dense", max_new_tokens=2)
        rollout = engine.answer(video=clip, question=QUESTION, pruning="rollout:0.5", max_new_tokens=2)
        same = engine.answer(video=clip, question=QUESTION, pruning=PruningConfig(
            global_policy="rollout", global_budget=0.5, global_layer=manifest.global_layer), max_new_tokens=2)
        preset = engine.answer(video=clip, question=QUESTION, pruning="preset", max_new_tokens=2)
        assert preset.pruning == engine.default_pruning
    n = dense.prompt_tokens
    assert dense.kept_tokens == [n] * len(dense.kept_tokens) and dense.flops_ratio["paper"] == 1.0
    assert rollout.pruning.global_budget == 0.5 and rollout.to_json()["kept"] == same.to_json()["kept"]
    assert rollout.kept_tokens[-1] < n


@pytest.mark.parametrize("source, kwargs, message", [
    ("no-such-model", {}, "neither an engine directory, a checkpoint directory nor a registered model"),
    ("videollama2", {}, "has no built-in weights"),
    ("videollama2-tiny", {"backend": "ort"}, "runs on the torch backend"),
    ("videollama2-tiny", {"threads": 2}, "threads sets ONNX Runtime's threads"),
    ("videollama2-tiny", {"dtype": "float8"}, "dtype 'float8' is not one of"),
    ("videollama2-tiny", {"device": "gpu:x"}, "is not a torch device"),
])
def test_open_refuses_in_one_line(source, kwargs, message):
    with pytest.raises(FastAVError, match=message) as caught:
        fastav_export.Engine.open(source, **kwargs)
    assert "\n" not in str(caught.value)


@pytest.fixture(scope="module")
def reference():
    with fastav_export.Engine.open("videollama2-tiny") as engine:
        yield engine


@pytest.mark.parametrize("kwargs, message", [
    ({"question": " "}, "the question is empty"),
    ({"max_new_tokens": 0}, "max_new_tokens 0 must be a whole number >= 1"),
    ({"pruning": "fastest"}, "unknown pruning policy 'fastest'"),
    ({"pruning": "rollout:2.0"}, "could mean 2 candidates"),
    ({"video": "missing.mp4"}, "video missing.mp4 is not a file"),
])
def test_answer_refuses_in_one_line_before_decoding(reference, clip, kwargs, message):
    with pytest.raises(FastAVError, match=message):
        reference.answer(**{"video": clip, "question": QUESTION, **kwargs})


def test_an_engine_without_rollout_names_the_setting_for_python_callers(tiny_engine, clip):
    manifest = tiny_engine("videollama2-tiny", media=True)
    with fastav_export.Engine.open(manifest.path) as engine:
        with pytest.raises(FastAVError, match="runs on ort or trt"):
            fastav_export.Engine.open(manifest.path, backend="torch")
        with pytest.raises(FastAVError, match="device, dtype and model apply to the torch backend"):
            fastav_export.Engine.open(manifest.path, device="cuda")
        with pytest.raises(FastAVError, match="the engine's graphs split the decoder at layer"):
            engine.answer(video=clip, question=QUESTION, pruning=PruningConfig(global_layer=1))


def test_prompt_inputs_are_the_decoders_input(reference, clip):
    prompt, embeds, seconds = reference.prompt_inputs(clip, QUESTION)
    assert embeds.shape == (1, prompt.layout.n_tokens, 64) and "media_decode" in seconds


def test_a_local_snapshot_answers_as_run_with_checkpoint_does(tmp_path, clip, capsys):
    """A tiny snapshot with the real key names and file kinds, read as the registered model it is."""
    from fastav_export.testing.snapshots import write_tiny_videollama2_av_snapshot

    snapshot = tmp_path / "snapshot"
    write_tiny_videollama2_av_snapshot(snapshot)
    with fastav_export.Engine.open(snapshot, model="videollama2-tiny") as engine:
        assert engine.model == "snapshot" and engine.sources
        record = engine.answer(video=clip, question=QUESTION, max_new_tokens=4)
    expected = _run_json(tmp_path, capsys, "--checkpoint", str(snapshot), "--model", "videollama2-tiny", "--video",
                         str(clip), "--question", QUESTION, "--max-new-tokens", "4")
    assert _without_seconds(record.to_json()) == _without_seconds(expected)
    with pytest.raises(FastAVError, match="model 'videollama3' is not registered"):
        fastav_export.Engine.open(snapshot, model="videollama3")

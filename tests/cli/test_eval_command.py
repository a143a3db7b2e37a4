"""`fastav-export eval`: predictions equal to `run`'s, summaries, --resume, media errors, one-line errors."""

from __future__ import annotations

import json

import pytest

from fastav_export.cli import main
from fastav_export.evaluation.sample_dataset import write_sample_dataset

POLICIES = "dense,preset,rollout:0.5"
# The tests of one engine share a worker: the engine is built once for them.
pytestmark = pytest.mark.xdist_group("eval-engine")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Two generated clips (six questions), a multiple-choice question whose answer is a letter, and a
    sample whose media is not a video."""
    root = tmp_path_factory.mktemp("dataset")
    questions = write_sample_dataset(root, clips=2)
    (root / "broken.mp4").write_bytes(b"not a video at all")
    with open(questions, "a") as handle:
        handle.write(json.dumps({"id": "letter", "video": "clip001.mp4", "question": "Which instrument plays?",
                                 "options": ["guitar", "a sine tone", "drums"], "answer": "B",
                                 "type": "length"}) + "\n")
        handle.write(json.dumps({"id": "broken", "video": "broken.mp4", "question": "What is shown?",
                                 "answer": "nothing"}) + "\n")
    return questions


def _eval(capsys, *argv) -> tuple[int, str]:
    code = main(["eval", *argv])
    return code, capsys.readouterr().out


def _records(out) -> list[dict]:
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def _stable(records: list[dict]) -> list[dict]:
    """The records without their wall times (everything else is deterministic)."""
    return [{key: value for key, value in record.items() if key != "seconds"} for record in records]


@pytest.fixture(scope="module")
def engine_dir(tmp_path_factory):
    """videollama2-tiny with encoders, rollout and `build`'s room for questions (multiple-choice prompts
    with their options are longer than the shared tiny engines take)."""
    from fastav_export.testing.models import build_tiny_engine

    return build_tiny_engine(tmp_path_factory.mktemp("engine") / "videollama2-tiny-fp32", "videollama2-tiny",
                             media=True, max_tokens=512).path


@pytest.fixture(scope="module")
def full_run(engine_dir, dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "run"
    assert main(["eval", str(engine_dir), "--data", str(dataset), "--policies", POLICIES, "--out", str(out),
                 "--max-new-tokens", "6", "-q"]) == 0
    return out


@pytest.mark.slow
def test_every_sample_runs_under_every_policy_and_the_summaries_agree(full_run):
    records = _records(full_run)
    assert [(r["id"], r["policy"]) for r in records[:3]] == [("000-length", p) for p in POLICIES.split(",")]
    assert len(records) == 8 * 3
    for record in records:
        assert {"id", "policy", "prediction", "choice", "correct", "error", "prompt_tokens", "kept_tokens",
                "flops_ratio", "seconds", "question", "answer", "type"} <= set(record)
    broken = [r for r in records if r["id"] == "broken"]
    assert all(r["correct"] is None and r["prediction"] is None and "broken.mp4" in r["error"] for r in broken)
    assert all(r["error"] is None and isinstance(r["correct"], bool) for r in records if r["id"] != "broken")
    assert {r["answer"] for r in records if r["id"] == "letter"} == {"a sine tone"}
    summary = json.loads((full_run / "summary.json").read_text())
    assert list(summary["policies"]) == POLICIES.split(",")
    dense = summary["policies"]["dense"]
    assert (dense["n"], dense["errors"], dense["flops_ratio"], dense["agreement_with_dense"]) == (7, 1, 1.0, 1.0)
    assert summary["policies"]["rollout:0.5"]["flops_ratio"] < 1.0
    assert set(dense["by_type"]) == {"length", "sound", "pitch"}
    assert "| dense |" in (full_run / "summary.md").read_text()
    pytest.importorskip("matplotlib")
    assert (full_run / "accuracy_vs_flops.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_each_prediction_is_what_run_answers(full_run, engine_dir, dataset, tmp_path, capsys):
    """The question as recorded, asked with `run` under the same pruning, gives the same text."""
    flags = {"dense": ["--no-prune"], "preset": [], "rollout:0.5": ["--global-policy", "rollout",
                                                                     "--global-budget", "0.5"]}
    for record in _records(full_run):
        if record["error"] is not None:
            continue
        video = dataset.parent / json.loads(next(
            line for line in dataset.read_text().splitlines() if json.loads(line)["id"] == record["id"]))["video"]
        out = tmp_path / "answer.json"
        assert main(["run", str(engine_dir), "--video", str(video), "--question", record["question"],
                     "--max-new-tokens", "6", "--json", str(out), "-q", *flags[record["policy"]]]) == 0
        answer = json.loads(out.read_text())
        assert (answer["text"], answer["n_tokens"]) == (record["prediction"], record["prompt_tokens"]), record
    capsys.readouterr()


@pytest.mark.slow
def test_a_second_run_gives_the_same_predictions(full_run, engine_dir, dataset, tmp_path, capsys):
    out = tmp_path / "again"
    code, _ = _eval(capsys, str(engine_dir), "--data", str(dataset), "--policies", POLICIES, "--out", str(out),
                    "--max-new-tokens", "6", "-q")
    assert code == 0 and _stable(_records(out)) == _stable(_records(full_run))


@pytest.mark.slow
def test_an_interrupted_run_resumes_where_it_stopped(full_run, engine_dir, dataset, tmp_path, capsys, monkeypatch):
    from fastav_export.api.engine import Engine

    answer, calls = Engine.answer, []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return answer(self, *args, **kwargs)

    out = tmp_path / "resumed"
    argv = [str(engine_dir), "--data", str(dataset), "--policies", POLICIES, "--out", str(out), "--max-new-tokens", "6",
            "-q"]
    monkeypatch.setattr(Engine, "answer", interrupted)
    code, _ = _eval(capsys, *argv)
    assert code == 130 and len(_records(out)) == 4  # Ctrl-C: every line written is whole
    assert not (out / "summary.json").exists()
    monkeypatch.setattr(Engine, "answer", answer)
    with open(out / "predictions.jsonl", "a") as handle:  # a line cut short by a kill
        handle.write('{"id": "001-sou')
    code, _ = _eval(capsys, *argv)
    assert code == 2  # without --resume the file is not touched
    code, printed = _eval(capsys, *argv, "--resume")
    assert code == 0 and "| rollout:0.5 |" in printed
    assert _stable(_records(out)) == _stable(_records(full_run))


@pytest.mark.slow
def test_the_reference_evaluates_too(dataset, tmp_path, capsys):
    out = tmp_path / "torch"
    code, _ = _eval(capsys, "--model", "videollama2-tiny", "--data", str(dataset), "--limit", "2", "--policies",
                    "dense,keep_chunks:0", "--out", str(out), "-q", "--max-new-tokens", "4")
    assert code == 0
    records = _records(out)
    assert [r["policy"] for r in records] == ["dense", "keep_chunks:0"] * 2
    assert all(r["error"] is None for r in records)


@pytest.mark.parametrize("argv, message", [
    (["--data", "{tmp}/none.jsonl"], "--data .*none.jsonl is not a file"),
    (["--data", "{data}", "--format", "csv"], "invalid choice: 'csv'"),
    (["--data", "{empty}"], "no samples"),
    (["--data", "{data}", "--policies", "dense,fastest"], "unknown pruning policy 'fastest'"),
    (["--data", "{data}", "--policies", ""], "no pruning policies given"),
    (["--data", "{data}", "--media-root", "{tmp}/none"], "--media-root .* is not a directory"),
    (["--data", "{data}", "--layout", "{data}"], "--layout does not apply to eval"),
    (["--data", "{data}", "--backend", "ort"], "--backend ort runs an engine directory"),
    (["--data", "{data}", "--out", "{taken}"], "already holds predictions: pass --resume"),
    (["--data", "{data}", "--out", "{data}"], "--out"),
    (["--data", "{plain}"], "--format"),
])
def test_bad_input_is_one_line_before_any_model_loads(argv, message, dataset, tmp_path, capsys):
    (tmp_path / "empty.jsonl").write_text("\n")
    (tmp_path / "plain.json").write_text("[]")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "predictions.jsonl").write_text('{"id": "1", "policy": "dense"}\n')
    names = {"tmp": tmp_path, "data": dataset, "empty": tmp_path / "empty.jsonl", "taken": tmp_path / "taken",
             "plain": tmp_path / "plain.json"}
    try:
        code = main(["eval", "--model", "videollama2", *[arg.format(**names) for arg in argv]])
    except SystemExit as exit:  # argparse's own refusals
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ")
    import re

    assert re.search(message, err), err


@pytest.mark.slow
@pytest.mark.parametrize("format", ["music-avqa", "avqa", "avhbench"])
def test_each_public_format_runs_end_to_end(format, engine_dir, tmp_path, capsys):
    """A small file in the dataset's own format, with clips named as its videos are, evaluates in full."""
    from fastav_export.media.sample_clip import write_sample_clip

    from ..evaluation.test_datasets import AVHBENCH, AVQA, MUSIC_AVQA

    entries, video_key = {"music-avqa": (MUSIC_AVQA, "video_id"), "avqa": (AVQA, "video_name"),
                          "avhbench": (AVHBENCH, "video_id")}[format]
    media = tmp_path / "media"
    media.mkdir()
    for video in {entry[video_key] for entry in entries}:
        write_sample_clip(media / f"{video}.mp4", seconds=2.0)
    data = tmp_path / f"{format}.json"
    data.write_text(json.dumps(entries))
    out = tmp_path / "out"
    code, printed = _eval(capsys, str(engine_dir), "--data", str(data), "--format", format, "--media-root",
                          str(media), "--out", str(out), "--max-new-tokens", "4", "-q")
    assert code == 0, printed
    records = _records(out)
    assert records and all(r["error"] is None and isinstance(r["correct"], bool) for r in records)
    assert all(r["type"] for r in records) or format == "avqa"  # AVQA's second entry has no type
    assert "Accuracy by question type" in printed


def test_an_engine_without_encoders_is_refused_before_any_sample(tiny_engine, dataset, tmp_path, capsys):
    decoder_only = tiny_engine("videollama2-tiny").path
    code = main(["eval", str(decoder_only), "--data", str(dataset), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "holds the decoder only" in err, err
    assert not (tmp_path / "out" / "predictions.jsonl").exists()

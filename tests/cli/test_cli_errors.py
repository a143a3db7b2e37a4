"""Every subcommand, given each class of malformed argument, prints one `error:` line and exits 2.

The classes are the ones a hostile new-user sweep found tracebacks, silent defaults or
wrong answers for: numbers that are not numbers, zero, negative, astronomically
large, NaN or infinite; paths that are missing, a directory where a file belongs (or the
reverse), empty, not UTF-8, nested beyond the parser, JSON of the wrong shape, or an
output below a directory that does not exist. Each case must fail before any work: nothing
on stdout.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastav_export.cli import main

# class -> how to make the argument inside a scratch directory `tmp`
VALUES = {
    "not a number": lambda tmp: "abc",
    "zero": lambda tmp: "0",
    "negative": lambda tmp: "-3",
    "huge": lambda tmp: str(10**30),
    "nan": lambda tmp: "nan",
    "inf": lambda tmp: "inf",
    "missing path": lambda tmp: str(tmp / "nowhere" / "x.json"),
    "a directory": lambda tmp: str(tmp),
    "a file": lambda tmp: str(_write(tmp / "plain.txt", b"just text")),
    "empty file": lambda tmp: str(_write(tmp / "empty.json", b"")),
    "not UTF-8": lambda tmp: str(_write(tmp / "latin.json", b"\xff\xfe\x00[")),
    "nested JSON": lambda tmp: str(_write(tmp / "deep.json", b"[" * 100_000 + b"]" * 100_000)),
    "JSON of the wrong shape": lambda tmp: str(_write(tmp / "object.json", b'{"kind": "text"}')),
    "a JSON list config": lambda tmp: str(_checkpoint(tmp, b"[1, 2]")),
    "a dims-less config": lambda tmp: str(_checkpoint(tmp, b'{"model_type": "qwen2"}')),
    "not an .npy": lambda tmp: str(_write(tmp / "e.npy", b"\x93NUMPY garbage")),
    "an .npz": lambda tmp: str(_npz(tmp)),
    "under a missing directory": lambda tmp: str(tmp / "missing" / "out.json"),
    "non-ASCII repository": lambda tmp: str(tmp / "repü"),
    "spaced repository": lambda tmp: str(tmp / "my repo"),
}

NUMBERS = ["not a number", "zero", "negative", "huge", "nan", "inf"]
COUNTS = ["not a number", "zero", "negative", "nan"]
JSON_FILES = ["missing path", "a directory", "empty file", "not UTF-8", "nested JSON", "JSON of the wrong shape"]
ENGINES = ["missing path", "a file", "a directory", "a JSON list config"]
OUTPUT_FILES = ["a directory", "under a missing directory"]
PRUNING = {"--fine-ratio": ["not a number", "negative", "nan", "inf", "huge"],
           "--alpha": ["not a number", "negative", "nan", "inf"],
           "--global-budget": ["not a number", "negative", "nan", "inf"],
           "--cutoff": ["not a number", "negative", "nan"],
           "--global-layer": ["not a number", "zero", "negative", "huge"]}
COMMON = {"--log-file": OUTPUT_FILES}

# command -> (arguments that make it otherwise valid, {flag: classes}); "ENGINE" is the tiny engine.
COMMANDS = {
    "build": ([], {"--max-batch": COUNTS, "--max-tokens": COUNTS, "--max-new-tokens": COUNTS,
                   "--seed": ["not a number", "negative", "huge"], "--layout": JSON_FILES,
                   "--checkpoint": ["missing path", "a file", "a JSON list config", "a dims-less config"],
                   "--out": ["a file"], **PRUNING, **COMMON}),
    "run": ([], {"--batch": COUNTS + ["huge"], "--max-new-tokens": COUNTS + ["huge"],
                 "--seed": ["not a number", "negative", "huge"], "--threads": ["negative", "huge"],
                 "--layout": JSON_FILES, "--embeds": ["missing path", "a directory", "empty file", "not an .npy",
                                                      "an .npz"],
                 "--checkpoint": ["missing path", "a file", "a JSON list config", "a dims-less config"],
                 "--json": OUTPUT_FILES, **PRUNING, **COMMON}),
    "run ENGINE": (["ENGINE"], {"--batch": ["zero", "huge"], "--threads": ["negative", "huge"],
                                "--layout": JSON_FILES, "--embeds": ["empty file", "an .npz"],
                                "--json": OUTPUT_FILES, "--fine-ratio": ["nan"]}),
    "run ENGINE_DIR": ([], {"": ENGINES}),
    "flops": ([], {"--layout": JSON_FILES, "--json": OUTPUT_FILES, **PRUNING, **COMMON}),
    "compare": (["ENGINE"], {"--inputs": COUNTS + ["huge"], "--batch": COUNTS, "--max-new-tokens": COUNTS,
                             "--seed": ["not a number", "negative", "huge"], "--threads": ["negative", "huge"],
                             "--atol": ["not a number", "negative", "nan", "inf"],
                             "--rtol": ["not a number", "negative", "nan", "inf"],
                             "--load-inputs": ["missing path", "a directory", "empty file", "not UTF-8",
                                               "nested JSON", "JSON of the wrong shape"],
                             "--report": OUTPUT_FILES, "--save-inputs": OUTPUT_FILES,
                             "--save-graph-data": ["a file"], **COMMON}),
    "compare ENGINE_DIR": ([], {"": ENGINES}),
    "triton": (["ENGINE", "--out", "REPO"], {"--instances": COUNTS, "--max-new-tokens": COUNTS + ["huge"],
                                            "--threads": ["not a number", "negative"],
                                            "--placeholder-id": ["not a number", "nan"],
                                            "--name": ["a directory"],
                                            "--kv-budget-mib": ["not a number", "zero", "negative", "nan", "inf"],
                                            "--max-queue": ["not a number", "negative"],
                                            "--media-workers": COUNTS, **COMMON}),
    "triton --out": (["ENGINE"], {"--out": ["a file", "non-ASCII repository", "spaced repository"]}),
    "triton ENGINE_DIR": (["--out", "REPO"], {"": ENGINES}),
    "bench": (["ENGINE"], {"--rounds": COUNTS, "--warmup": ["not a number", "negative", "nan"],
                           "--decode-steps": COUNTS + ["huge"], "--batch": COUNTS + ["huge"],
                           "--seed": ["not a number", "negative", "huge"], "--threads": ["negative", "huge"],
                           "--layout": JSON_FILES, "--embeds": ["missing path", "empty file", "an .npz"],
                           "--json": OUTPUT_FILES, "--fine-ratio": ["nan"], **COMMON}),
    "bench ENGINE_DIR": ([], {"": ENGINES}),
    "calibrate": (["--samples", "SAMPLES", "--out", "OUT"], {
        "--samples": ["missing path", "a directory", "empty file", "not an .npy", "an .npz"],
        "--keep-mass": NUMBERS, "--alpha": ["not a number", "negative", "nan", "inf", "huge"],
        "--global-layer": ["not a number", "zero", "negative", "huge"], "--layout": JSON_FILES,
        "--checkpoint": ["missing path", "a file", "a JSON list config", "a dims-less config"],
        "--seed": ["not a number", "negative", "huge"], "--out": OUTPUT_FILES, "--json": OUTPUT_FILES,
        "--plots": ["a file"], "--held-out": ["missing path", "not an .npy"], **COMMON}),
    "serve-openai": (["--triton", "127.0.0.1:1", "--model", "m"], {
        "--triton": ["not a number", "zero", "negative", "huge", "a directory"],
        "--port": ["not a number", "negative", "huge", "nan"], "--max-body-mb": COUNTS + ["huge"],
        "--media-root": ["missing path", "a file"], **COMMON}),
    "eval": (["--data", "DATA", "--model", "videollama2-tiny", "--out", "OUT"], {
        "--data": JSON_FILES, "--limit": COUNTS, "--max-new-tokens": COUNTS, "--media-root": ["missing path", "a file"],
        "--out": ["a file"], "--preset": ["missing path", "a directory"], "--seed": ["not a number", "negative", "huge"],
        "--checkpoint": ["missing path", "a file", "a JSON list config", "a dims-less config"], **COMMON}),
    "eval ENGINE_DIR": (["--data", "DATA"], {"": ENGINES}),
    "sample-dataset": (["OUT"], {"--clips": COUNTS + ["huge"], **COMMON}),
    "sample-dataset OUT": ([], {"": ["a file"]}),
    "sample-clip": (["OUT"], {"": NUMBERS, **COMMON}),
    "sample-clip OUT": ([], {"": OUTPUT_FILES}),
}
CASES = [(command, flag, kind) for command, (_, flags) in COMMANDS.items()
         for flag, kinds in flags.items() for kind in kinds]


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _checkpoint(tmp, config: bytes):
    directory = tmp / "checkpoint"
    directory.mkdir(exist_ok=True)
    _write(directory / "config.json", config)
    return directory


def _sample(tmp):
    """A valid calibration sample: the tiny VideoLLaMA2 layout's 72 x 64 embeddings."""
    np.save(tmp / "sample.npy", np.zeros((72, 64), np.float32))
    return tmp / "sample.npy"


def _dataset(tmp):
    """A valid one-question eval dataset (its clip need not exist: errors come before any sample runs)."""
    return _write(tmp / "questions.jsonl", b'{"id": "1", "video": "clip.mp4", "question": "What?", "answer": "yes"}\n')


def _npz(tmp):
    np.savez(tmp / "e.npz", embeds=np.zeros((72, 64), np.float32))
    return tmp / "e.npz"


@pytest.mark.parametrize("command,flag,kind", CASES, ids=[f"{c}-{f or 'positional'}-{k}" for c, f, k in CASES])
def test_malformed_argument_is_one_error_line(command, flag, kind, tmp_path, tiny_engine, capsys):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    base, _ = COMMANDS[command]
    engine = str(tiny_engine("videollama2-tiny").path)
    argv = [command.split()[0]]
    placeholders = {"ENGINE": engine, "REPO": str(tmp_path / "repo"), "SAMPLES": str(_sample(tmp_path)),
                    "OUT": str(tmp_path / "preset.json"), "DATA": str(_dataset(tmp_path))}
    argv += [placeholders.get(arg, arg) for arg in base]
    value = VALUES[kind](scratch)
    argv += [value] if flag == "" else [flag, value]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, (argv, err)
    assert out == "", (argv, out)
    assert not (tmp_path / "repo").exists() and not (tmp_path / "preset.json").exists()


def test_every_command_is_covered():
    from fastav_export.cli import COMMANDS as CLI_COMMANDS

    assert {command.split()[0] for command in COMMANDS} == set(CLI_COMMANDS)


def test_valid_json_of_the_wrong_shape_is_refused_for_load_inputs(tmp_path, tiny_engine, capsys):
    path = tmp_path / "inputs.json"
    path.write_text(json.dumps({"inputs_embeds": [1, 2]}))
    assert main(["compare", str(tiny_engine("videollama2-tiny").path), "--load-inputs", str(path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1

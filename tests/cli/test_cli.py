"""The command line: outputs, the --json schema, one-line errors with exit code 2."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import numpy as np
import pytest

from fastav_export.cli import COMMANDS, main


def run_cli(capsys, *argv):
    """(exit code, stdout, stderr) of `fastav-export *argv` (paths may be Path objects); argparse's own
    errors exit through SystemExit."""
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_flops_prints_the_paper_ratio(capsys):
    code, out, _ = run_cli(capsys, "flops", "--model", "videollama2")
    assert code == 0
    line = out.strip().splitlines()[-1]
    paper = float(line.split("paper formula ")[1].split(",")[0])
    assert 0.53 <= paper <= 0.57
    early_drop = float(line.split("exact MACs ")[1].split(" with early drop")[0])
    without = float(line.split("with early drop (")[1].split(" without")[0])
    assert early_drop <= 0.53 < without  # the target for the 7B schedule
    assert "   14     790" in out  # layer 14 processes the 790 tokens that survive the global cut


def test_run_writes_the_json_schema(capsys, tmp_path):
    path = tmp_path / "out.json"
    code, out, _ = run_cli(capsys, "run", "--model", "videollama2-tiny", "--backend", "torch", "--batch", "2",
                           "--max-new-tokens", "5", "--json", str(path))
    assert code == 0 and "tokens[1]:" in out and "FLOPs ratio" in out
    data = json.loads(path.read_text())
    assert set(data) == {"n_tokens", "layout", "kept", "tokens", "logits", "seconds", "flops_ratio"}
    assert data["n_tokens"] == 72 and sorted(data["kept"]) == ["3", "4", "5"]
    assert all(len(rows) == 2 and rows[0] == sorted(rows[0]) for rows in data["kept"].values())
    assert [len(t) for t in data["tokens"]] == [5, 5] and len(data["logits"][0]) == 256
    assert set(data["flops_ratio"]) == {"paper", "exact_macs", "exact_macs_without_early_drop"}


def test_run_with_embeds_and_layout_files(capsys, tmp_path):
    layout = [{"kind": "text", "length": 3}, {"kind": "video", "length": 10, "frame": 0}, {"kind": "text", "length": 2}]
    (tmp_path / "layout.json").write_text(json.dumps(layout))
    np.save(tmp_path / "embeds.npy", np.random.default_rng(0).standard_normal((15, 64)).astype(np.float32))
    code, out, err = run_cli(capsys, "run", "--layout", str(tmp_path / "layout.json"), "--embeds",
                             str(tmp_path / "embeds.npy"), "--global-policy", "rollout", "--global-budget", "4")
    assert code == 0, err
    assert "15 tokens (5 text, 10 video)" in out and "layers     3-5:      9 tokens" in out  # floor(0.2 * 4) = 0 fine drops


def test_no_prune_keeps_everything(capsys, tmp_path):
    path = tmp_path / "out.json"
    assert run_cli(capsys, "run", "--no-prune", "--max-new-tokens", "2", "--json", str(path))[0] == 0
    assert all(rows[0] == list(range(72)) for rows in json.loads(path.read_text())["kept"].values())


BAD_INPUTS = [
    (["run", "--global-layer", "6"], "outside 1..5"),
    (["run", "--fine-ratio", "1"], "outside [0, 1)"),
    (["run", "--alpha", "-0.5"], "outside [0, 1]"),
    (["run", "--global-budget", "-4"], "negative"),
    (["run", "--global-budget", "lots"], "not a number"),
    (["run", "--model", "gpt-9"], "invalid choice"),
    (["run", "--max-new-tokens", "0"], "must be an integer >= 1"),
    (["run", "--model", "videollama2"], "no built-in weights"),
    (["flops", "--keep-frames", "-2"], "integer >= 0"),
    (["run", "--bogus"], "unrecognized arguments"),
    (["run", "--backend", "ort"], "runs an engine directory"),
    (["build", "--bf16"], "cannot run bf16 graphs"),
    (["build", "--fp16", "--bf16"], "not allowed with argument"),
    (["build", "--max-tokens", "10"], "below the layout's 72 tokens"),
    (["build", "--max-new-tokens", "0"], "must be an integer >= 1"),
    (["build", "--model", "videollama2"], "no built-in weights"),
    (["build", "--global-layer", "9"], "outside 1..5"),
    (["build", "--weights", "int3"], "invalid choice"),
    (["build", "--weights", "int8", "--graphs", "onnx-standard"], "int4 only"),
    (["build", "--weights", "int8", "--backend", "trt"], "int4 only"),
    (["build", "--weights", "int4", "--graphs", "onnx-standard", "--accuracy-level", "4"], "do not use"),
    (["build", "--accuracy-level", "4"], "add --weights"),
    (["build", "--quantize-lm-head"], "add --weights"),
    (["build", "--weights", "int4", "--weight-block-size", "48"], "invalid choice"),
]


@pytest.mark.parametrize("argv,message", BAD_INPUTS)
def test_invalid_inputs_exit_2_with_one_line(capsys, argv, message):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and err.startswith("error: ")


@pytest.mark.parametrize("layout,embeds_shape,message", [
    ([{"kind": "text", "length": 3}], (4, 64), "covers 3 tokens but the input embeddings have 4"),
    ([{"kind": "pixels", "length": 4}], (4, 64), "unknown kind"),
    ([], (4, 64), "layout is empty"),
    ([{"kind": "text", "length": 4}], (4, 32), "hidden size is 64"),
    ([{"kind": "text", "length": 4}], (2, 4, 64, 1), "expected [N, D] or [B, N, D]"),
])
def test_bad_layouts_and_embeddings(capsys, tmp_path, layout, embeds_shape, message):
    (tmp_path / "layout.json").write_text(json.dumps(layout))
    np.save(tmp_path / "embeds.npy", np.zeros(embeds_shape, np.float32))
    code, _, err = run_cli(capsys, "run", "--layout", str(tmp_path / "layout.json"), "--embeds", str(tmp_path / "embeds.npy"))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_float64_embeds_are_refused(capsys, tmp_path):
    np.save(tmp_path / "e.npy", np.zeros((72, 64)))
    code, _, err = run_cli(capsys, "run", "--embeds", str(tmp_path / "e.npy"))
    assert code == 2 and "float64, expected float32" in err


def test_help_works_without_optional_packages_and_without_torch():
    """`--help` of every command imports neither torch nor any optional package."""
    script = (
        "import sys\n"
        "from fastav_export.cli import main\n"
        f"for argv in [['--help']] + [[c, '--help'] for c in {sorted(COMMANDS)!r}]:\n"
        "    try:\n        main(argv)\n    except SystemExit as e:\n        assert e.code == 0\n"
        "heavy = {'torch', 'onnx', 'onnxruntime', 'tensorrt', 'polygraphy', 'tritonclient'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "examples:" in result.stdout


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "fastav_export", "flops", "--model", "video-salmonn2"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "FLOPs ratio" in result.stdout


@pytest.mark.slow
def test_run_engine_prints_and_writes_what_the_torch_backend_does(capsys, tmp_path, tiny_engine):
    engine = tiny_engine("videollama2-tiny", rollout=False)
    outputs = {}
    for backend, argv in {"ort": [str(engine.path)], "torch": ["--model", "videollama2-tiny"]}.items():
        path = tmp_path / f"{backend}.json"
        code, out, _ = run_cli(capsys, "run", *argv, "--batch", "2", "--json", str(path))
        assert code == 0 and "schedule (tokens each layer processes):" in out
        outputs[backend] = (json.loads(path.read_text()), out.splitlines()[1:])
    (ort_json, ort_lines), (torch_json, torch_lines) = outputs["ort"], outputs["torch"]
    assert ort_lines == torch_lines  # schedule, tokens and FLOPs lines are identical
    assert ort_json["kept"] == torch_json["kept"] and ort_json["tokens"] == torch_json["tokens"]
    assert ort_json["flops_ratio"] == torch_json["flops_ratio"]
    np.testing.assert_allclose(ort_json["logits"], torch_json["logits"], atol=1e-4)


def test_build_refuses_to_overwrite_a_directory_that_is_not_an_engine(capsys, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("...")
    code, _, err = run_cli(capsys, "build", "--out", str(tmp_path / "mine"))
    assert code == 2 and "is not an engine directory" in err
    assert (tmp_path / "mine" / "thesis.tex").exists()


def test_flops_of_a_trillion_token_layout_is_one_line(capsys, tmp_path):
    """`flops --layout` with 1e12 tokens is refused before anything is allocated (931 GiB)."""
    layout = tmp_path / "layout.json"
    layout.write_text(json.dumps([{"kind": "video", "length": 10**12 // 2}] * 2 + [{"kind": "text", "length": 1}]))
    code, _, err = run_cli(capsys, "flops", "--layout", str(layout))
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    layout.write_text(json.dumps([{"kind": "video", "length": 40_000}, {"kind": "text", "length": 1}]))
    code, _, err = run_cli(capsys, "flops", "--layout", str(layout))
    assert code == 2 and "exceed the model's 32768 positions" in err, err


@pytest.mark.parametrize("argv,flag", [
    (["run", "--max-new-tokens", "1", "--json", "{tmp}"], "--json"),
    (["run", "--max-new-tokens", "1", "--json", "{tmp}/missing/out.json"], "--json"),
    (["flops", "--json", "{tmp}"], "--json"),
    (["flops", "--log-file", "{tmp}/missing/log.txt"], "--log-file"),
])
def test_output_paths_are_checked_before_any_work(capsys, tmp_path, argv, flag):
    """`run --json <directory>` is refused before generating, not after it with a traceback."""
    code, out, err = run_cli(capsys, *[arg.format(tmp=tmp_path) for arg in argv])
    assert code == 2 and (err.startswith(f"error: {flag}") or err.startswith("error: cannot write")), err
    assert len(err.strip().splitlines()) == 1 and out == ""  # nothing was computed


def test_a_closed_pipe_ends_quietly():
    """`fastav-export flops --model videollama2 | head -3` ends quietly, without a BrokenPipeError traceback."""
    process = subprocess.Popen([sys.executable, "-m", "fastav_export", "flops", "--model", "videollama2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = [process.stdout.readline() for _ in range(3)]
    process.stdout.close()  # what `head -3` does after three lines
    stderr = process.stderr.read().decode()
    process.wait(timeout=60)
    assert head[0].startswith(b"model: videollama2")
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr


@pytest.mark.parametrize("argv,message", [
    (["--threads", "-1"], "outside 0.."),
    (["--threads", "100000"], "cores"),
    (["--device", "cuda"], "only apply to the torch backend"),
    (["--dtype", "float16"], "only apply to the torch backend"),
    (["--global-budget", "0"], "applies to the rollout policy only"),
    (["--global-budget", "0.5", "--global-policy", "positional"], "applies to the rollout policy only"),
    (["--no-prune", "--fine-ratio", "0.3"], "would be ignored"),
])
def test_engine_runs_refuse_options_they_would_ignore(capsys, tiny_engine, argv, message):
    """`--threads -1`, `--device cuda` with ENGINE_DIR and `--global-budget 0` on a positional engine are
    refused, not silently ignored (`--threads 1000` would make a run 40x slower)."""
    engine = tiny_engine("videollama2-tiny", rollout=False).path
    code, out, err = run_cli(capsys, "run", str(engine), "--max-new-tokens", "1", *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert out == ""


@pytest.mark.parametrize("argv,message", [
    (["--seed", str(10**23)], "outside 0..2**63-1"),  # not a ValueError traceback from torch
    (["--threads", "1"], "--threads sets ONNX Runtime's threads"),
    (["--batch", str(10**9)], "of memory but"),  # refused before an 18 GB+ allocation
])
def test_torch_runs_refuse_bad_values_in_one_line(capsys, argv, message):
    code, out, err = run_cli(capsys, "run", "--max-new-tokens", "1", *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert out == ""


def test_flash_attention_without_flash_attn_is_one_line(capsys):
    """A missing optional package is one line, not an ImportError from inside the model's construction."""
    import importlib.util

    if importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash-attn is installed here")
    code, _, err = run_cli(capsys, "run", "--attn-implementation", "flash_attention_2", "--max-new-tokens", "1")
    assert code == 2 and "needs the flash-attn package" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv,message", [
    (["--max-new-tokens", "0"], "must be an integer >= 1"),  # was silently the default
    (["--name", ""], "is not a model name"),  # was silently the engine's name
    (["--instances", "0"], "must be an integer >= 1"),
    (["--threads", "-2"], "must be an integer >= 0"),
])
def test_triton_refuses_values_it_used_to_replace_by_defaults(capsys, tmp_path, tiny_engine, argv, message):
    engine = tiny_engine("videollama2-tiny").path
    code, _, err = run_cli(capsys, "triton", str(engine), "--out", str(tmp_path / "repo"), *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "repo").exists()


def _fake_build(monkeypatch):
    """`build_engine` replaced by a stand-in that writes nothing (the hints are what is tested)."""
    from types import SimpleNamespace

    import fastav_export.engine.build as build

    monkeypatch.setattr(build, "build_engine", lambda *args, **kwargs: SimpleNamespace(files={}, graphs={},
                                                                                      media=kwargs.get("media")))


def test_build_hints_are_runnable_and_quoted(capsys, tmp_path, monkeypatch):
    """`build --bf16 --export-only` prints no `run it:` hint (it cannot work there); hints quote paths."""
    _fake_build(monkeypatch)
    out = tmp_path / "my engine"
    code, printed, err = run_cli(capsys, "build", "--bf16", "--export-only", "--out", str(out))
    assert code == 0, err
    assert "run it:" not in printed and "--export-only" in printed
    code, printed, err = run_cli(capsys, "build", "--out", str(out))
    assert code == 0, err
    hint = next(line for line in printed.splitlines() if line.startswith("run it:"))
    assert shlex.split(hint.split(": ", 1)[1]) == ["fastav-export", "run", str(out), "--video", "FILE",
                                                   "--question", "TEXT"]
    code, printed, err = run_cli(capsys, "build", "--decoder-only", "--out", str(out))
    assert code == 0, err
    hint = next(line for line in printed.splitlines() if line.startswith("run it:"))
    assert shlex.split(hint.split(": ", 1)[1]) == ["fastav-export", "run", str(out)]


def test_triton_start_hint_is_quoted(capsys, tmp_path, tiny_engine):
    out = tmp_path / "it's-repo"  # a quote: printed unquoted, the hint would not split back into the path
    code, printed, err = run_cli(capsys, "triton", str(tiny_engine("videollama2-tiny").path), "--out", str(out))
    assert code == 0, err
    hint = next(line for line in printed.splitlines() if line.startswith("start:"))
    assert shlex.split(hint.split(": ", 1)[1])[-2:] == ["--model-repository", str(out)]

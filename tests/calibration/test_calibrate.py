"""`fastav-export calibrate` on a tiny model with planted structure, the preset's round trip through
`build --preset` and `run --preset`, and its one-line errors."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from fastav_export.cli import main
from fastav_export.models import get_model_spec
from fastav_export.testing.models import tiny_model

from ..models.test_checkpoint import config_dict, llm_tensors, write_single

SPEC = get_model_spec("videollama2-tiny")
LAYOUT = SPEC.default_layout()  # [text 6][video 4 x 9][audio 24][text 6]
K = SPEC.dims.num_layers // 2
QUERY_DIM, KEY_DIM = 0, 1  # embedding dims that carry "I ask" and "attend to me"
EARLY, LATE = range(6, 15), range(33, 42)  # the first and the last video group


def planted_model():
    """The tiny decoder whose layers 0..K-1 attend by one rule: every query looks at the tokens whose
    embedding has KEY_DIM set (their residual stream passes through unchanged)."""
    model = copy.deepcopy(tiny_model(SPEC.name))
    head_dim = SPEC.dims.head_size
    # RoPE barely turns the last frequency pair (theta 1e6): put the signal there
    slot = head_dim // 2 - 1
    with torch.no_grad():
        for layer in model.model.layers[:K]:
            attn = layer.self_attn
            for proj, dim, heads in ((attn.q_proj, QUERY_DIM, SPEC.dims.num_heads),
                                     (attn.k_proj, KEY_DIM, SPEC.dims.num_kv_heads)):
                proj.weight.zero_()
                proj.bias.zero_()
                for head in range(heads):
                    proj.weight[head * head_dim + slot, dim] = 4.0
            attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
            layer.input_layernorm.weight.fill_(1.0)
    return model


def planted_samples(directory, positions, count=4):
    rng = np.random.default_rng(1)
    directory.mkdir()
    for index in range(count):
        embeds = 0.1 * rng.standard_normal((LAYOUT.n_tokens, SPEC.dims.hidden_size)).astype(np.float32)
        embeds[:, QUERY_DIM] = 1.0
        embeds[list(positions), KEY_DIM] = 1.0
        np.save(directory / f"sample{index}.npy", embeds)
    return directory


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = planted_model()
    return write_single(tmp_path_factory.mktemp("planted") / "ckpt", config_dict(model), llm_tensors(model))


def calibrate(capsys, checkpoint, samples, out, *extra):
    code = main(["calibrate", "--model", SPEC.name, "--checkpoint", str(checkpoint), "--samples", str(samples),
                 "--out", str(out), "--json", str(out.with_suffix(".report.json")), *extra])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    return json.loads(out.read_text()), json.loads(out.with_suffix(".report.json").read_text()), printed.out


def kept_positions(rule: dict) -> set[int]:
    from fastav_export.contract.pruning_config import PruningConfig
    from fastav_export.contract.selection import positional_keep_mask

    return set(np.flatnonzero(positional_keep_mask(LAYOUT, PruningConfig(global_layer=K, **rule))).tolist())


def test_early_structure_gives_a_small_cutoff(checkpoint, tmp_path, capsys):
    preset, report, printed = calibrate(capsys, checkpoint, planted_samples(tmp_path / "s", EARLY),
                                        tmp_path / "early.json")
    rule = report["rule"]
    assert rule["cutoff"] <= EARLY.stop and rule["keep_audio"] == 0, rule
    assert set(EARLY) <= kept_positions(rule) and report["mass_retained"] >= 0.9
    assert preset["pruning"]["cutoff"] == rule["cutoff"] and preset["pruning"]["global_policy"] == "positional"
    assert "stability: first half" in printed and report["per_sample_mass"]["min"] >= 0.85


def test_reversed_structure_keeps_the_late_positions(checkpoint, tmp_path, capsys):
    _, report, _ = calibrate(capsys, checkpoint, planted_samples(tmp_path / "s", LATE), tmp_path / "late.json")
    kept = kept_positions(report["rule"])
    # the late group holds the mass: the cutoff reaches into it (its last tokens, seen by the fewest
    # query rows, may fall outside: the rule keeps no more than keep-mass needs)
    assert report["rule"]["cutoff"] > LATE.start + len(LATE) // 2 and len(set(LATE) & kept) >= 6, report["rule"]
    assert report["mass_retained"] >= 0.9


@pytest.mark.slow
def test_the_preset_round_trips_through_build_and_run(checkpoint, tmp_path, capsys):
    preset_file = tmp_path / "preset.json"
    _, report, _ = calibrate(capsys, checkpoint, planted_samples(tmp_path / "s", EARLY), preset_file)
    rule = report["rule"]
    explicit = ["--cutoff", str(rule["cutoff"]), "--keep-audio", str(rule["keep_audio"])]
    torch_args = ["run", "--model", SPEC.name, "--checkpoint", str(checkpoint), "--backend", "torch",
                  "--max-new-tokens", "3", "--json"]
    runs = {}
    for name, extra in (("preset", ["--preset", str(preset_file)]), ("flags", explicit)):
        assert main([*torch_args, str(tmp_path / f"run-{name}.json"), *extra]) == 0
        runs[name] = json.loads((tmp_path / f"run-{name}.json").read_text())
    assert runs["preset"]["kept"] == runs["flags"]["kept"] and runs["preset"]["tokens"] == runs["flags"]["tokens"]

    engine = tmp_path / "engine"
    assert main(["build", "--model", SPEC.name, "--checkpoint", str(checkpoint), "--decoder-only",
                 "--preset", str(preset_file), "--out", str(engine)]) == 0
    manifest = json.loads((engine / "config.json").read_text())
    assert manifest["pruning"]["cutoff"] == rule["cutoff"]
    source = manifest["pruning_source"]
    assert source["kind"] == "preset" and source["path"] == str(preset_file.resolve()) and len(source["sha256"]) == 64
    assert source["provenance"]["calibrate"]["samples"] == report["samples"]
    assert main(["run", str(engine), "--max-new-tokens", "3", "--json", str(tmp_path / "engine.json")]) == 0
    assert json.loads((tmp_path / "engine.json").read_text())["kept"] == runs["preset"]["kept"]
    capsys.readouterr()


def test_held_out_overlap_and_plots(checkpoint, tmp_path, capsys):
    samples = planted_samples(tmp_path / "s", EARLY)
    _, report, printed = calibrate(capsys, checkpoint, samples, tmp_path / "p.json", "--held-out",
                                   str(samples / "sample0.npy"), "--plots", str(tmp_path / "plots"),
                                   "--alpha", "0.5,0.9")
    assert "held-out" in printed and 0.0 <= report["held_out_overlap"]["min"] <= 1.0
    assert set(report["alphas"]) == {"0.5", "0.9"}
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert pngs == ["attention_rollout.png", "importance.png"]
    assert all((tmp_path / "plots" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


@pytest.mark.parametrize("argv, words", [
    (["--samples", "{empty}"], ["holds no sample files"]),
    (["--samples", "{missing}"], ["is not a file"]),
    (["--samples", "{wrong}"], ["tokens but the layout"]),
    (["--samples", "{good}", "--keep-mass", "0"], ["--keep-mass", "is outside (0, 1]"]),
    (["--samples", "{good}", "--keep-mass", "1.5"], ["--keep-mass"]),
    (["--samples", "{good}", "--alpha", "2"], ["--alpha", "outside [0, 1]"]),
    (["--samples", "{video}"], ["--question"]),
])
def test_invalid_inputs_are_one_line_errors(argv, words, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    np.save(tmp_path / "wrong.npy", np.zeros((5, SPEC.dims.hidden_size), np.float32))
    np.save(tmp_path / "good.npy", np.zeros((LAYOUT.n_tokens, SPEC.dims.hidden_size), np.float32))
    (tmp_path / "clip.mp4").write_bytes(b"not read")
    names = {"{empty}": tmp_path / "empty", "{missing}": tmp_path / "nope", "{wrong}": tmp_path / "wrong.npy",
             "{good}": tmp_path / "good.npy", "{video}": tmp_path / "clip.mp4"}
    argv = [str(names.get(arg, arg)) for arg in argv]
    out = tmp_path / "preset.json"
    try:
        code = main(["calibrate", "--model", SPEC.name, *argv, "--out", str(out)])
    except SystemExit as exc:  # argparse refuses malformed values itself
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and all(word in err for word in words), err
    assert not out.exists()


def test_a_video_sample_without_audio_gets_advice_calibrate_can_follow(tmp_path, capsys):
    """calibrate has no --audio or --silent-audio: the advice names what it does accept."""
    from fastav_export.testing.media_clips import write_test_clip

    silent = write_test_clip(tmp_path / "silent.mp4", seconds=1.0, audio=False)
    out = tmp_path / "preset.json"
    code = main(["calibrate", "--model", SPEC.name, "--samples", str(silent), "--question", "What happens?",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"{silent} has no audio" in err, err
    assert "--audio" not in err and "--silent-audio" not in err and "--samples" in err and ".npy" in err, err
    assert not out.exists()


def test_plots_without_matplotlib_fail_in_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    import sys

    np.save(tmp_path / "good.npy", np.zeros((LAYOUT.n_tokens, SPEC.dims.hidden_size), np.float32))
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    argv = ["calibrate", "--model", SPEC.name, "--samples", str(tmp_path / "good.npy"), "--out",
            str(tmp_path / "p.json")]
    assert main([*argv, "--plots", str(tmp_path / "plots")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fastav-export[plots]" in err and not (tmp_path / "p.json").exists()
    assert main(argv) == 0  # without --plots matplotlib is not needed
    capsys.readouterr()


@pytest.mark.slow
def test_video_salmonn2_calibrates_over_clips_of_different_lengths(tmp_path, capsys):
    """Each clip has its own interleaved layout; the rule is in frames, so it is chosen over all of them."""
    from fastav_export.testing.media_clips import write_test_clip

    clips = [write_test_clip(tmp_path / f"clip{seconds}.mp4", seconds=seconds) for seconds in (3.0, 5.0)]
    out = tmp_path / "preset.json"
    code = main(["calibrate", "--model", "video-salmonn2-tiny", "--samples", *map(str, clips), "--question",
                 "What happens?", "--out", str(out), "--held-out", str(clips[1]), str(clips[0])])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    preset = json.loads(out.read_text())
    pruning = preset["pruning"]
    assert pruning["global_policy"] == "positional" and pruning["cutoff"] is None and pruning["keep_audio"] == 0
    assert 0 <= pruning["keep_frames"] <= 5 and preset["target"]["layout"] == "interleaved"
    assert preset["provenance"]["calibrate"]["samples"] == ["clip3.0.mp4", "clip5.0.mp4"]
    assert "calibrated on 2 samples" in printed.out

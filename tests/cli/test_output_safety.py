"""Outputs never replace links, FIFOs or devices, and never overwrite what the same command reads.

Every case is refused with one `error:` line and exit code 2 before any work, and the node or
input it named is left as it was (an engine still loads afterwards).
"""

from __future__ import annotations

import os
import shutil
import stat

import numpy as np
import pytest

from .test_cli import run_cli


def _refused(result, *fragments):
    code, out, err = result
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, (code, err)
    assert all(fragment in err for fragment in fragments), err
    assert out == ""


@pytest.fixture
def engine_copy(tmp_path, tiny_engine):
    """A private copy of the tiny engine (the session's one must not change)."""
    return shutil.copytree(tiny_engine("videollama2-tiny", rollout=False).path, tmp_path / "engine")


def test_run_json_through_a_symlink_is_refused(capsys, tmp_path):
    target = tmp_path / "target.json"
    target.write_text("mine")
    (tmp_path / "link.json").symlink_to(target)
    _refused(run_cli(capsys, "run", "--max-new-tokens", "1", "--json", tmp_path / "link.json"), "symbolic link")
    assert (tmp_path / "link.json").is_symlink() and target.read_text() == "mine"


def test_run_json_to_a_fifo_is_refused(capsys, tmp_path):
    os.mkfifo(tmp_path / "fifo")
    _refused(run_cli(capsys, "run", "--max-new-tokens", "1", "--json", tmp_path / "fifo"), "FIFO")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)


def test_bench_json_to_a_fifo_is_refused(capsys, tmp_path, engine_copy):
    os.mkfifo(tmp_path / "fifo")
    _refused(run_cli(capsys, "bench", engine_copy, "--rounds", "1", "--json", tmp_path / "fifo"), "FIFO")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_bench_json_to_a_device_is_refused(capsys, engine_copy):
    _refused(run_cli(capsys, "bench", engine_copy, "--rounds", "1", "--json", "/dev/full"), "device")
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)


def test_run_json_over_the_video_is_refused(capsys, tmp_path, media_clip):
    video = shutil.copy(media_clip, tmp_path / "clip.mp4")
    before = open(video, "rb").read()
    _refused(run_cli(capsys, "run", "--model", "videollama2-tiny", "--backend", "torch", "--video", video,
                     "--question", "What?", "--max-new-tokens", "1", "--json", video), "--video")
    assert open(video, "rb").read() == before


def test_log_file_over_an_input_is_refused(capsys, tmp_path):
    layout = tmp_path / "layout.json"
    layout.write_text('[{"kind": "text", "length": 72}]')
    _refused(run_cli(capsys, "run", "--layout", layout, "--max-new-tokens", "1", "--log-file", layout), "--layout")
    assert layout.read_text() == '[{"kind": "text", "length": 72}]'


def test_run_json_over_a_hard_link_of_the_embeddings_is_refused(capsys, tmp_path):
    embeds = tmp_path / "embeds.npy"
    np.save(embeds, np.zeros((72, 64), np.float32))
    os.link(embeds, tmp_path / "same.npy")
    _refused(run_cli(capsys, "run", "--embeds", embeds, "--max-new-tokens", "1", "--json", tmp_path / "same.npy"),
             "--embeds")
    assert np.load(embeds).shape == (72, 64)


def test_run_json_over_the_preset_is_refused(capsys, tmp_path):
    preset = tmp_path / "p.json"  # refused before it is read, so any content shows it is left alone
    text = '{"format": "fastav-export preset"}\n'
    preset.write_text(text)
    _refused(run_cli(capsys, "run", "--preset", preset, "--max-new-tokens", "1", "--json", preset), "--preset")
    assert preset.read_text() == text


def test_bench_json_inside_the_engine_is_refused_and_the_engine_still_loads(capsys, engine_copy):
    from fastav_export.engine.manifest import load_engine_dir

    config = engine_copy / "config.json"
    before = config.read_bytes()
    _refused(run_cli(capsys, "bench", engine_copy, "--rounds", "1", "--json", config), "ENGINE_DIR")
    assert config.read_bytes() == before
    load_engine_dir(engine_copy)  # still valid: every sha256 matches
    _refused(run_cli(capsys, "run", engine_copy, "--max-new-tokens", "1", "--json", engine_copy / "out.json"),
             "ENGINE_DIR")
    assert not (engine_copy / "out.json").exists()


def test_calibrate_out_over_a_sample_is_refused(capsys, tmp_path):
    sample = tmp_path / "s.npy"
    np.save(sample, np.zeros((72, 64), np.float32))
    before = sample.read_bytes()
    _refused(run_cli(capsys, "calibrate", "--model", "videollama2-tiny", "--samples", sample, "--out", sample),
             "--samples")
    _refused(run_cli(capsys, "calibrate", "--model", "videollama2-tiny", "--samples", tmp_path, "--out",
                     tmp_path / "p.json", "--json", sample), "--samples")  # a sample found in a directory
    assert sample.read_bytes() == before


def test_two_outputs_of_one_command_may_not_be_one_file(capsys, tmp_path):
    """The second write would replace the first: `calibrate --out p.json --json p.json`, or a log file."""
    sample = tmp_path / "s.npy"
    np.save(sample, np.zeros((72, 64), np.float32))
    out = tmp_path / "p.json"
    _refused(run_cli(capsys, "calibrate", "--model", "videollama2-tiny", "--samples", sample, "--out", out,
                     "--json", tmp_path / "." / "p.json"), "--json", "--out")
    _refused(run_cli(capsys, "run", "--max-new-tokens", "1", "--json", out, "--log-file", out), "--log-file")
    assert not out.exists()


def test_build_out_holding_the_checkpoint_is_refused(capsys, tmp_path):
    from fastav_export.testing.snapshots import write_tiny_videollama2_av_snapshot

    checkpoint = write_tiny_videollama2_av_snapshot(tmp_path / "models" / "ckpt") or tmp_path / "models" / "ckpt"
    for out in (checkpoint, tmp_path / "models", checkpoint / "engine"):
        _refused(run_cli(capsys, "build", "--checkpoint", checkpoint, "--model", "videollama2-tiny", "--out", out),
                 "--checkpoint")
    assert (checkpoint / "config.json").is_file()


def test_triton_out_over_the_engine_is_refused(capsys, tmp_path, engine_copy):
    from fastav_export.engine.manifest import load_engine_dir

    for out in (engine_copy, tmp_path):  # the engine itself, and a repository holding it
        _refused(run_cli(capsys, "triton", engine_copy, "--out", out), "ENGINE_DIR")
    load_engine_dir(engine_copy)


def test_compare_report_inside_the_engine_is_refused(capsys, engine_copy):
    pytest.importorskip("polygraphy")
    _refused(run_cli(capsys, "compare", engine_copy, "--report", engine_copy / "config.json"), "ENGINE_DIR")

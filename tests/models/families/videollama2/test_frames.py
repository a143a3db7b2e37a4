"""VideoLLaMA2 samples the frame count its checkpoint's config.json sets (`num_frames`; 8 without it, as
upstream's model_init falls back to), and the layout, the manifest and the loading report follow it."""

from __future__ import annotations

import argparse
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastav_export.cli import main
from fastav_export.cli.options import resolve_spec
from fastav_export.errors import FastAVError
from fastav_export.models import get_model_spec
from fastav_export.testing.snapshots import write_tiny_videollama2_av_snapshot

TINY = get_model_spec("videollama2-tiny")


def _config_only(directory, **settings):
    """A snapshot directory holding only config.json: enough for everything decided before weights load."""
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": "videollama2_qwen2", **settings}))
    return directory


def _spec(checkpoint, model=None):
    return resolve_spec(argparse.Namespace(checkpoint=checkpoint, model=model))


def _video_groups(layout) -> list[int]:
    return [segment.length for segment in layout.segments if segment.kind == "video"]


def test_the_registered_models_keep_their_frame_counts():
    assert get_model_spec("videollama2").video.num_frames == 16 and TINY.video.num_frames == 8
    assert _video_groups(get_model_spec("videollama2").default_layout()) == [169] * 8


@pytest.mark.parametrize("settings, frames", [({"num_frames": 16}, 16), ({}, 8), ({"num_frames": 32}, 32),
                                              ({"num_frames": 9}, 9)])
def test_a_checkpoint_sets_the_frames_and_the_layout_follows(tmp_path, settings, frames):
    spec = _spec(_config_only(tmp_path / "snap", **settings))
    default = get_model_spec("videollama2").default_layout()
    assert spec.video.num_frames == frames
    layout = spec.default_layout()
    # The STC connector pools pairs of frames (kernel = stride = 2, no padding): frames // 2 groups of 13 x 13.
    assert _video_groups(layout) == [169] * (frames // 2)
    assert [s for s in layout.segments if s.kind != "video"] == [s for s in default.segments if s.kind != "video"]
    assert [s.frame for s in layout.segments if s.kind == "video"] == list(range(frames // 2))


def test_a_tiny_model_takes_the_snapshots_frames_at_its_own_sizes(tmp_path):
    spec = _spec(_config_only(tmp_path / "snap", num_frames=4), model=TINY.name)
    assert spec.video.num_frames == 4 and spec.video.image_size == TINY.video.image_size
    assert _video_groups(spec.default_layout()) == [9, 9]
    assert spec.default_layout().segments[0] == TINY.default_layout().segments[0]


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.integers(min_value=-5, max_value=1), st.integers(min_value=33, max_value=10**6), st.booleans(),
                 st.floats(allow_nan=True), st.text(max_size=4), st.none(), st.lists(st.integers(), max_size=2)))
def test_a_num_frames_that_is_not_2_to_32_is_one_line(value):
    from fastav_export.models.families.videollama2.spec import config_frames

    with pytest.raises(FastAVError, match="num_frames") as caught:
        config_frames({"num_frames": value}, "snap/config.json")
    assert "\n" not in str(caught.value) and "snap/config.json" in str(caught.value)


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=2, max_value=32))
def test_every_count_upstream_samples_is_taken(value):
    from fastav_export.models.families.videollama2.spec import config_frames

    assert config_frames({"num_frames": value}, "snap/config.json") == value


def test_build_refuses_a_bad_num_frames_before_writing_anything(tmp_path, capsys):
    snapshot = _config_only(tmp_path / "snap", num_frames=64)
    out = tmp_path / "engine"
    assert main(["build", "--checkpoint", str(snapshot), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "num_frames 64" in err and "32" in err
    assert not out.exists()


def test_the_loading_report_names_the_frame_count(tmp_path):
    from fastav_export.models.families import load_media_parts

    snapshot = write_tiny_videollama2_av_snapshot(tmp_path / "snap")
    parts = load_media_parts(TINY, TINY.dims, snapshot)
    assert parts.sources["frames per clip"] == "8 (num_frames in config.json)"
    config = json.loads((snapshot / "config.json").read_text())
    del config["num_frames"]
    (snapshot / "config.json").write_text(json.dumps(config))
    parts = load_media_parts(TINY, TINY.dims, snapshot)
    assert parts.sources["frames per clip"] == "8 (config.json sets no num_frames: upstream's default)"


@pytest.mark.slow
def test_an_engine_built_from_the_snapshot_samples_its_frames(tmp_path, media_clip, capsys):
    snapshot = write_tiny_videollama2_av_snapshot(tmp_path / "snap")
    config = json.loads((snapshot / "config.json").read_text())
    (snapshot / "config.json").write_text(json.dumps({**config, "num_frames": 4}))
    out = tmp_path / "engine"
    assert main(["build", "--model", TINY.name, "--checkpoint", str(snapshot), "--out", str(out)]) == 0
    assert "  frames per clip: 4 (num_frames in config.json)" in capsys.readouterr().out
    manifest = json.loads((out / "config.json").read_text())
    assert manifest["media"]["video"]["num_frames"] == 4
    argv = ["--video", str(media_clip), "--question", "What is it?", "--max-new-tokens", "3"]
    assert main(["run", str(out), *argv, "--json", str(tmp_path / "e.json")]) == 0
    assert "frames per clip: 4" in capsys.readouterr().out
    assert main(["run", "--model", TINY.name, "--checkpoint", str(snapshot), "--backend", "torch", *argv,
                 "--json", str(tmp_path / "t.json")]) == 0
    engine, torch_run = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("e", "t"))
    assert engine["token_ids"] == torch_run["token_ids"] and engine["kept"] == torch_run["kept"]
    video = [segment for segment in engine["layout"] if segment["kind"] == "video"]
    assert [segment["length"] for segment in video] == [9, 9]

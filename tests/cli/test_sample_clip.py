"""`fastav-export sample-clip OUT [SECONDS]`: the sample clip, with the checks every output gets."""

from __future__ import annotations

import os
import stat

import pytest

from fastav_export.cli import main

from .test_cli import run_cli as _cli


def test_writes_a_clip_the_media_path_decodes(capsys, tmp_path):
    from fastav_export.media.sample_clip import DEFAULT_FPS

    out = tmp_path / "clip.mp4"
    code, printed, err = _cli(capsys, "sample-clip", out, "2")
    assert code == 0, err
    assert str(out) in printed
    import av

    with av.open(str(out)) as container:
        assert container.streams.video and container.streams.audio
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 2 * DEFAULT_FPS
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # no temporary file left behind


def test_default_length_is_three_seconds(capsys, tmp_path):
    import av

    code, _, err = _cli(capsys, "sample-clip", tmp_path / "clip.mp4")
    assert code == 0, err
    with av.open(str(tmp_path / "clip.mp4")) as container:
        assert abs(float(container.duration / av.time_base) - 3.0) < 0.2


@pytest.mark.parametrize("seconds", ["abc", "0", "-1", "nan", "inf", "1e9", "0.01"])
def test_bad_seconds_are_one_line(capsys, tmp_path, seconds):
    code, out, err = _cli(capsys, "sample-clip", tmp_path / "clip.mp4", seconds)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert out == "" and not (tmp_path / "clip.mp4").exists()


def test_output_checks_as_every_command(capsys, tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "target.mp4").write_bytes(b"mine")
    (tmp_path / "link.mp4").symlink_to(tmp_path / "target.mp4")
    for out, words in ((tmp_path / "fifo", "FIFO"), (tmp_path / "link.mp4", "symbolic link"),
                       (tmp_path, "is a directory"), (tmp_path / "missing" / "clip.mp4", "does not exist"),
                       (tmp_path / "clip.avi", ".mp4")):
        code, printed, err = _cli(capsys, "sample-clip", out)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1 and printed == "", (out, err)
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)
    assert (tmp_path / "target.mp4").read_bytes() == b"mine"


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["sample-clip", "--help"])
    assert "fastav-export sample-clip clip.mp4" in capsys.readouterr().out


def test_the_module_entry_point_still_writes_the_clip(tmp_path, capsys):
    from fastav_export.testing.media_clips import main as write_clip

    assert write_clip([str(tmp_path / "clip.mp4"), "1"]) == 0
    assert (tmp_path / "clip.mp4").stat().st_size > 0

"""Where commands write: only a missing path or a regular file, and never one of the command's inputs."""

from __future__ import annotations

import os
import socket
import stat

import pytest

from fastav_export.errors import FastAVError
from fastav_export.user_io.output_paths import check_not_an_input, check_output_file


def _refused(path, *fragments):
    with pytest.raises(FastAVError) as caught:
        check_output_file(path, "--json")
    message = str(caught.value)
    assert "\n" not in message and all(fragment in message for fragment in fragments), message


def test_a_missing_path_and_a_regular_file_are_fine(tmp_path):
    check_output_file(tmp_path / "new.json", "--json")
    (tmp_path / "old.json").write_text("{}")
    check_output_file(tmp_path / "old.json", "--json")


def test_a_symlink_is_refused_even_to_a_regular_file(tmp_path):
    target = tmp_path / "target.json"
    target.write_text("mine")
    (tmp_path / "link.json").symlink_to(target)
    _refused(tmp_path / "link.json", "--json", "symbolic link")
    assert (tmp_path / "link.json").is_symlink() and target.read_text() == "mine"


def test_a_dangling_symlink_is_refused(tmp_path):
    (tmp_path / "link.json").symlink_to(tmp_path / "nowhere.json")
    _refused(tmp_path / "link.json", "symbolic link")


def test_a_fifo_is_refused(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    _refused(tmp_path / "fifo", "--json", "FIFO")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)


def test_a_socket_is_refused(tmp_path):
    path = tmp_path / "s"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        _refused(path, "socket")
    finally:
        server.close()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_a_device_is_refused_and_stays_a_device():
    _refused("/dev/full", "device")
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)


def _inputs(**paths):
    return [(flag.replace("_", "-"), path) for flag, path in paths.items()]


def test_an_output_that_is_an_input_is_refused(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"video")
    with pytest.raises(FastAVError, match="--video"):
        check_not_an_input(video, f"--json {video}", [("--video", video)])
    (tmp_path / "link.mp4").symlink_to(video)  # the input named through a link
    with pytest.raises(FastAVError, match="--video"):
        check_not_an_input(video, f"--json {video}", [("--video", tmp_path / "link.mp4")])
    os.link(video, tmp_path / "hard.mp4")  # the output is a hard link to the input
    with pytest.raises(FastAVError, match="--video"):
        check_not_an_input(tmp_path / "hard.mp4", "--json hard.mp4", [("--video", video)])
    relative = os.path.relpath(video)  # spelled differently
    with pytest.raises(FastAVError, match="--video"):
        check_not_an_input(relative, f"--json {relative}", [("--video", video)])


def test_an_output_inside_an_input_directory_is_refused(tmp_path):
    engine = tmp_path / "engine"
    engine.mkdir()
    (engine / "config.json").write_text("{}")
    for output in (engine / "config.json", engine / "new.json", engine):
        with pytest.raises(FastAVError, match="ENGINE_DIR"):
            check_not_an_input(output, f"--json {output}", [("ENGINE_DIR", engine)])


def test_a_replaced_directory_must_not_hold_an_input(tmp_path):
    checkpoint = tmp_path / "models" / "ckpt"
    checkpoint.mkdir(parents=True)
    with pytest.raises(FastAVError, match="--checkpoint"):
        check_not_an_input(tmp_path / "models", "--out models", [("--checkpoint", checkpoint)], replaced=True)
    # a directory that is only written into (plots) may hold inputs
    check_not_an_input(tmp_path / "models", "--plots models", [("--checkpoint", checkpoint)])


def test_unrelated_and_missing_inputs_pass(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    check_not_an_input(tmp_path / "out.json", "--json out.json",
                       [("--layout", tmp_path / "a.json"), ("--video", tmp_path / "missing.mp4"), ("--preset", None)])

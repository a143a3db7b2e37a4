"""file:// video URLs read only files inside the media root (after symlinks and `..`); data: URLs decode inline."""

from __future__ import annotations

import base64
import os
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastav_export.serving.openai_api.media_urls import video_from_url
from fastav_export.serving.openai_api.errors import EndpointError

from ..fuzz.contract import FUZZ

PARAM = "messages[0].content[1].video_url.url"
VIDEO = b"video bytes"


@pytest.fixture
def media(tmp_path):
    """(root, outside): the media root with clip.mp4, sub/deep.mp4 and symlinks; a secret file beside it."""
    root, outside = tmp_path / "media", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "clip.mp4").write_bytes(VIDEO)
    (root / "sub" / "deep.mp4").write_bytes(VIDEO + b"!")
    (outside / "secret.mp4").write_bytes(b"secret")
    (root / "inner-link.mp4").symlink_to(root / "sub" / "deep.mp4")
    (root / "escape.mp4").symlink_to(outside / "secret.mp4")
    (root / "escape-dir").symlink_to(outside, target_is_directory=True)
    (root / "loop").symlink_to(root / "loop")
    return root, outside


def read(url, root, max_bytes=1 << 20):
    return video_from_url(url, root, max_bytes, PARAM)


def refused(url, root, max_bytes=1 << 20) -> EndpointError:
    with pytest.raises(EndpointError) as caught:
        read(url, root, max_bytes)
    assert caught.value.param == PARAM and "\n" not in str(caught.value)
    return caught.value


def test_files_inside_the_root_are_read(media):
    root, _ = media
    assert read(f"file://{root}/clip.mp4", root) == VIDEO
    assert read(f"file://localhost{root}/sub/deep.mp4", root) == VIDEO + b"!"
    assert read(f"file://{root}/inner-link.mp4", root) == VIDEO + b"!"  # a symlink that stays inside
    assert read(f"file://{root}/sub/../clip.mp4", root) == VIDEO  # `..` that stays inside
    assert read(f"file://{quote(str(root))}/sub/%64eep.mp4", root) == VIDEO + b"!"  # percent-encoded
    # the root itself given through a symlink
    alias = root.parent / "alias"
    alias.symlink_to(root, target_is_directory=True)
    assert read(f"file://{root}/clip.mp4", alias) == VIDEO


@pytest.mark.parametrize("path", ["escape.mp4", "escape-dir/secret.mp4", "../outside/secret.mp4",
                                  "sub/../../outside/secret.mp4", "../outside/missing.mp4", "loop"])
def test_paths_that_leave_the_root_are_refused_alike_whether_or_not_they_exist(media, path):
    root, _ = media
    error = refused(f"file://{root}/{path}", root)
    assert error.status == 400 and "not inside the server's media root" in str(error)


def test_absolute_paths_outside_the_root(media):
    root, outside = media
    assert "not inside" in str(refused(f"file://{outside}/secret.mp4", root))
    assert "not inside" in str(refused("file:///etc/passwd", root))


@pytest.mark.parametrize("url,words", [
    ("file://otherhost/x.mp4", "no host"),
    ("file:relative.mp4", "absolute path"),
    ("file://ROOT/clip.mp4?x=1", "no host, query or fragment"),
    ("file://ROOT/clip%00.mp4", "absolute path"),
    ("file://ROOT/%ff.mp4", "absolute path in UTF-8"),
    ("file://ROOT/missing.mp4", "there is no file"),
    ("file://ROOT/sub", "not a regular file"),
])
def test_malformed_or_unreadable_file_urls(media, url, words):
    root, _ = media
    assert words in str(refused(url.replace("ROOT", str(root)), root))


def test_files_larger_than_the_limit_are_413(media):
    root, _ = media
    error = refused(f"file://{root}/clip.mp4", root, max_bytes=len(VIDEO) - 1)
    assert error.status == 413 and error.code == "request_too_large"
    assert read(f"file://{root}/clip.mp4", root, max_bytes=len(VIDEO)) == VIDEO


def test_a_fifo_in_the_root_is_refused_without_blocking(media):
    root, _ = media
    os.mkfifo(root / "pipe.mp4")
    assert "not a regular file" in str(refused(f"file://{root}/pipe.mp4", root))


def test_without_a_root_no_file_is_read(media):
    root, _ = media
    assert "no --media-root" in str(refused(f"file://{root}/clip.mp4", None))


def test_data_urls_round_trip():
    assert read("data:video/mp4;base64," + base64.b64encode(VIDEO).decode(), None) == VIDEO


@FUZZ
@given(url=st.text(max_size=40) | st.tuples(st.sampled_from(["file://", "FILE:", "data:video/mp4;base64,", "data:"]),
                                           st.text(max_size=30)).map("".join))
def test_any_url_gives_bytes_or_an_openai_error(url, tmp_path_factory):
    root = tmp_path_factory.getbasetemp()
    try:
        video = read(url, root)
    except EndpointError as error:
        assert 400 <= error.status < 500 and "\n" not in str(error)
    else:
        assert video

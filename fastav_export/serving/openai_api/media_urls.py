"""A chat message's `video_url` -> the video file's bytes, reading only what the server allows.

Two forms (vLLM's convention for video parts):
- `data:video/<subtype>[;param=value...];base64,<data>`: the bytes travel in the request;
- `file://<absolute path>`: a file on the server, accepted only when the path resolves
  (symlinks and `..` followed) inside the configured media root. Without a media root every
  file URL is refused.
Every other scheme (http, https, ftp, ...) and every relative path is refused: the server never
fetches anything on a client's behalf. A path outside the root is refused with the same message
whether or not it exists, so a client cannot probe the server's files.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import EndpointError

_DATA_URL = re.compile(r"data:video/[A-Za-z0-9][A-Za-z0-9.+-]*(?:;[^;,]*)*;base64,(.*)", re.DOTALL | re.IGNORECASE)


def video_from_url(url: str, media_root: Path | None, max_bytes: int, param: str) -> bytes:
    """The video's bytes. media_root: the directory file URLs may name, or None (none allowed).
    max_bytes: the largest file read from disk (larger is 413). param: the URL's field, for errors."""
    if url[:5].lower() == "data:":
        return _data_url_bytes(url, param)
    if url[:5].lower() == "file:":
        return _file_url_bytes(url, media_root, max_bytes, param)
    scheme = url.split(":", 1)[0] if ":" in url else ""
    what = f"the {scheme!r} scheme" if scheme.isalpha() else "a relative or scheme-less URL"
    raise EndpointError(f"video URLs with {what} are not accepted: send the video inline as "
                        "data:video/mp4;base64,... or as file:///absolute/path under the server's --media-root",
                        param=param, code="invalid_value")


def _data_url_bytes(url: str, param: str) -> bytes:
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise EndpointError("the data URL is not data:video/<subtype>;base64,<data>: send the video file's "
                            "bytes base64-encoded with a video/ media type, e.g. data:video/mp4;base64,...",
                            param=param, code="invalid_value")
    try:
        video = base64.b64decode(match.group(1), validate=True)
    except (binascii.Error, ValueError):
        raise EndpointError("the data URL's payload is not valid base64 (standard alphabet, padded, no "
                            "whitespace)", param=param, code="invalid_value") from None
    if not video:
        raise EndpointError("the data URL holds no bytes: send the video file's bytes", param=param,
                            code="invalid_value")
    return video


def _file_url_bytes(url: str, media_root: Path | None, max_bytes: int, param: str) -> bytes:
    if media_root is None:
        raise EndpointError("file:// video URLs are disabled on this server (it has no --media-root): send the "
                            "video inline as data:video/mp4;base64,...", param=param, code="invalid_value")
    path = _file_url_path(url, param)
    media_root = media_root.resolve()
    outside = EndpointError(f"the file URL's path is not inside the server's media root {media_root}: send a "
                            "path under it (after symlinks), or the video inline as a data URL",
                            param=param, code="invalid_value")
    try:
        target = Path(path).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a name too long: nothing to read either way
        raise outside from None
    if not target.is_relative_to(media_root):
        raise outside
    return _read_inside(target, media_root, max_bytes, param, outside)


def _file_url_path(url: str, param: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise EndpointError("the file URL must be file:///absolute/path (no host, query or fragment)",
                            param=param, code="invalid_value")
    try:
        path = unquote(parts.path, errors="strict")
        path.encode("utf-8")  # a lone surrogate from the JSON text names no file
    except UnicodeError:
        path = None
    if not path or not path.startswith("/") or "\0" in path:
        raise EndpointError("the file URL must name an absolute path in UTF-8, as file:///absolute/path",
                            param=param, code="invalid_value")
    return path


def _read_inside(target: Path, media_root: Path, max_bytes: int, param: str, outside: EndpointError) -> bytes:
    try:
        # O_NOFOLLOW and the check of what was opened: a directory on the path swapped for a symlink
        # after the check above must not let the open escape the root.
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise EndpointError(f"there is no file {target} under the media root", param=param,
                            code="invalid_value") from None
    except OSError as exc:
        raise EndpointError(f"cannot open {target} under the media root: {exc.strerror or exc}", param=param,
                            code="invalid_value") from None
    try:
        opened = Path(f"/proc/self/fd/{fd}")
        if opened.exists() and not Path(os.readlink(opened)).is_relative_to(media_root):
            raise outside
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise EndpointError(f"{target} is not a regular file: name a video file", param=param,
                                code="invalid_value")
        if info.st_size > max_bytes:
            raise EndpointError(f"{target} has {info.st_size:,} bytes, more than this server's limit of "
                                f"{max_bytes:,} (--max-body-mb)", status=413, param=param, code="request_too_large")
        with os.fdopen(fd, "rb", closefd=False) as file:
            video = file.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(video) > max_bytes:  # grew since fstat
        raise EndpointError(f"{target} is larger than this server's limit of {max_bytes:,} bytes (--max-body-mb)",
                            status=413, param=param, code="request_too_large")
    if not video:
        raise EndpointError(f"{target} is empty: name a video file", param=param, code="invalid_value")
    return video

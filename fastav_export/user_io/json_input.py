"""JSON that users hand us (layout files, checkpoint configs, manifests, request inputs).

Every way such text can be wrong becomes one `FastAVError` line naming what was read:
unreadable file, bytes that are not UTF-8, malformed JSON, nesting deeper than the
parser's recursion limit (json raises RecursionError, not a JSONDecodeError), and the
non-standard constants NaN / Infinity, which Python's json accepts but no number in
our inputs may be.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import FastAVError


def _no_constants(name: str):
    raise ValueError(f"{name} is not a JSON number")


def parse_json(data: str | bytes, what: str):
    """`data` (text, or UTF-8 bytes) parsed as JSON; `what` names it in the error, e.g. "layout file x.json"."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FastAVError(f"{what} is not UTF-8 text (byte {exc.start}): save it as UTF-8 JSON") from None
    try:
        return json.loads(data, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise FastAVError(f"{what} is not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise FastAVError(f"{what} nests JSON lists or objects too deeply to parse") from None
    except ValueError as exc:  # NaN / Infinity (from _no_constants)
        raise FastAVError(f"{what} is not valid JSON ({exc})") from None


def read_json_file(path: str | Path, what: str):
    """The JSON value in file `path`; `what` names the file's role, e.g. "layout file"."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FastAVError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    return parse_json(data, f"{what} {path}")

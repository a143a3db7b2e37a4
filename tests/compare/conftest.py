"""Fixtures of the comparison tests: a writable copy of the tiny engine, and Polygraphy itself."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("polygraphy", reason="Polygraphy is not installed: pip install fastav-export[compare]")

ENGINE_MODEL = "videollama2-tiny"  # 6 layers, K = 3: graphs pre, post_3..post_5, embed


@pytest.fixture
def engine_copy(tiny_engine, tmp_path):
    """A private copy of the session's tiny fp32 engine (tests may modify it)."""
    target = tmp_path / "engines" / f"{ENGINE_MODEL}-fp32"
    shutil.copytree(tiny_engine(ENGINE_MODEL).path, target)
    return target

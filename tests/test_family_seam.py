"""Model families are plug-ins: the layers outside `models/` call the `Family` interface and never ask
which family they hold, and every registered family has its row in the tests' table."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from fastav_export.errors import FastAVError
from fastav_export.models import all_specs
from fastav_export.models.families import (
    family_for_model_type,
    family_of_media_section,
    family_options,
    family_names,
    get_family,
)

from .families import TINY_FAMILIES

PACKAGE = Path(__file__).resolve().parent.parent / "fastav_export"
FAMILY_TEST = re.compile(r"family (==|in\b)")  # the question "which family is this?"
# One family's own packages (models/families/<name>/); the generic modules beside them any layer may use.
FAMILY_PACKAGES = sorted(path.parent.name for path in (PACKAGE / "models" / "families").glob("*/__init__.py"))


def _outside_models() -> list[Path]:
    return [path for path in sorted(PACKAGE.rglob("*.py")) if path.relative_to(PACKAGE).parts[0] != "models"]


def test_no_layer_outside_models_asks_which_family_it_has():
    found = [f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}" for path in _outside_models()
             for number, line in enumerate(path.read_text().splitlines(), 1) if FAMILY_TEST.search(line)]
    assert not found, "\n".join(found)


def test_no_layer_outside_models_imports_a_family_package():
    names = "|".join(FAMILY_PACKAGES)
    by_path = re.compile(rf"families\.({names})\b")
    by_name = re.compile(rf"families import .*\b({names})\b")
    found = [f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}" for path in _outside_models()
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if "import" in line and (by_path.search(line) or by_name.search(line))]
    assert FAMILY_PACKAGES and not found, "\n".join(found)


def test_every_registered_family_has_a_row_in_the_tests_table():
    """A new family joins the shared tests by one row of tests/families.py."""
    assert {case.family for case in TINY_FAMILIES} == set(family_names())
    for case in TINY_FAMILIES:
        assert case.spec.family == case.family and case.spec.is_tiny
    assert {spec.family for spec in all_specs() if spec.has_media} <= set(family_names())


def test_checkpoint_model_types_map_to_their_family():
    assert family_for_model_type("videollama2_qwen2").name == "videollama2"
    assert family_for_model_type("video_salmonn_2").name == "video-salmonn2"
    assert family_for_model_type("qwen2") is None  # a plain decoder: no media path


def test_an_unknown_family_is_one_line():
    with pytest.raises(FastAVError) as caught:
        get_family("no-such-family")
    assert "\n" not in str(caught.value) and "no-such-family" in str(caught.value)


@pytest.mark.parametrize("case", [case for case in TINY_FAMILIES if case.family_flags], ids=lambda case: case.family)
def test_a_family_flag_for_another_familys_model_is_one_line(case):
    parser = argparse.ArgumentParser()
    get_family(case.family).add_options(parser)
    args = parser.parse_args(list(case.family_flags))
    assert family_options(args, case.spec) is not None
    other = next(row for row in TINY_FAMILIES if row.family != case.family)
    with pytest.raises(FastAVError) as caught:
        family_options(args, other.spec)
    message = str(caught.value)
    assert "\n" not in message and case.family_flags[0] in message and f"{case.family} models only" in message
    assert family_options(parser.parse_args([]), case.spec) is None


def test_a_media_section_written_before_the_family_was_recorded_reads_as_its_family():
    old_videollama2 = {"audio": {"features": "fbank"}}
    old_salmonn = {"audio": {"features": "whisper"}, "interleave": {"video_per_frame": 12}}
    assert family_of_media_section(old_videollama2) == "videollama2"
    assert family_of_media_section(old_salmonn) == "video-salmonn2"
    assert family_of_media_section({"family": "video-salmonn2"}) == "video-salmonn2"

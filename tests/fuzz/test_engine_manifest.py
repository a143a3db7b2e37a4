"""Property: any engine manifest (config.json) gives a validated manifest or one FastAVError line.

Manifests are drawn by replacing one or more entries of a real one, at any depth, with
arbitrary JSON, then resealing them (`manifest_sha256` recomputed), so the schema and
consistency checks are what is tested, not only the integrity check. Raw bytes test the
reading and the integrity check.
"""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastav_export.engine.manifest import (
    INTEGRITY,
    MANIFEST,
    load_engine_dir,
    manifest_digest,
    parse_manifest,
)

from .contract import FUZZ, accepts_or_refuses, json_values


@pytest.fixture(scope="module")
def engine(tiny_engine):
    return tiny_engine("videollama2-tiny")


def _paths(value, prefix=()):
    """Every (path of keys/indices) inside a JSON value, the value's own () included."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _replace(data, path, new):
    if not path:
        return new
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return data


@st.composite
def mutated(draw, original: dict):
    data = copy.deepcopy(original)
    paths = [p for p in _paths(data) if p and p[0] != INTEGRITY]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        replacement = draw(st.one_of(json_values, st.sampled_from([0, -1, 10**12, "abc", [], {}, None, True, 1.5])))
        if draw(st.booleans()) and isinstance(data, dict):
            try:
                data = _replace(data, path, replacement)
            except (KeyError, IndexError, TypeError):  # an earlier replacement removed the path
                pass
        elif len(path) >= 1:  # delete the entry instead
            try:
                parent = data
                for key in path[:-1]:
                    parent = parent[key]
                del parent[path[-1]]
            except (KeyError, IndexError, TypeError):
                pass
    if isinstance(data, dict):
        try:
            data[INTEGRITY] = manifest_digest({k: v for k, v in data.items() if k != INTEGRITY})
        except (TypeError, ValueError):  # NaN, infinity or a non-string key, which no JSON file holds: unsealed
            pass
    return data


@FUZZ
@given(data=st.data())
def test_any_sealed_manifest(engine, data):
    original = json.loads((engine.path / MANIFEST).read_text())
    manifest = accepts_or_refuses(lambda: parse_manifest(data.draw(mutated(original)), engine.path))
    if manifest is not None:  # what was accepted is usable by every consumer
        assert manifest.layout.n_tokens <= manifest.max_tokens and manifest.dims.num_layers >= 2
        assert manifest.pruning.validate(manifest.dims.num_layers).global_layer == manifest.global_layer


def _engine_copy(engine, directory):
    """`directory` as an engine directory whose files are links to the built engine's, config.json aside."""
    for file in engine.path.rglob("*"):
        relative = file.relative_to(engine.path)
        if file.is_file() and relative.as_posix() != MANIFEST:
            (directory / relative).parent.mkdir(parents=True, exist_ok=True)
            (directory / relative).symlink_to(file)
    return directory


@st.composite
def config_json_bytes(draw, original: dict) -> tuple[str, bytes]:
    """(how it was made, config.json bytes) near a real manifest: the same content written another way
    (indent, key order, escapes: must load), a resealed mutation, or the real bytes damaged."""
    how = draw(st.sampled_from(["rewritten", "mutated", "damaged"]))
    if how == "mutated":
        content = data_to_text(draw(mutated(original)))
    else:
        content = json.dumps(original, indent=draw(st.sampled_from([None, 0, 2, "\t"])),
                             sort_keys=draw(st.booleans()), ensure_ascii=draw(st.booleans()))
    raw = content.encode()
    if how == "damaged":
        at = draw(st.integers(0, len(raw)))
        cut = draw(st.integers(0, 8))
        raw = raw[:at] + draw(st.binary(max_size=8)) + raw[at + cut:]
    return how, raw


def data_to_text(data) -> str:
    try:
        return json.dumps(data)
    except ValueError:  # NaN or infinity: written as JSON's common extension, which the reader must refuse
        return json.dumps(data, allow_nan=True)


@FUZZ
@given(data=st.data())
def test_any_config_json_bytes(engine, tmp_path_factory, data):
    """Bytes near a real config.json reach the checks behind the integrity seal: the same manifest
    written another way loads, a resealed mutation and damaged bytes load or are one FastAVError line."""
    original = json.loads((engine.path / MANIFEST).read_text())
    how, content = data.draw(config_json_bytes(original))
    directory = _engine_copy(engine, tmp_path_factory.mktemp("engine"))
    (directory / MANIFEST).write_bytes(content)
    manifest = accepts_or_refuses(lambda: load_engine_dir(directory))
    if how == "rewritten":
        assert manifest is not None and manifest.to_json() == load_engine_dir(engine.path).to_json()

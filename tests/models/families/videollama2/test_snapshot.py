"""Loading a VideoLLaMA2-AV snapshot's media parts: real key names, sharded safetensors with an
index, weights-only `.bin` files; refusals name the part or the file."""

from __future__ import annotations

import collections
import fractions

import pytest
import torch

from fastav_export.cli import main
from fastav_export.errors import FastAVError
from fastav_export.models import get_model_spec
from fastav_export.models.families.videollama2.encoders import load_encoders, random_encoders, tiny_shapes
from fastav_export.testing.snapshots import TINY_SIGLIP_DIR, write_tiny_videollama2_av_snapshot

SPEC = get_model_spec("videollama2-tiny")


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    return write_tiny_videollama2_av_snapshot(tmp_path_factory.mktemp("snapshot") / "VideoLLaMA2-tiny-AV", seed=3)


def _same_module(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0, msg=key)


def test_every_part_loads_from_its_file_kind(snapshot):
    loaded = load_encoders(snapshot, SPEC.dims.hidden_size)
    vision, audio = random_encoders(tiny_shapes(SPEC.dims.hidden_size), seed=3)
    _same_module(loaded.vision, vision)
    _same_module(loaded.audio, audio)
    assert set(loaded.sources) == {"vision tower", "vision projector", "audio tower", "audio projector"}
    assert "model-00001-of-00002.safetensors" in loaded.sources["vision tower"]
    assert "audio_tower.bin" in loaded.sources["audio tower"] and "weights_only=True" in loaded.sources["audio tower"]
    assert "mm_projector_a.bin" in loaded.sources["audio projector"]


def test_a_vision_tower_outside_the_shards_loads_from_its_siglip_directory(tmp_path):
    snapshot = write_tiny_videollama2_av_snapshot(tmp_path / "snap", seed=3, vision_tower_in_shards=False)
    loaded = load_encoders(snapshot, SPEC.dims.hidden_size)
    assert TINY_SIGLIP_DIR in loaded.sources["vision tower"]
    _same_module(loaded.vision, random_encoders(tiny_shapes(SPEC.dims.hidden_size), seed=3)[0])


def test_a_pickled_object_in_a_bin_file_is_refused(tmp_path):
    snapshot = write_tiny_videollama2_av_snapshot(tmp_path / "snap")
    # A state dict with one non-tensor object inside: full unpickling would construct it.
    state = collections.OrderedDict(torch.load(snapshot / "audio_tower.bin", weights_only=True))
    state["model.audio_tower.extra"] = fractions.Fraction(1, 3)
    torch.save(state, snapshot / "audio_tower.bin")
    with pytest.raises(FastAVError, match=r"refused audio_tower.bin: .*pickled object.*fractions.Fraction"):
        load_encoders(snapshot, SPEC.dims.hidden_size)


def test_a_snapshot_without_the_audio_tower_is_refused_naming_it(tmp_path, capsys, media_clip):
    snapshot = write_tiny_videollama2_av_snapshot(tmp_path / "snap", audio_tower=False)
    with pytest.raises(FastAVError, match="lacks the audio tower"):
        load_encoders(snapshot, SPEC.dims.hidden_size)
    out = tmp_path / "engine"
    assert main(["build", "--model", SPEC.name, "--checkpoint", str(snapshot), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "audio tower" in err and not out.exists()


@pytest.mark.slow
def test_build_and_run_from_the_snapshot_report_what_was_loaded(snapshot, tmp_path, capsys, media_clip):
    out = tmp_path / "engine"
    assert main(["build", "--model", SPEC.name, "--checkpoint", str(snapshot), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for part in ("vision tower", "vision projector", "audio tower", "audio projector", "tokenizer"):
        assert f"  {part}: " in printed
    argv = ["--video", str(media_clip), "--question", "What is it?", "--max-new-tokens", "4"]
    assert main(["run", str(out), *argv]) == 0
    from_engine = capsys.readouterr().out
    assert main(["run", "--model", SPEC.name, "--checkpoint", str(snapshot), "--backend", "torch", *argv]) == 0
    from_torch = capsys.readouterr().out
    line = [row for row in from_engine.splitlines() if row.startswith("tokens: ")]
    assert line and line == [row for row in from_torch.splitlines() if row.startswith("tokens: ")]
    assert "audio_tower.bin" in from_engine  # the engine keeps the loading report

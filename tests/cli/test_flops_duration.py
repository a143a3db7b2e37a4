"""`flops --duration S`: the layout of an S seconds clip comes from the model's family rule, and the
printout gives that layout and both FLOPs ratios; models with fixed media rows refuse the flag."""

from __future__ import annotations

import pytest

from fastav_export.cli import main
from fastav_export.models.families import layout_for_duration

from ..families import family_cases


def _flops(capsys, *argv) -> tuple[int, str, str]:
    code = main(["flops", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", family_cases(where=lambda case: case.layout_follows_clip))
@pytest.mark.parametrize("seconds", [10.0, 30.0])
def test_duration_prints_the_familys_layout_and_both_ratios(case, seconds, capsys):
    spec = case.full_size_spec
    code, out, err = _flops(capsys, "--model", spec.name, "--duration", str(seconds))
    assert code == 0, err
    expected = layout_for_duration(spec, seconds).layout
    assert f"clip: {seconds:g} s" in out
    assert f"layout: {expected.describe()}" in out
    lines = out.strip().splitlines()
    assert lines[-1].startswith("FLOPs ratio (pruned / dense): paper formula ")
    assert "exact MACs" in lines[-1] and "with early drop" in lines[-1]
    first_layer = next(line for line in lines if line.split()[:1] == ["0"])
    assert int(first_layer.split()[1]) == expected.n_tokens  # layer 0 sees the whole clip's prompt


@pytest.mark.parametrize("case", family_cases(where=lambda case: case.layout_follows_clip))
def test_a_longer_clip_has_more_media_rows(case):
    """The clip's length reaches the layout (not the 30 s default layout whatever the flag says)."""
    spec = case.full_size_spec
    short, long = (layout_for_duration(spec, seconds).layout for seconds in (10.0, 40.0))
    assert short.n_tokens < long.n_tokens


def test_qwen25_omni_30_s_clip_layout(capsys):
    """30 s of 640 x 360 at 2 fps: 60 frames -> a 30 x 26 x 46 patch grid, merged 2 x 2 (8,970 video tokens);
    3,000 mel frames -> 750 audio tokens (transformers' `_get_feat_extract_output_lengths`); 15 chunks of 2 s."""
    import torch
    from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniAudioEncoder

    code, out, _ = _flops(capsys, "--model", "qwen2.5-omni", "--duration", "30")
    assert code == 0
    _, audio_tokens = Qwen2_5OmniAudioEncoder._get_feat_extract_output_lengths(None, torch.tensor(3000))
    assert f"8970 video, {int(audio_tokens)} audio" in out and "15 chunks of 2 s" in out


@pytest.mark.parametrize("case", family_cases(where=lambda case: not case.layout_follows_clip))
def test_duration_is_refused_in_one_line_where_the_media_rows_are_fixed(case, capsys):
    code, _, err = _flops(capsys, "--model", case.full_size_spec.name, "--duration", "30")
    assert code == 2 and err.count("\n") == 1 and "--duration" in err and "fixed" in err


def test_keep_chunks_is_keep_frames_by_its_chunked_name():
    """On Qwen2.5-Omni a layout's frame is a 2 s chunk: --keep-chunks sets the same rule as --keep-frames."""
    from fastav_export.cli import build_parser
    from fastav_export.cli.options import pruning_config_from_args
    from fastav_export.models import get_model_spec

    spec = get_model_spec("qwen2.5-omni")
    configs = [pruning_config_from_args(build_parser().parse_args(["flops", "--model", "qwen2.5-omni", flag, "3"]),
                                        spec, spec.dims.num_layers) for flag in ("--keep-chunks", "--keep-frames")]
    assert configs[0] == configs[1] and configs[0].keep_frames == 3

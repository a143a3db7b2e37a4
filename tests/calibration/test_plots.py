"""The calibration figures: valid PNGs of the expected size, and one clear error without matplotlib."""

from __future__ import annotations

import struct
import sys

import numpy as np
import pytest

from fastav_export.calibration import plots
from fastav_export.contract.layout import Segment, TokenLayout
from fastav_export.errors import FastAVError, MissingDependencyError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LAYOUT = TokenLayout((Segment("text", 4), Segment("video", 9, frame=0), Segment("video", 9, frame=1),
                      Segment("audio", 6), Segment("text", 3)))


def png_size(path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, the first after the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def attention(n: int, rng) -> np.ndarray:
    """[n, n] causal, rows summing to 1 (like one layer's head-mean attention)."""
    weights = np.tril(rng.random((n, n)) ** 4)  # skewed, so the log scale has a range to show
    return weights / weights.sum(axis=1, keepdims=True)


def layer_maps(layers, n: int, seed: int = 0) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """layer -> (A_l, R_l) with R_l the rollout (0.5 A + 0.5 I) products up to layer l."""
    rng = np.random.default_rng(seed)
    rollout = np.eye(n)
    maps = {}
    for layer in range(1, max(layers) + 1):
        a = attention(n, rng)
        rollout = (0.5 * a + 0.5 * np.eye(n)) @ rollout
        if layer in layers:
            maps[layer] = (a, rollout.copy())
    return maps


def test_attention_and_rollout_width_grows_with_layers(tmp_path):
    n = LAYOUT.n_tokens
    # given out of order: columns are sorted by layer
    three = plots.plot_attention_and_rollout({k: v for k, v in reversed(layer_maps([1, 2, 3], n).items())},
                                             LAYOUT, tmp_path / "maps" / "three.png", "sample 0")
    one = plots.plot_attention_and_rollout(layer_maps([2], n), LAYOUT, tmp_path / "maps" / "one.png", "sample 0")
    assert three == tmp_path / "maps" / "three.png"
    (w3, h3), (w1, h1) = png_size(three), png_size(one)
    assert h1 > 0 and h3 > 0 and abs(h3 - h1) <= 2
    assert abs(w3 - 3 * w1) <= 3, (w1, w3)
    assert abs(w1 - plots.COLUMN_INCHES * plots.DPI) <= 2  # about 4 inches per column at dpi 100


def test_importance_plot(tmp_path):
    n = LAYOUT.n_tokens
    rng = np.random.default_rng(1)
    importance = np.exp(-np.arange(n) / 3.0) + 1e-5 * rng.random(n)  # spans orders of magnitude: log axis
    kept = LAYOUT.candidate_mask() & (np.arange(n) < 15)
    out = plots.plot_importance(importance, LAYOUT, tmp_path / "deep" / "dir" / "importance.png", "mean importance",
                                kept=kept, cutoff=15)
    width, height = png_size(out)
    assert (width, height) == (plots.IMPORTANCE_INCHES[0] * plots.DPI, plots.IMPORTANCE_INCHES[1] * plots.DPI)
    # without the optional parts, and with a flat (linear-scale) curve
    bare = plots.plot_importance(np.full(n, 0.5), LAYOUT, tmp_path / "bare.png", "flat")
    assert png_size(bare)[1] > 0


def test_one_file_per_call(tmp_path):
    n = LAYOUT.n_tokens
    maps = layer_maps([1, 2, 3], n)
    for layer in maps:
        plots.plot_attention_and_rollout({layer: maps[layer]}, LAYOUT, tmp_path / f"layer{layer}.png", "x")
    plots.plot_attention_and_rollout(maps, LAYOUT, tmp_path / "all.png", "x")
    plots.plot_importance(maps[3][1].sum(axis=0) / n, LAYOUT, tmp_path / "importance.png", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.png", "importance.png", "layer1.png", "layer2.png",
                                                         "layer3.png"]


def test_no_figures_left_open(tmp_path):
    """The figures never pass through pyplot, so none stay in its registry."""
    pyplot = pytest.importorskip("matplotlib.pyplot")
    before = pyplot.get_fignums()
    plots.plot_attention_and_rollout(layer_maps([1], LAYOUT.n_tokens), LAYOUT, tmp_path / "a.png", "x")
    plots.plot_importance(np.ones(LAYOUT.n_tokens), LAYOUT, tmp_path / "b.png", "x")
    assert pyplot.get_fignums() == before


@pytest.mark.parametrize("bad", ["no layers", "wrong size", "importance", "kept"])
def test_shape_errors_are_one_line(tmp_path, bad):
    n = LAYOUT.n_tokens
    with pytest.raises(FastAVError, match="layer|tokens") as info:
        if bad == "no layers":
            plots.plot_attention_and_rollout({}, LAYOUT, tmp_path / "x.png", "x")
        elif bad == "wrong size":
            plots.plot_attention_and_rollout(layer_maps([1], n + 1), LAYOUT, tmp_path / "x.png", "x")
        elif bad == "importance":
            plots.plot_importance(np.ones(n - 1), LAYOUT, tmp_path / "x.png", "x")
        else:
            plots.plot_importance(np.ones(n), LAYOUT, tmp_path / "x.png", "x", kept=np.ones(n + 2, bool))
    assert "\n" not in str(info.value)
    assert not (tmp_path / "x.png").exists()


def test_missing_matplotlib_is_one_clear_error(tmp_path, monkeypatch):
    # None in sys.modules makes `import matplotlib` raise ImportError, as if it were not installed
    # (its submodules may stay cached: the check must still notice).
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependencyError, match=r"fastav-export\[plots\]") as info:
        plots.check_plots_available()
    assert "\n" not in str(info.value) and "matplotlib" in str(info.value)
    with pytest.raises(MissingDependencyError, match=r"fastav-export\[plots\]"):
        plots.plot_importance(np.ones(LAYOUT.n_tokens), LAYOUT, tmp_path / "x.png", "x")
    assert not (tmp_path / "x.png").exists()


def test_check_plots_available_passes_when_a_plot_can_be_drawn(tmp_path):
    """With matplotlib importable the check passes, and what it promises holds: a PNG is written."""
    pytest.importorskip("matplotlib")
    assert plots.check_plots_available() is None
    out = plots.plot_importance(np.ones(LAYOUT.n_tokens), LAYOUT, tmp_path / "x.png", "x")
    assert min(png_size(out)) > 0


def test_kind_spans_merge_frames():
    assert plots.kind_spans(LAYOUT) == [("text", 0, 4), ("video", 4, 22), ("audio", 22, 28), ("text", 28, 31)]

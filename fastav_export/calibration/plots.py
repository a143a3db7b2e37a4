"""Figures for `fastav-export calibrate --plots`: FastAV's Figure 2 for one sample, and the
mean importance per position with the rule chosen from it.

* `plot_attention_and_rollout`: per layer, the head-mean attention A_l (top) and the rollout
  R_l (bottom). Rollout concentrates on the earliest tokens from the middle layers on, while raw
  attention shows no clear pattern (arXiv 2601.13143, Figure 2).
* `plot_importance`: the mean rollout importance per position, the candidates the rule keeps
  and its cutoff.

matplotlib is optional (the `plots` extra): it is imported on first use, and
`check_plots_available` lets the CLI fail in one line before any model runs. The figures are
drawn with the object API on the Agg canvas, never through pyplot: no global backend switch
in the caller's process (a notebook keeps its own), and no figure left in pyplot's registry.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..contract.layout import AUDIO, KINDS, TEXT, VIDEO, TokenLayout
from ..errors import FastAVError, MissingDependencyError

MISSING_MESSAGE = "matplotlib is not installed: `pip install fastav-export[plots]` (--plots needs it)"
KIND_COLOURS = {TEXT: "tab:gray", VIDEO: "tab:blue", AUDIO: "tab:orange"}
# Attention weights span many orders of magnitude and are 0 above the diagonal: a log scale
# floored here shows the structure without log(0).
LOG_FLOOR = 1e-6
DPI = 100
COLUMN_INCHES, MAP_HEIGHT_INCHES = 4.0, 8.0
IMPORTANCE_INCHES = (10.0, 4.0)
# Bands on the matrix axes, as a fraction of the axes: thin enough to leave the map readable.
BAND_FRACTION = 0.025
# Importance spanning at least this ratio (max / smallest positive) is drawn on a log y-axis.
LOG_SPAN = 100.0


# ---- optional dependency ----------------------------------------------------------------

def _matplotlib():
    """(matplotlib, Figure, FigureCanvasAgg, LogNorm, Patch), or MissingDependencyError."""
    try:
        # The top-level package first: its submodules may still sit in sys.modules after it was
        # uninstalled or blocked, and importing them alone would not notice.
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.colors import LogNorm
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
    except ImportError:
        raise MissingDependencyError(MISSING_MESSAGE) from None
    return matplotlib, Figure, FigureCanvasAgg, LogNorm, Patch


def check_plots_available() -> None:
    """Raise MissingDependencyError (one line, naming `fastav-export[plots]`) if matplotlib is
    missing; plots nothing. The CLI calls it before any work."""
    _matplotlib()


# ---- layout helpers ---------------------------------------------------------------------

def kind_spans(layout: TokenLayout) -> list[tuple[str, int, int]]:
    """[(kind, start, end)]: the layout's runs of one kind, end exclusive; consecutive segments of
    one kind (the frames of a video) merge into one run."""
    spans: list[tuple[str, int, int]] = []
    start = 0
    for seg in layout.segments:
        end = start + seg.length
        if spans and spans[-1][0] == seg.kind:
            spans[-1] = (seg.kind, spans[-1][1], end)
        else:
            spans.append((seg.kind, start, end))
        start = end
    return spans


def _segment_starts(layout: TokenLayout) -> list[int]:
    """Start position of every segment but the first (frame and kind boundaries)."""
    starts = np.cumsum([seg.length for seg in layout.segments])[:-1]
    return [int(s) for s in starts]


def _legend_handles(layout: TokenLayout, Patch) -> list:
    """One patch per kind present in the layout, in KINDS order."""
    present = {seg.kind for seg in layout.segments}
    return [Patch(color=KIND_COLOURS[k], alpha=0.6, label=k) for k in KINDS if k in present]


def _prepare(path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _save(fig, canvas_class, path: Path) -> Path:
    canvas_class(fig)  # attaches itself to fig: savefig renders with Agg, no GUI backend involved
    fig.savefig(path, dpi=DPI, format="png")
    fig.clear()  # drop the artists now: a map of a long prompt holds large image buffers
    return path


# ---- attention and rollout maps ---------------------------------------------------------

def _check_maps(maps: dict, n_tokens: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """[(layer, A [N, N], R [N, N])] in ascending layer order, as float64; FastAVError if empty or
    a matrix is not [N, N] for the layout."""
    if not maps:
        raise FastAVError("no layers to plot: give at least one layer's attention and rollout maps")
    out = []
    for layer in sorted(maps):
        attention, rollout = (np.asarray(m, dtype=np.float64) for m in maps[layer])
        for name, matrix in (("attention", attention), ("rollout", rollout)):
            if matrix.shape != (n_tokens, n_tokens):
                raise FastAVError(f"the {name} map of layer {layer} has shape {matrix.shape} but the layout has "
                                  f"{n_tokens} tokens: expected ({n_tokens}, {n_tokens})")
        out.append((layer, attention, rollout))
    return out


def _log_norm(matrices: list[np.ndarray], LogNorm):
    """A LogNorm from LOG_FLOOR to the largest entry of `matrices`, shared by one row of panels so
    the layers compare by colour."""
    top = max(float(np.nanmax(m)) if m.size else 0.0 for m in matrices)
    return LogNorm(vmin=LOG_FLOOR, vmax=max(top, LOG_FLOOR * 10))


def _mark_kinds_on_matrix(ax, layout: TokenLayout) -> None:
    """Kind bands along the bottom (keys) and left (queries) edges, white lines where the kind
    changes, and minor ticks at every segment (frame) boundary."""
    for kind, start, end in kind_spans(layout):
        colour = KIND_COLOURS[kind]
        # imshow puts pixel i at [i - 0.5, i + 0.5]
        ax.axvspan(start - 0.5, end - 0.5, ymin=0.0, ymax=BAND_FRACTION, color=colour, lw=0)
        ax.axhspan(start - 0.5, end - 0.5, xmin=0.0, xmax=BAND_FRACTION, color=colour, lw=0)
        if start > 0:
            ax.axvline(start - 0.5, color="white", lw=0.6, alpha=0.8)
            ax.axhline(start - 0.5, color="white", lw=0.6, alpha=0.8)
    boundaries = [s - 0.5 for s in _segment_starts(layout)]
    ax.set_xticks(boundaries, minor=True)
    ax.set_yticks(boundaries, minor=True)
    ax.tick_params(which="minor", length=3, color="black")


def _draw_matrix(ax, matrix: np.ndarray, norm, layout: TokenLayout, title: str):
    """One [N, N] map on a log colour scale, zeros shown at the floor; returns the image."""
    image = ax.imshow(np.maximum(matrix, LOG_FLOOR), norm=norm, cmap="viridis", interpolation="nearest",
                      aspect="equal")
    _mark_kinds_on_matrix(ax, layout)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("key position")
    ax.set_ylabel("query position")
    return image


def plot_attention_and_rollout(maps: dict[int, tuple[np.ndarray, np.ndarray]], layout: TokenLayout, path: Path,
                               title: str) -> Path:
    """One PNG: a column per layer (ascending), attention A_l on top and rollout R_l below.

    maps: layer -> (A_l [N, N] head-mean attention, R_l [N, N] rollout product up to and including
    layer l), N = layout.n_tokens. Figure 4 x 8 inches per column at DPI, so its width is
    proportional to the number of layers. Returns `path` (its directory is created).
    """
    _, Figure, FigureCanvasAgg, LogNorm, Patch = _matplotlib()
    panels = _check_maps(maps, layout.n_tokens)
    path = _prepare(path)
    n_cols = len(panels)
    fig = Figure(figsize=(COLUMN_INCHES * n_cols, MAP_HEIGHT_INCHES), dpi=DPI, layout="constrained")
    axes = fig.subplots(2, n_cols, squeeze=False)
    for row, (label, index) in enumerate((("attention A", 1), ("rollout R", 2))):
        norm = _log_norm([panel[index] for panel in panels], LogNorm)
        for col, panel in enumerate(panels):
            layer = panel[0]
            image = _draw_matrix(axes[row, col], panel[index], norm, layout, f"{label}_{layer} (layer {layer})")
        # one colour bar per row: the row's panels share its norm
        fig.colorbar(image, ax=list(axes[row, :]), shrink=0.8, label="log scale")
    fig.legend(handles=_legend_handles(layout, Patch), loc="outside lower center", ncols=len(KINDS),
               fontsize=9)
    fig.suptitle(title)
    return _save(fig, FigureCanvasAgg, path)


# ---- importance per position ------------------------------------------------------------

def _check_vector(values: np.ndarray, n_tokens: int, name: str) -> np.ndarray:
    values = np.asarray(values)
    if values.shape != (n_tokens,):
        raise FastAVError(f"{name} has shape {values.shape} but the layout has {n_tokens} tokens: "
                          f"expected ({n_tokens},)")
    return values


def _wants_log_scale(importance: np.ndarray) -> bool:
    """True when the positive values span LOG_SPAN or more (rollout importance usually does: the
    first tokens hold most of it)."""
    positive = importance[np.isfinite(importance) & (importance > 0)]
    return positive.size > 1 and float(positive.max()) / float(positive.min()) >= LOG_SPAN


def plot_importance(importance: np.ndarray, layout: TokenLayout, path: Path, title: str,
                    kept: np.ndarray | None = None, cutoff: int | None = None) -> Path:
    """One PNG of the mean importance per position.

    importance: [N] float, N = layout.n_tokens; kept: [N] bool, the candidates the rule keeps
    (marked on the curve and as a strip along the bottom); cutoff: the rule's cutoff position
    (candidates before it are kept), drawn as a vertical line labelled "cutoff". Background bands
    show the text/video/audio spans. Returns `path` (its directory is created).
    """
    _, Figure, FigureCanvasAgg, _, Patch = _matplotlib()
    n_tokens = layout.n_tokens
    importance = _check_vector(importance, n_tokens, "the importance").astype(np.float64)
    if kept is not None:
        kept = _check_vector(kept, n_tokens, "the kept mask").astype(bool)
    path = _prepare(path)
    fig = Figure(figsize=IMPORTANCE_INCHES, dpi=DPI, layout="constrained")
    ax = fig.subplots()
    for kind, start, end in kind_spans(layout):
        ax.axvspan(start - 0.5, end - 0.5, color=KIND_COLOURS[kind], alpha=0.15, lw=0)
    positions = np.arange(n_tokens)
    handles = _legend_handles(layout, Patch)
    (line,) = ax.plot(positions, importance, color="black", lw=0.8, label="mean importance")
    handles.append(line)
    if _wants_log_scale(importance):
        ax.set_yscale("log")  # non-positive values are left out of a log axis, not an error
    if kept is not None and kept.any():
        handles.append(ax.scatter(positions[kept], importance[kept], s=8, color="tab:red", zorder=3,
                                  label=f"kept ({int(kept.sum())})"))
        # a strip along the bottom edge, readable even where the curve is off the log axis
        ax.vlines(positions[kept], 0.0, BAND_FRACTION * 2, transform=ax.get_xaxis_transform(), color="tab:red",
                  lw=1.0)
    if cutoff is not None:
        x = cutoff - 0.5  # between the last position kept by the cutoff and the first one dropped
        handles.append(ax.axvline(x, color="tab:red", ls="--", lw=1.2, label=f"cutoff ({cutoff})"))
        ax.text(x, 0.97, " cutoff", transform=ax.get_xaxis_transform(), color="tab:red", va="top", fontsize=9)
    ax.set_xlim(-0.5, n_tokens - 0.5)
    ax.set_xlabel("position")
    ax.set_ylabel("mean rollout importance")
    ax.legend(handles=handles, loc="upper right", fontsize=8)
    ax.set_title(title)
    return _save(fig, FigureCanvasAgg, path)

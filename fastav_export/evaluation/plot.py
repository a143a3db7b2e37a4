"""accuracy_vs_flops.png: each policy's accuracy (with its 95 % interval) against its FLOPs ratio.

matplotlib is the `plots` extra; without it the figure is skipped with a note, since the numbers
are all in summary.json. Drawn on the Agg canvas with the object API, as calibrate's figures are.
"""

from __future__ import annotations

from pathlib import Path

from ..user_io.output_paths import atomic_file

DPI = 100
INCHES = (6.0, 4.0)


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot_accuracy_vs_flops(summary: dict, path: Path, title: str) -> Path | None:
    """Write the figure of `summary` (scoring.summarize's) to `path`; None (nothing written) without
    matplotlib or without a policy that has an accuracy."""
    if not matplotlib_available():
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = [(name, row) for name, row in summary["policies"].items()
              if row["accuracy"] is not None and row["flops_ratio"] is not None]
    if not points:
        return None
    fig = Figure(figsize=INCHES, dpi=DPI, layout="constrained")
    axes = fig.add_subplot()
    for name, row in points:
        low, high = row["ci95"]
        accuracy = row["accuracy"]
        axes.errorbar([row["flops_ratio"]], [accuracy], yerr=[[accuracy - low], [high - accuracy]], fmt="o",
                      capsize=3, label=name)
    axes.legend(fontsize=8, loc="best")  # a legend, not labels at the points: nearby policies overlap
    axes.set_xlabel("decoder FLOPs, pruned / dense (the paper's formula)")
    axes.set_ylabel("accuracy (95 % bootstrap interval)")
    axes.set_xlim(0.0, 1.05)
    axes.set_ylim(-0.05, 1.05)
    axes.grid(True, alpha=0.3)
    axes.set_title(title, fontsize=9)
    FigureCanvasAgg(fig)
    with atomic_file(path) as temporary:
        fig.savefig(temporary, dpi=DPI, format="png")
    return path

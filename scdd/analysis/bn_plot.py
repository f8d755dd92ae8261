"""The bn-stats figure, in the style of the paper's Fig. 4.

Top row: the running mean (left) and running variance (right) of one BN layer against the channel
index, one line per checkpoint, with a small table of each checkpoint's variance across channels
inside each panel. Bottom row: the channel variance of the running means (Table 2's "BN-mean Var")
and the mean Gaussian entropy of Eq. 7, layer by layer.
"""

from __future__ import annotations

from pathlib import Path

from scdd.analysis.bn_stats import CheckpointBNStats
from scdd.artifacts import atomic_path
from scdd.errors import ConfigError
from scdd.plotting import pyplot


def plot_bn_stats(results: list[CheckpointBNStats], path: str | Path, layer: str | int = 0) -> Path:
    """Save the figure to ``path`` (format from its suffix: png, pdf, svg); ``layer`` picks the top row's layer."""
    path = Path(path)
    chosen = [(result, result.layer(layer)) for result in results]
    present = [(result, stats) for result, stats in chosen if stats is not None]
    if not present:
        raise ConfigError(f"no checkpoint has a BN layer {layer!r}; give an index (0 = first) or a layer name")
    plt = pyplot()
    figure, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    for column, (attribute, title, variance_of) in enumerate(
        (("running_means", "running mean", "mean_variance"), ("running_vars", "running variance", "var_variance"))
    ):
        axis = axes[0][column]
        rows = []
        for result, stats in present:
            values = getattr(result, attribute)[stats.name]
            axis.plot(range(len(values)), values.numpy(), linewidth=1, label=result.label)
            rows.append([result.label, f"{getattr(stats, variance_of):.3g}"])
        names = sorted({stats.name for _, stats in present})
        axis.set_title(f"{title} of BN layer {', '.join(names)}")
        axis.set_xlabel("channel index")
        axis.set_ylabel(title)
        table = axis.table(cellText=rows, colLabels=["checkpoint", "Var over channels"], loc="upper right", colLoc="left", cellLoc="left")
        table.auto_set_font_size(False)
        table.set_fontsize(7)
        table.auto_set_column_width([0, 1])
    for column, (attribute, title, log_scale) in enumerate(
        (("mean_variance", "Var over channels of running mean", True), ("entropy", "mean Gaussian entropy ½·log(2πeσ²)", False))
    ):
        axis = axes[1][column]
        for result in results:
            axis.plot(
                [s.index for s in result.layers],
                [getattr(s, attribute) for s in result.layers],
                marker="o",
                markersize=3,
                linewidth=1,
                label=result.label,
            )
        if log_scale:
            axis.set_yscale("log")
        axis.set_title(title)
        axis.set_xlabel("BN layer k (forward order)")
    axes[1][0].legend(fontsize=8)
    missing = [result.label for result, stats in chosen if stats is None]
    if missing:
        figure.text(0.01, 0.01, f"no BN layer {layer!r} in: {', '.join(missing)}", fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip(".").lower() or "png", dpi=110)
    plt.close(figure)
    return path

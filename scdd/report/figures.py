"""The report's pictures as PNG bytes: class grids of distilled images, the recovery loss
trajectories (Fig. 5), the clustering scatter (Fig. 7) and the squeeze objective per epoch."""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.utils import make_grid

from scdd.plotting import figure_png, pyplot
from scdd.report.clustering import Clustering

THUMBNAIL = 96  # target side of one image in a class grid, in screen pixels
GRID_COLUMNS = 10


def class_grid_png(images: torch.Tensor) -> bytes:
    """One class's images (float pixels in [0, 1], ``[N, C, H, W]``) as a PNG grid, scaled to about
    ``THUMBNAIL`` pixels per image (nearest-neighbour up, area-averaged down)."""
    size = images.shape[-1]
    if size > THUMBNAIL:
        images = F.interpolate(images, size=(THUMBNAIL, THUMBNAIL), mode="area")
    elif size < THUMBNAIL:
        factor = max(1, THUMBNAIL // size)
        images = images.repeat_interleave(factor, dim=-1).repeat_interleave(factor, dim=-2)
    grid = make_grid(images.clamp(0, 1), nrow=min(GRID_COLUMNS, len(images)), padding=2, pad_value=1.0)
    array = (grid * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if images.shape[1] == 1:
        array = array[:, :, 0]
    elif array.shape[2] != 3:
        array = array[:, :, :3]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def trajectory_png(loss_ce: torch.Tensor, loss_bn: torch.Tensor) -> bytes:
    """Fig. 5: L_BN (left, log scale) and L_CE (right) per recovery iteration, mean over batches
    with the range over batches shaded."""
    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for axis, values, title, log_scale in ((axes[0], loss_bn, "L_BN (Eq. 8)", True), (axes[1], loss_ce, "L_CE", False)):
        values = values.double()
        steps = np.arange(1, values.shape[1] + 1)
        axis.plot(steps, values.mean(0).numpy(), linewidth=1.2, label="mean over batches")
        if values.shape[0] > 1:
            axis.fill_between(steps, values.min(0).values.numpy(), values.max(0).values.numpy(), alpha=0.25, label="range")
            axis.legend(fontsize=8)
        if log_scale and bool((values > 0).all()):
            axis.set_yscale("log")
        axis.set_title(title)
        axis.set_xlabel("recovery iteration")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure_png(figure)


def cluster_png(clustering: Clustering) -> bytes:
    """Fig. 7: the PCA coordinates in 3-D, coloured by class, marker by k-means cluster."""
    plt = pyplot()
    figure = plt.figure(figsize=(6.2, 5))
    points = np.zeros((len(clustering.labels), 3))
    points[:, : clustering.coordinates.shape[1]] = clustering.coordinates
    axis = figure.add_subplot(projection="3d")
    markers = "o^sPXD*v<>"
    colours = plt.get_cmap("tab10")
    for position, (index, name) in enumerate(zip(clustering.class_indices, clustering.class_names, strict=False)):
        for cluster in np.unique(clustering.clusters):
            chosen = (clustering.labels == index) & (clustering.clusters == cluster)
            if chosen.any():
                axis.scatter(
                    points[chosen, 0],
                    points[chosen, 1],
                    points[chosen, 2],
                    color=colours(position % 10),
                    marker=markers[cluster % len(markers)],
                    s=28,
                    label=f"class {name}, cluster {cluster}",
                )
    axis.set_xlabel("PC 1")
    axis.set_ylabel("PC 2")
    axis.set_zlabel("PC 3")
    axis.set_title(f"PCA + k-means, ARI {clustering.adjusted_rand_index:.2f}", fontsize=10)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return figure_png(figure)


def squeeze_curve_png(loss_per_epoch: list[float], pretrainer: str) -> bytes:
    """The squeeze objective's mean loss per epoch."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(5, 3))
    axis.plot(range(1, len(loss_per_epoch) + 1), loss_per_epoch, marker="o", markersize=3)
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss")
    axis.set_title(f"squeeze objective ({pretrainer})", fontsize=10)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure_png(figure)

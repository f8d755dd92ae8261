"""Synthetic-image clustering (Sec. 3.4, Fig. 7): PCA of the pixels to three dimensions, then k-means.

With one cluster per chosen class, the agreement between k-means clusters and class labels
(adjusted Rand index, purity) says how well the classes' synthetic images separate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from scdd.errors import ConfigError

DEFAULT_CLASS_COUNT = 3  # Fig. 7 shows three classes


@dataclass
class Clustering:
    """PCA coordinates and k-means assignments of the chosen classes' synthetic images."""

    class_indices: list[int]
    class_names: list[str]
    coordinates: np.ndarray  # [N, 3] (fewer columns when there are fewer images)
    labels: np.ndarray  # [N] class index of each image
    clusters: np.ndarray  # [N] k-means cluster of each image
    explained_variance: list[float]  # PCA explained-variance ratio per component
    adjusted_rand_index: float
    purity: float


def choose_classes(spec: str, class_names: tuple[str, ...]) -> list[int]:
    """Class indices from ``"a,b,c"`` (class names or indices); empty means the first three classes."""
    if not spec.strip():
        return list(range(min(DEFAULT_CLASS_COUNT, len(class_names))))
    chosen = []
    for item in (part.strip() for part in spec.split(",") if part.strip()):
        if item in class_names:
            chosen.append(class_names.index(item))
        elif item.isdigit() and int(item) < len(class_names):
            chosen.append(int(item))
        else:
            listing = ", ".join(class_names[:20]) + (", ..." if len(class_names) > 20 else "")
            raise ConfigError(f"report: no class {item!r}; classes are {listing} (or indices 0-{len(class_names) - 1})")
    return list(dict.fromkeys(chosen))


def cluster_images(
    images: torch.Tensor, labels: torch.Tensor, class_indices: list[int], class_names: tuple[str, ...], seed: int
) -> Clustering:
    """PCA (3 components) of the flattened pixels of the chosen classes, then k-means with one cluster per class."""
    # lazy: scikit-learn is slow to import and only the report's clustering plot needs it
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import adjusted_rand_score

    if len(class_indices) < 2:
        raise ConfigError("report: clustering needs at least two classes")
    mask = torch.isin(labels, torch.tensor(class_indices))
    pixels = images[mask].flatten(1).double().numpy()
    truth = labels[mask].numpy()
    if len(truth) <= len(class_indices):
        raise ConfigError(f"report: {len(truth)} synthetic images in the chosen classes; clustering needs more than {len(class_indices)}")
    pca = PCA(n_components=min(3, len(truth), pixels.shape[1]), random_state=seed)
    coordinates = pca.fit_transform(pixels)
    clusters = KMeans(n_clusters=len(class_indices), n_init=10, random_state=seed).fit_predict(coordinates)
    return Clustering(
        class_indices=list(class_indices),
        class_names=[class_names[i] for i in class_indices],
        coordinates=coordinates,
        labels=truth,
        clusters=clusters,
        explained_variance=[float(v) for v in pca.explained_variance_ratio_],
        adjusted_rand_index=float(adjusted_rand_score(truth, clusters)),
        purity=cluster_purity(truth, clusters),
    )


def cluster_purity(truth: np.ndarray, clusters: np.ndarray) -> float:
    """Fraction of images whose cluster's majority class is their own class."""
    total = 0
    for cluster in np.unique(clusters):
        members = truth[clusters == cluster]
        total += np.bincount(members).max()
    return float(total / len(truth))

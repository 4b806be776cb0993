"""The statistics LeRobot (0.4.4, ``lerobot/datasets/compute_stats.py``) stores per episode and in meta/stats.json.

Per feature: min, max, mean, std, count and the quantiles q01 q10 q50 q90 q99, the quantiles read off a
5000-bin histogram spanning [min - 1e-10, max + 1e-10] with linear interpolation inside the bin (not
``np.quantile``). Vectors: per dimension over the episode's frames, in the array's own dtype. Images: per
channel over up to 100 evenly spaced frames of the episode (``n ** 0.75`` of them for longer ones, at most
10000), each subsampled by ``int(max side / 150)`` when its larger side is 300 px or more, scaled to [0, 1], shape
(3, 1, 1); ``count`` is the number of frames used. Episodes aggregate with count weights: mean, pooled variance,
and the quantiles as count-weighted means of the episodes' quantiles.

One difference, on purpose: LeRobot 0.4.4 squares the uint8 pixels without widening them, so its per-episode
image ``std`` comes out 0 (and the aggregated one is only the spread of the episode means); the image std here is
the true one. Training with ImageNet statistics for images (LeRobot's default) does not read it.
"""

from __future__ import annotations

import numpy as np

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS = tuple(f"q{int(q * 100):02d}" for q in QUANTILES)
BINS = 5000


def _quantile(hist: np.ndarray, edges: np.ndarray, target: float) -> float:
    cumsum = np.cumsum(hist)
    idx = int(np.searchsorted(cumsum, target))
    if idx == 0:
        return float(edges[0])
    if idx >= len(cumsum):
        return float(edges[-1])
    before = cumsum[idx - 1]
    inside = cumsum[idx] - before
    if inside == 0:
        return float(edges[idx])
    return float(edges[idx] + (target - before) / inside * (edges[idx + 1] - edges[idx]))


def _pixel_stats(pixels: np.ndarray) -> dict[str, np.ndarray]:
    """``vector_stats`` of (n, 3) uint8 pixels from each channel's 256-value counts (same numbers, ~10x faster)."""
    n = len(pixels)
    values = np.arange(256, dtype=np.float64)
    counts = [np.bincount(pixels[:, c], minlength=256) for c in range(pixels.shape[1])]
    lo = np.array([np.flatnonzero(c)[0] for c in counts], np.uint8)
    hi = np.array([np.flatnonzero(c)[-1] for c in counts], np.uint8)
    mean = np.array([c @ values / n for c in counts])
    std = np.sqrt(np.maximum(0, np.array([c @ values**2 / n for c in counts]) - mean**2))
    stats = {"min": lo, "max": hi, "mean": mean, "std": std, "count": np.array([n])}
    per_column = []
    for i, c in enumerate(counts):
        edges = np.linspace(lo[i] - 1e-10, hi[i] + 1e-10, BINS + 1)
        hist, _ = np.histogram(values, bins=edges, weights=c)
        per_column.append([_quantile(hist, edges, q * n) for q in QUANTILES])
    for j, key in enumerate(QUANTILE_KEYS):
        stats[key] = np.array(per_column)[:, j]
    return stats


def vector_stats(rows: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics of (n, d) rows (n >= 2) per column, as LeRobot computes them for one episode."""
    rows = rows.reshape(len(rows), -1)
    if rows.dtype == np.uint8:
        return _pixel_stats(rows)
    n = len(rows)
    lo, hi = rows.min(axis=0), rows.max(axis=0)
    mean = np.mean(rows, axis=0)
    mean_sq = np.mean(rows**2, axis=0)
    std = np.sqrt(np.maximum(0, mean_sq - mean**2))
    stats = {"min": lo, "max": hi, "mean": mean, "std": std, "count": np.array([n])}
    per_column = []
    for i in range(rows.shape[1]):
        edges = np.linspace(lo[i] - 1e-10, hi[i] + 1e-10, BINS + 1)
        hist, _ = np.histogram(rows[:, i], bins=edges)
        per_column.append([_quantile(hist, edges, q * n) for q in QUANTILES])
    values = np.array(per_column).reshape(rows.shape[1], len(QUANTILES))
    for j, key in enumerate(QUANTILE_KEYS):
        stats[key] = values[:, j]
    return stats


def scalar_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics of a per-frame scalar (timestamp, indices): each array of shape (1,)."""
    return {k: np.atleast_1d(v) for k, v in vector_stats(np.asarray(values).reshape(-1, 1)).items()}


def sample_indices(n: int) -> np.ndarray:
    """The frames whose pixels enter an episode's image statistics."""
    count = max(min(100, n), min(int(n**0.75), 10_000))
    return np.round(np.linspace(0, n - 1, count)).astype(int)


def image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel statistics in [0, 1] of (n, H, W, 3) uint8 frames, shape (3, 1, 1); count = frames used."""
    picked = frames[sample_indices(len(frames))]
    height, width = picked.shape[1:3]
    if max(height, width) >= 300:
        step = int(width / 150) if width > height else int(height / 150)
        picked = picked[:, ::step, ::step]
    stats = vector_stats(picked.reshape(-1, 3))
    out = {k: (v.reshape(3, 1, 1) / 255.0) for k, v in stats.items() if k != "count"}
    out["count"] = np.array([len(picked)])
    return out


def aggregate(episodes: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One feature's statistics over several episodes (LeRobot's ``aggregate_feature_stats``)."""
    means = np.stack([s["mean"] for s in episodes])
    variances = np.stack([s["std"] ** 2 for s in episodes])
    counts = np.stack([s["count"] for s in episodes])
    total = counts.sum(axis=0)
    while counts.ndim < means.ndim:
        counts = np.expand_dims(counts, -1)
    mean = (means * counts).sum(axis=0) / total
    variance = ((variances + (means - mean) ** 2) * counts).sum(axis=0) / total
    out = {"min": np.min(np.stack([s["min"] for s in episodes]), axis=0),
           "max": np.max(np.stack([s["max"] for s in episodes]), axis=0),
           "mean": mean, "std": np.sqrt(variance), "count": total}
    for key in QUANTILE_KEYS:
        out[key] = (np.stack([s[key] for s in episodes]) * counts).sum(axis=0) / total
    return out

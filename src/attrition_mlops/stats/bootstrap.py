"""Stratified bootstrap resampling and the Mann–Whitney AUC of many resamples at once.

The pure statistics both the champion/challenger gate (:mod:`attrition_mlops.gate.bootstrap`) and
realized performance monitoring (:mod:`attrition_mlops.monitoring.performance`) use. The two
stages may not import each other, so the shared math sits here, below both.

Why stratified. A sample of a few hundred rows with ~16 % positives can, by chance, resample
very few positives, which inflates the spread of AUC for reasons unrelated to the model. Every
resample therefore draws exactly ``n_pos`` rows with replacement from the positives and
``n_neg`` from the negatives, as the sample itself has.

How AUC is computed for all resamples at once. AUC is the Mann–Whitney statistic: the share of
(positive, negative) pairs the score orders correctly, a tie counting ½, which is exactly what
``sklearn.metrics.roc_auc_score`` returns. The scores are ranked once into groups of equal
value. For a resample, let ``pos_g``/``neg_g`` be how many drawn positives/negatives fall in
group ``g``; then ``AUC = Σ_g pos_g · (neg_below_g + ½·neg_g) / (n_pos · n_neg)`` where
``neg_below_g`` is the cumulative count of negatives in lower groups. One ``bincount`` over
``(resample, label, group)`` keys gives the counts of a whole chunk of resamples, and a cumulative
sum along the groups finishes it: no Python loop over resamples, memory O(chunk · n). Counts are
integers, so the numerator is exact and the only rounding is the final division.
"""

from __future__ import annotations

import numpy as np

#: Elements (resamples × rows) handled per chunk: ~32 MB per int64 array, a few arrays live at
#: once, so a 100k-row sample stays in the low hundreds of MB whatever B is.
CHUNK_ELEMENTS = 1 << 22


def as_labels(y: np.ndarray) -> np.ndarray:
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"y must be a non-empty 1-D array, got shape {labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("y must contain only 0/1 (or boolean) labels")
    labels = labels.astype(np.int64)
    n_pos = int(labels.sum())
    if n_pos == 0 or n_pos == labels.size:
        raise ValueError(
            f"y must contain both classes to define AUC; got {n_pos} positives and "
            f"{labels.size - n_pos} negatives"
        )
    return labels


def chunk_rows(n: int, chunk_size: int | None) -> int:
    """Resamples per chunk: the caller's choice, else as many as the memory budget allows."""
    if chunk_size is None:
        return max(1, CHUNK_ELEMENTS // n)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return chunk_size


def stratified_resample_indices(y: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n_boot`` stratified bootstrap resamples of row indices, shape ``(n_boot, n)``.

    Each row holds ``n_pos`` indices drawn with replacement from the positives followed by
    ``n_neg`` from the negatives. Both classes come from ONE draw in ``[0, n_pos·n_neg)`` reduced
    modulo the class size (exactly uniform, since the range is a multiple of both sizes), so the
    random stream is consumed row by row: drawing 2 × 500 resamples from a generator gives the
    same rows as drawing 1000 at once, which lets callers chunk without changing results.
    """
    labels = as_labels(y)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    pos = np.flatnonzero(labels == 1)
    neg = np.flatnonzero(labels == 0)
    draws = rng.integers(0, pos.size * neg.size, size=(n_boot, labels.size), dtype=np.int64)
    draws[:, : pos.size] %= pos.size
    draws[:, pos.size :] %= neg.size
    draws[:, pos.size :] += pos.size
    return np.concatenate([pos, neg])[draws]


def score_keys(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Per-row key ``label·n_groups + tie_group``; tie groups are numbered by ascending score.

    Label-major keys make each resample's negative and positive counts contiguous blocks.
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != labels.shape:
        raise ValueError(f"scores shape {values.shape} does not match y shape {labels.shape}")
    if not np.isfinite(values).all():
        raise ValueError("scores must be finite")
    uniques, group = np.unique(values, return_inverse=True)
    return labels * uniques.size + group.astype(np.int64), uniques.size


def auc_of_rows(keys: np.ndarray, n_groups: int, indices: np.ndarray) -> np.ndarray:
    """Mann–Whitney AUC of each row of ``indices`` (module docstring); NaN if a class is absent."""
    rows = indices.shape[0]
    width = 2 * n_groups
    # Offsetting each resample's keys by row·width lets one bincount count all rows separately.
    flat = (keys[indices] + (np.arange(rows, dtype=np.int64) * width)[:, None]).ravel()
    counts = np.bincount(flat, minlength=rows * width).reshape(rows, 2, n_groups)
    neg, pos = counts[:, 0, :], counts[:, 1, :]
    neg_below = np.cumsum(neg, axis=1) - neg
    # Doubled to stay in integers: 2·neg_below + neg counts each tie as ½ exactly.
    numerator = (pos * (2 * neg_below + neg)).sum(axis=1)
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, numerator / (2.0 * pairs), np.nan)


def auc_from_resamples(
    scores: np.ndarray, y: np.ndarray, indices: np.ndarray, *, chunk_size: int | None = None
) -> np.ndarray:
    """ROC AUC of every resample (row of ``indices``) at once, shape ``(n_boot,)``.

    Equals ``roc_auc_score(y[idx], scores[idx])`` for each row ``idx`` (ties count ½), without a
    Python loop over resamples. ``chunk_size`` resamples are processed at a time (default: as
    many as fit ``CHUNK_ELEMENTS``); it changes memory use, never results. A resample holding
    only one class has no AUC and yields NaN (sklearn would raise).
    """
    labels = as_labels(y)
    keys, n_groups = score_keys(scores, labels)
    idx = np.asarray(indices)
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"indices must be a 2-D integer array, got {idx.dtype} {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= labels.size):
        raise ValueError(f"indices must lie in [0, {labels.size})")
    step = chunk_rows(max(idx.shape[1], 1), chunk_size)
    out = np.empty(idx.shape[0], dtype=np.float64)
    for start in range(0, idx.shape[0], step):
        out[start : start + step] = auc_of_rows(keys, n_groups, idx[start : start + step])
    return out


def auc_from_count_resamples(
    pos_counts: np.ndarray, neg_counts: np.ndarray, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """AUCs of ``n_boot`` stratified resamples of data given as counts per score group.

    ``pos_counts[g]``/``neg_counts[g]`` count the positives/negatives whose score falls in group
    ``g`` (groups in ascending score order). A stratified resample draws ``n_pos`` positives
    with replacement, so its positives' group counts are Multinomial(n_pos, pos_counts/n_pos)
    (likewise the negatives): drawn here directly, at a cost of O(n_boot · groups) instead of
    O(n_boot · rows). This is the same bootstrap as :func:`stratified_resample_indices` with
    :func:`auc_from_resamples` on rows whose scores are the groups (same distribution, not the
    same random stream).
    """
    pos_counts = np.asarray(pos_counts, dtype=np.int64)
    neg_counts = np.asarray(neg_counts, dtype=np.int64)
    n_pos, n_neg = int(pos_counts.sum()), int(neg_counts.sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"need both classes; got {n_pos} positives and {n_neg} negatives")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    step = max(1, CHUNK_ELEMENTS // (2 * pos_counts.size))
    out = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, step):
        rows = min(step, n_boot - start)
        pos = rng.multinomial(n_pos, pos_counts / n_pos, size=rows)
        neg = rng.multinomial(n_neg, neg_counts / n_neg, size=rows)
        below = np.cumsum(neg, axis=1) - neg
        numerator = (pos * (2 * below + neg)).sum(axis=1)  # doubled: ties count ½ exactly
        out[start : start + rows] = numerator / (2.0 * n_pos * n_neg)
    return out

"""Paired bootstrap confidence interval of a metric's difference between two models.

Both models are scored on the same resampled rows in every sample, so the row-to-row noise they
share cancels out and the interval reflects only how much the models really differ. Pure and
seeded: the same inputs always give the same interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gitops_ml.core.contract import LOWER_IS_BETTER
from gitops_ml.core.metrics import value as metric_value


@dataclass(frozen=True)
class Interval:
    """`delta` on all rows and its [low, high] interval; positive means the challenger is better."""

    delta: float
    low: float
    high: float
    confidence: float
    samples: int


def _row_mean_metric(name: str, y_true, y_pred) -> np.ndarray | None:
    """Per-row values whose mean (or root mean) is the metric, so resamples are one matrix product."""
    if name == "accuracy":
        return (y_true == y_pred).astype(float)
    if name == "mae":
        return np.abs(y_true.astype(float) - y_pred.astype(float))
    if name == "rmse":
        return (y_true.astype(float) - y_pred.astype(float)) ** 2
    return None


def _weighted_auc(y_true, y_score, counts: np.ndarray) -> np.ndarray:
    """Binary ROC AUC of every resample at once: resample `i` weighs row `j` by `counts[i, j]`.

    AUC = P(score of a positive > score of a negative), ties counting one half, with the weights
    summed per distinct score so that ties are exact.
    """
    positive = y_true == np.unique(y_true)[-1]
    scores, position = np.unique(y_score, return_inverse=True)
    by_score = np.zeros((len(y_true), len(scores)))
    by_score[np.arange(len(y_true)), position] = 1.0
    pos, neg = (counts * positive) @ by_score, (counts * ~positive) @ by_score
    neg_below = np.cumsum(neg, axis=1) - neg
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, (pos * (neg_below + 0.5 * neg)).sum(axis=1) / pairs, np.nan)


def _resampled(name: str, y_true, y_pred, y_score, classes, indices: np.ndarray, counts: np.ndarray) -> np.ndarray:
    per_row = _row_mean_metric(name, y_true, y_pred)
    if per_row is not None:
        means = counts @ per_row / len(y_true)
        return np.sqrt(means) if name == "rmse" else means
    if name == "roc_auc" and y_score is not None and np.ndim(y_score) == 1 and len(np.unique(y_true)) == 2:
        return _weighted_auc(y_true, y_score, counts)
    values = np.empty(len(indices))
    for i, rows in enumerate(indices):
        score = None if y_score is None else y_score[rows]
        # NaN, e.g. for a resample holding one class only: that sample says nothing
        values[i] = metric_value(name, y_true[rows], y_pred[rows], score, classes)[0]
    return values


def _side(predictions) -> tuple:
    """(y_pred, y_score, classes) of one model's Predictions, as arrays."""
    score = None if predictions.y_score is None else np.asarray(predictions.y_score)
    return np.asarray(predictions.y_pred), score, getattr(predictions, "classes", None)


def paired_bootstrap(
    metric: str, challenger, champion, samples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """Percentile CI of improvement(metric, challenger, champion) over `samples` row resamples.

    `challenger` and `champion` are Predictions (y_true, y_pred, y_score) on the same rows.
    """
    y_true = np.asarray(challenger.y_true)
    if len(y_true) != len(champion.y_true) or not np.array_equal(y_true, np.asarray(champion.y_true)):
        raise ValueError("paired bootstrap needs both models' predictions on the same rows")
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    new, old = _side(challenger), _side(champion)
    delta = sign * (metric_value(metric, y_true, *new)[0] - metric_value(metric, y_true, *old)[0])
    if len(y_true) == 0:
        return Interval(math.nan, math.nan, math.nan, confidence, samples)
    rows = len(y_true)
    indices = np.random.default_rng(seed).integers(0, rows, size=(samples, rows))
    counts = np.bincount((np.arange(samples)[:, None] * rows + indices).ravel(), minlength=samples * rows)
    counts = counts.reshape(samples, rows).astype(float)  # how often each row is drawn in each resample
    deltas = sign * (_resampled(metric, y_true, *new, indices, counts)
                     - _resampled(metric, y_true, *old, indices, counts))
    deltas = deltas[~np.isnan(deltas)]
    if len(deltas) == 0:
        return Interval(float(delta), math.nan, math.nan, confidence, samples)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(deltas, [alpha, 1.0 - alpha])
    return Interval(float(delta), float(low), float(high), confidence, samples)

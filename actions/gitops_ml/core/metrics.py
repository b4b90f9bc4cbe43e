"""Metrics by name, computed from labels and predictions. Pure functions, no I/O."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from sklearn import metrics as skm

# Each metric takes (y_true, y_pred, y_score) where y_score is the positive-class probability
# (binary classification), the class-probability matrix (multiclass) or None.
Metric = Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]


def _average(y_true: np.ndarray) -> str:
    return "binary" if len(np.unique(y_true)) <= 2 else "macro"


def _pos_label(y_true: np.ndarray):
    labels = np.unique(y_true)
    return labels[-1] if len(labels) else 1


def _roc_auc(y_true, y_pred, y_score) -> float:
    if y_score is None or len(np.unique(y_true)) < 2:
        return math.nan
    if np.ndim(y_score) == 2:
        return float(skm.roc_auc_score(y_true, y_score, multi_class="ovr"))
    return float(skm.roc_auc_score(y_true, y_score))


def _log_loss(y_true, y_pred, y_score) -> float:
    if y_score is None:
        return math.nan
    if np.ndim(y_score) == 1:
        y_score = np.column_stack([1 - y_score, y_score])
        return float(skm.log_loss(y_true, y_score, labels=np.unique(y_true) if len(np.unique(y_true)) == 2 else None))
    return float(skm.log_loss(y_true, y_score))


def _binary_or_macro(fn) -> Metric:
    def metric(y_true, y_pred, y_score) -> float:
        average = _average(y_true)
        kwargs = {"pos_label": _pos_label(y_true)} if average == "binary" else {}
        return float(fn(y_true, y_pred, average=average, zero_division=0, **kwargs))

    return metric


METRICS: dict[str, Metric] = {
    "accuracy": lambda t, p, s: float(skm.accuracy_score(t, p)),
    "balanced_accuracy": lambda t, p, s: float(skm.balanced_accuracy_score(t, p)),
    "f1": _binary_or_macro(skm.f1_score),
    "precision": _binary_or_macro(skm.precision_score),
    "recall": _binary_or_macro(skm.recall_score),
    "roc_auc": _roc_auc,
    "log_loss": _log_loss,
    "rmse": lambda t, p, s: float(math.sqrt(skm.mean_squared_error(t, p))),
    "mae": lambda t, p, s: float(skm.mean_absolute_error(t, p)),
    "r2": lambda t, p, s: float(skm.r2_score(t, p)) if len(t) > 1 else math.nan,
    "mape": lambda t, p, s: float(skm.mean_absolute_percentage_error(t, p)),
}


def compute(names: list[str], y_true, y_pred, y_score=None) -> dict[str, float]:
    """The named metrics; NaN where a metric is undefined on this data (e.g. AUC with one class)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        return {name: math.nan for name in names}
    return {name: METRICS[name](y_true, y_pred, y_score) for name in names}


def slice_metrics(
    names: list[str], groups, y_true, y_pred, y_score=None, min_size: int = 1
) -> dict[str, dict[str, float]]:
    """Metrics per group of a sensitive attribute, for groups with at least `min_size` rows."""
    groups, y_true, y_pred = np.asarray(groups, dtype=object), np.asarray(y_true), np.asarray(y_pred)
    result: dict[str, dict[str, float]] = {}
    present = [g for g in groups if not (g is None or (isinstance(g, float) and np.isnan(g)))]
    for group in sorted({str(g) for g in present}):
        mask = np.array([str(g) == group for g in groups])
        if mask.sum() < min_size:
            continue
        score = None if y_score is None else np.asarray(y_score)[mask]
        result[group] = {"rows": float(mask.sum()), **compute(names, y_true[mask], y_pred[mask], score)}
    return result

"""Metrics by name, computed from labels and predictions. Pure functions, no I/O, never an exception.

A metric that cannot be computed on some data (ROC AUC of a group holding one class, R² of one
row, a probability matrix without the class list) is NaN, and `measure` says why: the reason is
reported next to the value (compare report, model card, evaluation.json) instead of a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from sklearn import metrics as skm

# Each metric takes (y_true, y_pred, y_score, classes). y_score is the positive-class probability
# (binary classification), the class-probability matrix (multiclass, columns in `classes` order) or
# None; `classes` is the model's class list (None: the classes present in y_true).
Metric = Callable[[np.ndarray, np.ndarray, "np.ndarray | None", "np.ndarray | None"], float]


class Undefined(Exception):  # noqa: N818 - a reason, not an error: the metric is NaN with this message
    """The metric has no value on this data; the message says why."""


def _labels(y_true: np.ndarray, classes) -> np.ndarray:
    return np.unique(y_true) if classes is None else np.asarray(classes)


def _listed(values) -> str:
    return ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values)


def _absent(y_true: np.ndarray, labels: np.ndarray) -> list:
    present = set(np.unique(y_true).tolist())
    return [label for label in labels.tolist() if label not in present]


def _roc_auc(y_true, y_pred, y_score, classes) -> float:
    if y_score is None:
        raise Undefined("needs class probabilities; the model has no predict_proba")
    labels = _labels(y_true, classes)
    if np.ndim(y_score) == 2:
        absent = _absent(y_true, labels)
        if absent:
            raise Undefined(f"one-vs-rest AUC needs every class; class(es) {_listed(absent)} absent from these rows")
        return float(skm.roc_auc_score(y_true, y_score, multi_class="ovr", labels=labels))
    if len(np.unique(y_true)) < 2:
        raise Undefined(f"needs both classes; only {_listed(np.unique(y_true))} present in these rows")
    return float(skm.roc_auc_score(y_true == labels[-1], y_score))


def _log_loss(y_true, y_pred, y_score, classes) -> float:
    if y_score is None:
        raise Undefined("needs class probabilities; the model has no predict_proba")
    labels = _labels(y_true, classes)
    if np.ndim(y_score) == 1:
        if len(labels) != 2:
            raise Undefined("a positive-class probability needs the two class labels")
        y_score = np.column_stack([1 - y_score, y_score])
    if y_score.shape[1] != len(labels):
        raise Undefined(f"{y_score.shape[1]} probability columns but {len(labels)} known classes")
    return float(skm.log_loss(y_true, y_score, labels=labels))


def _binary_or_macro(fn) -> Metric:
    def metric(y_true, y_pred, y_score, classes) -> float:
        labels = _labels(np.concatenate([y_true, y_pred]), classes)
        if len(labels) <= 2:
            return float(fn(y_true, y_pred, average="binary", pos_label=labels[-1], zero_division=0,
                            labels=labels if len(labels) == 2 else None))
        return float(fn(y_true, y_pred, average="macro", zero_division=0))

    return metric


def _r2(y_true, y_pred, y_score, classes) -> float:
    if len(y_true) < 2:
        raise Undefined("needs at least 2 rows")
    if np.all(y_true == y_true[0]):
        raise Undefined("the target is constant on these rows")
    return float(skm.r2_score(y_true, y_pred))


def _mape(y_true, y_pred, y_score, classes) -> float:
    if np.any(y_true == 0):
        raise Undefined("the target is 0 on some rows (a percentage error of 0 is infinite)")
    return float(skm.mean_absolute_percentage_error(y_true, y_pred))


METRICS: dict[str, Metric] = {
    "accuracy": lambda t, p, s, c: float(skm.accuracy_score(t, p)),
    "balanced_accuracy": lambda t, p, s, c: float(skm.balanced_accuracy_score(t, p)),
    "f1": _binary_or_macro(skm.f1_score),
    "precision": _binary_or_macro(skm.precision_score),
    "recall": _binary_or_macro(skm.recall_score),
    "roc_auc": _roc_auc,
    "log_loss": _log_loss,
    "rmse": lambda t, p, s, c: float(math.sqrt(skm.mean_squared_error(t, p))),
    "mae": lambda t, p, s, c: float(skm.mean_absolute_error(t, p)),
    "r2": _r2,
    "mape": _mape,
}


def value(name: str, y_true, y_pred, y_score=None, classes=None) -> tuple[float, str | None]:
    """One metric and, when it is NaN, the reason. Never raises for data it cannot score."""
    if len(y_true) == 0:
        return math.nan, "no rows"
    try:
        result = METRICS[name](y_true, y_pred, y_score, classes)
    except Undefined as reason:
        return math.nan, str(reason)
    except (ValueError, TypeError, ZeroDivisionError, IndexError) as error:  # scikit-learn's refusals
        return math.nan, f"cannot be computed on these rows ({str(error).strip() or type(error).__name__})"
    if math.isnan(result):
        return math.nan, "undefined on these rows"
    return result, None


def measure(names: Sequence[str], y_true, y_pred, y_score=None, classes=None
            ) -> tuple[dict[str, float], dict[str, str]]:
    """The named metrics and, for each that is NaN, why."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    y_score = None if y_score is None else np.asarray(y_score)
    values: dict[str, float] = {}
    reasons: dict[str, str] = {}
    for name in names:
        values[name], reason = value(name, y_true, y_pred, y_score, classes)
        if reason is not None:
            reasons[name] = reason
    return values, reasons


def compute(names: Sequence[str], y_true, y_pred, y_score=None, classes=None) -> dict[str, float]:
    """The named metrics; NaN where a metric is undefined on this data (`measure` gives the reasons)."""
    return measure(names, y_true, y_pred, y_score, classes)[0]


def slice_metrics(
    names: Sequence[str], groups, y_true, y_pred, y_score=None, min_size: int = 1, classes=None
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, str]]]:
    """Metrics per group of a sensitive attribute, for groups with at least `min_size` rows, and for
    each group the reasons of its NaN metrics (groups where every metric is defined are left out)."""
    groups, y_true, y_pred = np.asarray(groups, dtype=object), np.asarray(y_true), np.asarray(y_pred)
    slices: dict[str, dict[str, float]] = {}
    undefined: dict[str, dict[str, str]] = {}
    present = [g for g in groups if not (g is None or (isinstance(g, float) and np.isnan(g)))]
    for group in sorted({str(g) for g in present}):
        mask = np.array([str(g) == group for g in groups])
        if mask.sum() < min_size:
            continue
        score = None if y_score is None else np.asarray(y_score)[mask]
        values, reasons = measure(names, y_true[mask], y_pred[mask], score, classes)
        slices[group] = {"rows": float(mask.sum()), **values}
        if reasons:
            undefined[group] = reasons
    return slices, undefined


def per_class(y_true, y_pred, classes=None) -> dict[str, dict[str, float]]:
    """Precision, recall, f1 and support of each class (as text), in the model's class order."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = _labels(np.concatenate([y_true, y_pred]), classes)
    if len(y_true) == 0 or len(labels) == 0:
        return {}
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    return {str(label.item() if hasattr(label, "item") else label): {
        "precision": float(p), "recall": float(r), "f1": float(f), "support": float(n)}
        for label, p, r, f, n in zip(labels, precision, recall, f1, support, strict=True)}

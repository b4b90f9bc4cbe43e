"""Evaluate a model on a dataset under the contract: metrics, per-group metrics, one-row latency."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml.core import metrics as metric_fns
from gitops_ml.core.contract import Contract
from gitops_ml.core.dataset import target_array, to_matrix


@dataclass(frozen=True)
class Predictions:
    y_true: np.ndarray
    y_pred: np.ndarray
    y_score: np.ndarray | None  # positive-class probability (binary) or class probabilities
    classes: np.ndarray | None = None  # the model's classes, in y_score's column order (classification)


@dataclass(frozen=True)
class Evaluation:
    rows: int
    metrics: dict[str, float]
    slices: dict[str, dict[str, float]]
    latency_p95_ms: float | None
    predictions: Predictions = field(repr=False, compare=False)
    undefined: dict[str, str] = field(default_factory=dict)  # metric -> why it is NaN
    slice_undefined: dict[str, dict[str, str]] = field(default_factory=dict)  # group -> metric -> why NaN
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)  # class -> precision, recall, f1, support

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "metrics": self.metrics,
            "slices": self.slices,
            "latency_p95_ms": self.latency_p95_ms,
            "undefined": self.undefined,
            "slice_undefined": self.slice_undefined,
            "per_class": self.per_class,
        }


def predict(model, matrix: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    y_pred = model.predict(matrix)
    if task != "classification" or not hasattr(model, "predict_proba"):
        return y_pred, None
    proba = model.predict_proba(matrix)
    return y_pred, proba[:, 1] if proba.shape[1] == 2 else proba


def latency_p95_ms(model, matrix: np.ndarray, rows: int = 200, seed: int = 0) -> float | None:
    """p95 wall time of one-row `predict` calls, in milliseconds, over up to `rows` sampled rows."""
    if rows <= 0 or len(matrix) == 0:
        return None
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(matrix), size=min(rows, len(matrix)), replace=False)
    model.predict(matrix[picks[:1]])  # warm-up: first calls pay for lazy imports and caches
    timings = []
    for i in picks:
        start = time.perf_counter()
        model.predict(matrix[i : i + 1])
        timings.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(timings, 95))


def evaluate(model, frame: pd.DataFrame, contract: Contract, latency_rows: int = 200) -> Evaluation:
    matrix = to_matrix(frame, contract.data.features)
    y_true = target_array(frame, contract)
    y_pred, y_score = predict(model, matrix, contract.model.task)
    classes = getattr(model, "classes_", None) if contract.model.task == "classification" else None
    names = contract.metric_names
    attribute = contract.data.sensitive_attribute
    slices: dict[str, dict[str, float]] = {}
    slice_undefined: dict[str, dict[str, str]] = {}
    if attribute:
        groups = frame[attribute].astype(object).to_numpy()
        min_size = contract.promotion.fairness.min_group_size if contract.promotion.fairness else 1
        slices, slice_undefined = metric_fns.slice_metrics(names, groups, y_true, y_pred, y_score, min_size, classes)
    values, undefined = metric_fns.measure(names, y_true, y_pred, y_score, classes)
    return Evaluation(
        rows=len(frame),
        metrics=values,
        slices=slices,
        latency_p95_ms=latency_p95_ms(model, matrix, latency_rows),
        predictions=Predictions(y_true, y_pred, y_score, classes),
        undefined=undefined,
        slice_undefined=slice_undefined,
        per_class=metric_fns.per_class(y_true, y_pred, classes) if contract.model.task == "classification" else {},
    )

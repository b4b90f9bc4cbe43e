"""The paired bootstrap: covers a known difference, is zero for identical models, signs like `improvement`."""

from __future__ import annotations

import time

import numpy as np
import pytest
from gitops_ml.core.bootstrap import paired_bootstrap
from gitops_ml.core.evaluation import Predictions


def classifier_predictions(rows: int, accuracy: float, seed: int, y_true: np.ndarray) -> Predictions:
    rng = np.random.default_rng(seed)
    wrong = rng.random(rows) > accuracy
    y_pred = np.where(wrong, 1 - y_true, y_true)
    y_score = np.clip(np.where(y_pred == 1, 0.7, 0.3) + rng.normal(0, 0.15, rows), 0, 1)
    return Predictions(y_true, y_pred, y_score)


def test_interval_contains_the_true_accuracy_difference():
    rows = 2000
    y_true = np.random.default_rng(0).integers(0, 2, rows)
    new = classifier_predictions(rows, 0.85, 1, y_true)
    old = classifier_predictions(rows, 0.80, 2, y_true)
    ci = paired_bootstrap("accuracy", new, old, samples=1000, seed=3)
    assert ci.low < 0.05 < ci.high
    assert ci.low > 0  # a 5-point gap on 2000 rows is well outside the noise
    assert ci.delta == pytest.approx(np.mean(new.y_pred == y_true) - np.mean(old.y_pred == y_true))


def test_identical_models_give_zero_delta_and_a_degenerate_interval():
    y_true = np.random.default_rng(0).integers(0, 2, 500)
    same = classifier_predictions(500, 0.8, 1, y_true)
    for metric in ("accuracy", "roc_auc", "log_loss"):
        ci = paired_bootstrap(metric, same, same, samples=200)
        assert (ci.delta, ci.low, ci.high) == (0.0, 0.0, 0.0), metric


@pytest.mark.parametrize("metric", ["rmse", "mae"])
def test_lower_is_better_metrics_are_positive_when_the_challenger_errs_less(metric):
    rng = np.random.default_rng(0)
    y_true = rng.normal(100, 20, 1000)
    new = Predictions(y_true, y_true + rng.normal(0, 5, 1000), None)
    old = Predictions(y_true, y_true + rng.normal(0, 10, 1000), None)
    ci = paired_bootstrap(metric, new, old, samples=500)
    assert 0 < ci.low <= ci.delta <= ci.high
    assert paired_bootstrap(metric, old, new, samples=500).high < 0


def test_same_seed_same_interval_and_fast_enough():
    y_true = np.random.default_rng(0).integers(0, 2, 1000)
    new, old = classifier_predictions(1000, 0.85, 1, y_true), classifier_predictions(1000, 0.8, 2, y_true)
    start = time.perf_counter()
    first = paired_bootstrap("roc_auc", new, old, samples=1000, seed=7)
    assert time.perf_counter() - start < 10
    assert paired_bootstrap("roc_auc", new, old, samples=1000, seed=7) == first


def test_predictions_on_different_rows_are_refused():
    y = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="same rows"):
        paired_bootstrap("accuracy", Predictions(y, y, None), Predictions(y[::-1], y, None))


def test_vectorised_auc_matches_sklearn_on_each_resample():
    """The fast AUC path must agree with sklearn's, ties included, or the interval would be wrong."""
    from gitops_ml.core.bootstrap import _weighted_auc
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 300)
    y_score = np.round(rng.random(300), 1)  # many ties
    indices = rng.integers(0, 300, size=(20, 300))
    counts = np.stack([np.bincount(rows, minlength=300) for rows in indices]).astype(float)
    expected = [roc_auc_score(y_true[rows], y_score[rows]) for rows in indices]
    assert _weighted_auc(y_true, y_score, counts) == pytest.approx(expected)

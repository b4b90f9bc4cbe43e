"""Metrics by name: the values scikit-learn gives, NaN where a metric is undefined, never an exception."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gitops_ml.core.metrics import compute, slice_metrics


def test_binary_metrics_use_the_positive_class_and_the_positive_probability():
    y_true, y_pred = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    score = np.array([0.1, 0.6, 0.8, 0.9])
    got = compute(["accuracy", "precision", "recall", "f1", "roc_auc"], y_true, y_pred, score)
    assert got["accuracy"] == 0.75 and got["recall"] == 1.0 and got["precision"] == pytest.approx(2 / 3)
    assert got["roc_auc"] == 1.0


def test_multiclass_metrics_are_macro_averaged_and_auc_is_one_vs_rest():
    y_true = np.array(["a", "b", "c", "a", "b", "c"], dtype=object)
    y_pred = np.array(["a", "b", "c", "a", "c", "c"], dtype=object)
    proba = np.array([[.8, .1, .1], [.1, .8, .1], [.1, .1, .8], [.7, .2, .1], [.1, .4, .5], [.2, .2, .6]])
    got = compute(["f1", "roc_auc", "accuracy"], y_true, y_pred, proba)
    assert got["accuracy"] == pytest.approx(5 / 6)
    assert 0 < got["f1"] < 1 and got["roc_auc"] == pytest.approx(1.0)


def test_regression_metrics():
    got = compute(["rmse", "mae", "r2"], np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert got["mae"] == pytest.approx(2 / 3) and got["rmse"] == pytest.approx(math.sqrt(4 / 3))
    assert got["r2"] == pytest.approx(1 - 4 / 2)


@pytest.mark.parametrize("names", [["roc_auc"], ["r2"]])
def test_undefined_metrics_are_nan(names):
    one_class = compute(names, np.array([1]), np.array([1]), np.array([0.7]))
    assert all(math.isnan(v) for v in one_class.values())
    assert all(math.isnan(v) for v in compute(names, np.array([]), np.array([])).values())


def test_slices_skip_missing_groups_and_small_groups():
    groups = np.array(["f", "f", "m", "m", "m", None], dtype=object)
    y = np.array([1, 0, 1, 1, 0, 1])
    got = slice_metrics(["accuracy"], groups, y, y, None, min_size=3)
    assert set(got) == {"m"} and got["m"] == {"rows": 3.0, "accuracy": 1.0}

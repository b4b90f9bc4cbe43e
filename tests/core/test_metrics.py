"""Metrics by name: the values scikit-learn gives, NaN where a metric is undefined, never an exception."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gitops_ml.core.metrics import compute, measure, slice_metrics


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
    got, undefined = slice_metrics(["accuracy"], groups, y, y, None, min_size=3)
    assert set(got) == {"m"} and got["m"] == {"rows": 3.0, "accuracy": 1.0} and undefined == {}


def test_a_group_lacking_a_class_gets_nan_and_the_reason_never_a_traceback():
    """Defect 3: multiclass with a sensitive attribute, one group holding two of the three classes."""
    classes = np.array(["a", "b", "c"], dtype=object)
    y_true = np.array(["a", "b", "c", "a", "b", "a", "b"], dtype=object)
    y_pred = np.array(["a", "b", "c", "a", "a", "a", "b"], dtype=object)
    proba = np.array([[.8, .1, .1], [.1, .8, .1], [.1, .1, .8], [.7, .2, .1], [.5, .4, .1], [.6, .3, .1],
                      [.2, .7, .1]])
    groups = np.array(["f", "f", "f", "f", "m", "m", "m"], dtype=object)
    slices, undefined = slice_metrics(["accuracy", "roc_auc", "log_loss", "f1"], groups, y_true, y_pred, proba,
                                      classes=classes)
    assert slices["m"]["accuracy"] == pytest.approx(2 / 3) and math.isnan(slices["m"]["roc_auc"])
    assert "'c'" in undefined["m"]["roc_auc"] and "absent" in undefined["m"]["roc_auc"]
    assert slices["m"]["log_loss"] > 0 and "log_loss" not in undefined["m"]  # defined: labels are known
    assert "f" not in undefined and slices["f"]["roc_auc"] == pytest.approx(1.0)


def test_binary_metrics_of_a_one_class_group_keep_the_models_positive_class():
    """A group whose rows are all negatives: precision/recall are about class 1, not about its only class."""
    y_true, y_pred = np.array([0, 0, 0]), np.array([0, 0, 1])
    values, reasons = measure(["recall", "precision", "roc_auc"], y_true, y_pred, np.array([.1, .2, .9]),
                              classes=np.array([0, 1]))
    assert values["recall"] == 0.0 and values["precision"] == 0.0
    assert math.isnan(values["roc_auc"]) and "only 0 present" in reasons["roc_auc"]


@pytest.mark.parametrize("name, y_true, y_pred, reason", [
    ("r2", [3.0], [2.0], "at least 2 rows"),
    ("r2", [3.0, 3.0], [2.0, 3.0], "constant"),
    ("mape", [0.0, 1.0], [1.0, 1.0], "is 0"),
    ("log_loss", [0, 1], [0, 1], "predict_proba"),
    ("accuracy", [], [], "no rows"),
])
def test_every_nan_says_why(name, y_true, y_pred, reason):
    values, reasons = measure([name], np.array(y_true), np.array(y_pred))
    assert math.isnan(values[name]) and reason in reasons[name]


def test_scikit_learns_refusals_become_reasons():
    values, reasons = measure(["log_loss"], np.array(["a", "b"]), np.array(["a", "b"]),
                              np.array([[.5, .5], [.5, .5]]), classes=np.array(["a", "b", "c"]))
    assert math.isnan(values["log_loss"]) and "2 probability columns but 3" in reasons["log_loss"]

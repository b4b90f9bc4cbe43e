"""Evaluation under the contract, with a real scikit-learn model: metrics, groups and why a NaN is NaN."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from gitops_ml.core.contract import parse_contract
from gitops_ml.core.dataset import target_array, to_matrix
from gitops_ml.core.evaluation import evaluate
from gitops_ml.core.policy import decide
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder


def three_classes(fairness_metric: str = "roc_auc"):
    return parse_contract({
        "model": {"task": "classification"},
        "data": {"train": "t.csv", "target": "label", "sensitive_attribute": "site",
                 "columns": {"x": {"type": "float"},
                             "site": {"type": "category", "categories": ["north", "south"]},
                             "label": {"type": "category", "categories": ["low", "mid", "high"]}}},
        "metrics": {"primary": "f1", "report": ["accuracy", "roc_auc", "log_loss"]},
        "promotion": {"fairness": {"metric": fairness_metric, "max_gap": 0.5, "min_group_size": 5}},
        "registry": {"model_name": "m", "image": "i"},
    })


def frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """Site 'south' never has the class 'high' (the shape that crashed `evaluate` before)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, rows)
    site = np.where(np.arange(rows) % 3 == 0, "south", "north")
    label = np.where(x < -0.5, "low", np.where(x < 0.5, "mid", "high"))
    label = np.where((site == "south") & (label == "high"), "mid", label)
    return pd.DataFrame({"x": x, "site": site, "label": label})


def fitted(contract, data: pd.DataFrame):
    features = contract.data.features
    model = Pipeline([("prep", ColumnTransformer([("site", OneHotEncoder(handle_unknown="ignore"), [1])],
                                                 remainder="passthrough")),
                      ("model", LogisticRegression(max_iter=500))])
    return model.fit(to_matrix(data, features), target_array(data, contract))


def test_a_group_lacking_a_class_is_reported_with_the_reason_and_fairness_fails_closed():
    contract = three_classes()
    data = frame()
    result = evaluate(fitted(contract, data), data, contract, latency_rows=0)
    assert 0 < result.metrics["f1"] <= 1 and not result.undefined
    assert math.isnan(result.slices["south"]["roc_auc"]) and result.slices["south"]["accuracy"] > 0.5
    assert "'high'" in result.slice_undefined["south"]["roc_auc"]
    assert result.to_dict()["slice_undefined"] == result.slice_undefined
    rule = next(r for r in decide(result, None, contract).rules if r.rule == "fairness")
    assert not rule.passed and "'south'" in rule.detail and "'high'" in rule.detail


def test_the_same_data_with_a_metric_every_group_defines_is_assessed():
    contract = three_classes("accuracy")
    data = frame()
    result = evaluate(fitted(contract, data), data, contract, latency_rows=0)
    rule = next(r for r in decide(result, None, contract).rules if r.rule == "fairness")
    assert rule.passed and 0 <= rule.challenger <= 0.5


def test_a_classifier_reports_every_class_and_the_model_card_shows_them():
    from gitops_ml.core.report import Side, model_card

    contract = three_classes("accuracy")
    data = frame()
    result = evaluate(fitted(contract, data), data, contract, latency_rows=0)
    assert list(result.per_class) == sorted(["low", "mid", "high"])  # the model's class order
    assert sum(row["support"] for row in result.per_class.values()) == len(data)
    card = model_card(contract, Side("3", result), None, None)
    assert "## By class of `label`" in card and "| high |" in card

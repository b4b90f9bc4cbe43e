"""The feature pipeline and every estimator, trained on this repository's own data."""

import numpy as np
import pytest
from gitops_ml.core.contract import LOWER_IS_BETTER
from gitops_ml.core.dataset import target_array, to_matrix
from gitops_ml.core.evaluation import evaluate
from sklearn.model_selection import train_test_split

from {{ cookiecutter.package }}.features import ESTIMATORS, build_pipeline


@pytest.fixture(scope="module")
def split(contract, frame):
    stratify = frame[contract.data.target] if contract.model.task == "classification" else None
    return train_test_split(frame, test_size=contract.data.test_size, random_state=contract.data.split_seed,
                            stratify=stratify)


def fitted(contract, params, train):
    pipeline = build_pipeline(contract, params)
    return pipeline.fit(to_matrix(train, contract.data.features), target_array(train, contract))


def baseline(contract, train, test) -> tuple[str, float]:
    """The trivial model's score: always the majority class (accuracy), or always the mean (R²)."""
    target = contract.data.target
    if contract.model.task == "classification":
        majority = train[target].value_counts().idxmax()
        return "accuracy", float((test[target] == majority).mean())
    return "r2", 0.0


def score(contract, model, test, metric: str) -> float:
    from gitops_ml.core.metrics import compute

    y_pred = model.predict(to_matrix(test, contract.data.features))
    return compute([metric], target_array(test, contract), y_pred)[metric]


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS["{{ cookiecutter.task }}"]))
def test_every_estimator_learns_more_than_the_trivial_baseline(contract, params, split, estimator):
    train, test = split
    chosen = {"estimator": estimator, estimator: params.get(estimator) or {}}
    metric, trivial = baseline(contract, train, test)
    value = score(contract, fitted(contract, chosen, train), test, metric)
    assert value >= trivial - 0.01, f"{estimator}: {metric} {value:.3f} vs the trivial model's {trivial:.3f}"


def test_the_configured_estimator_meets_the_promotion_floors(contract, params, split):
    """What promotion will ask of a first champion, checked before a pull request asks it."""
    train, test = split
    result = evaluate(fitted(contract, params, train), test, contract, latency_rows=0)
    for metric, floor in contract.promotion.floors.items():
        value = result.metrics[metric]
        assert (value <= floor) if metric in LOWER_IS_BETTER else (value >= floor), (metric, value, floor)


def test_the_pipeline_handles_missing_values_and_unseen_categories(contract, params, split):
    train, test = split
    model = fitted(contract, params, train)
    rows = to_matrix(test.head(5), contract.data.features)
    for i, name in enumerate(contract.data.features):
        column = contract.data.columns[name]
        if column.nullable:
            rows[0, i] = np.nan
        if column.type == "category":
            rows[1, i] = "a category never seen in training"
    predictions = model.predict(rows)
    assert len(predictions) == 5
    if contract.model.task == "classification":
        assert set(predictions) <= set(target_array(train, contract))


def test_unknown_estimator_is_named(contract):
    with pytest.raises(ValueError, match="train.estimator: 'xgboost'"):
        build_pipeline(contract, {"estimator": "xgboost"})

import pytest
from gitops_ml.core.dataset import target_array, to_matrix
from gitops_ml.core.evaluation import evaluate

from {{ cookiecutter.package }} import data
from {{ cookiecutter.package }}.features import ESTIMATORS, build_pipeline


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS["{{ cookiecutter.task }}"]))
def test_every_estimator_trains_and_beats_the_floors(contract, estimator):
    train = data.simulate_for(contract, 1500, seed=1, drift=0.0)
    test = data.simulate_for(contract, 800, seed=2, drift=0.0)
    params = {"estimator": estimator, estimator: {"random_state": 0} if estimator != "ridge" else {}}
    if estimator == "logistic_regression":
        params[estimator] = {"max_iter": 1000}
    pipeline = build_pipeline(contract, params)
    pipeline.fit(to_matrix(train, contract.data.features), target_array(train, contract))
    result = evaluate(pipeline, test, contract, latency_rows=0)
    for metric, floor in contract.promotion.floors.items():
        value = result.metrics[metric]
        assert (value >= floor) if metric not in ("rmse", "mae", "log_loss", "mape") else (value <= floor), metric


def test_unknown_estimator_is_named(contract):
    with pytest.raises(ValueError, match="train.estimator: 'xgboost'"):
        build_pipeline(contract, {"estimator": "xgboost"})

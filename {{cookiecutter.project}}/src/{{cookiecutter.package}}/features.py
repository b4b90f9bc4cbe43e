"""The feature pipeline and the estimator: the model-specific part of this repository.

The pipeline takes the contract's feature columns in contract order as one object array (see
`gitops_ml.core.dataset.to_matrix`); columns are picked by position, so serving never needs a
DataFrame. Only scikit-learn classes appear in it, so the saved model loads with skops safely.
"""

from __future__ import annotations

from typing import Any

from gitops_ml.core.contract import Contract
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

ESTIMATORS = {
    "classification": {
        "logistic_regression": LogisticRegression,
        "random_forest": RandomForestClassifier,
        "hist_gradient_boosting": HistGradientBoostingClassifier,
    },
    "regression": {
        "ridge": Ridge,
        "random_forest": RandomForestRegressor,
        "hist_gradient_boosting": HistGradientBoostingRegressor,
    },
}


def build_preprocessor(contract: Contract) -> ColumnTransformer:
    columns = contract.data.columns
    features = contract.data.features
    numeric = [i for i, name in enumerate(features) if columns[name].type != "category"]
    categorical = [i for i, name in enumerate(features) if columns[name].type == "category"]
    numeric_steps = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical_steps = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    return ColumnTransformer(
        [("numeric", numeric_steps, numeric), ("categorical", categorical_steps, categorical)],
        sparse_threshold=0.0,
    )


def build_estimator(task: str, params: dict[str, Any]):
    """The estimator named by params.yaml `train.estimator`, with that estimator's hyperparameters."""
    name = params.get("estimator")
    choices = ESTIMATORS[task]
    if name not in choices:
        raise ValueError(f"params.yaml train.estimator: '{name}' is not one of {sorted(choices)} for {task}")
    hyper = dict(params.get(name) or {})
    return choices[name](**hyper)


def build_pipeline(contract: Contract, params: dict[str, Any]) -> Pipeline:
    return Pipeline(
        [("preprocess", build_preprocessor(contract)), ("model", build_estimator(contract.model.task, params))]
    )

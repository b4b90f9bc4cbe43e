"""Serving's vectorised preprocessor must equal the fitted pipeline, or not be used at all."""

import numpy as np
import yaml
from gitops_ml.core.dataset import target_array, to_matrix
from gitops_ml.io.model_dir import feature_schema
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from {{ cookiecutter.package }} import data
from {{ cookiecutter.package }}.fastpath import compile_preprocessor, probe_rows
from {{ cookiecutter.package }}.features import build_pipeline
from tests.conftest import ROOT


def fitted(contract):
    frame = data.simulate_for(contract, 600, seed=4, drift=0.0)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]
    pipeline = build_pipeline(contract, params)
    pipeline.fit(to_matrix(frame, contract.data.features), target_array(frame, contract))
    return pipeline


def test_fast_preprocessor_equals_the_pipeline_on_drifted_data_with_gaps(contract):
    pipeline = fitted(contract)
    transform = compile_preprocessor(pipeline[0], probe_rows(feature_schema(contract)))
    assert transform is not None
    frame = data.simulate_for(contract, 300, seed=8, drift=1.0)
    frame.loc[::7, "monthly_charges"] = None
    matrix = to_matrix(frame, contract.data.features)
    np.testing.assert_allclose(transform(matrix.tolist()), pipeline[0].transform(matrix), rtol=1e-12)


def test_an_unknown_preprocessor_falls_back_to_the_pipeline(contract):
    features = contract.data.features
    categorical = [i for i, n in enumerate(features) if contract.data.columns[n].type == "category"]
    numeric = [i for i in range(len(features)) if i not in categorical]
    other = ColumnTransformer([("numeric", StandardScaler(), numeric), ("categorical", OneHotEncoder(), categorical)])
    matrix = to_matrix(data.simulate_for(contract, 200, seed=1, drift=0.0).dropna(), features)
    other.fit(matrix)
    assert compile_preprocessor(other, probe_rows(feature_schema(contract))) is None
    assert compile_preprocessor(Pipeline([("scale", StandardScaler())]), matrix) is None

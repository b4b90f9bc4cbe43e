"""Serving's vectorised preprocessor must equal the fitted pipeline, or not be used at all.

Every shape of feature set (tests/feature_shapes.py): numeric only, categorical only, both; with and
without missing values. Any failure to build or check the fast path falls back to the pipeline.
"""

import logging

import numpy as np
import pytest
import yaml
from gitops_ml.io.model_dir import feature_schema
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from {{ cookiecutter.package }} import fastpath, serve
from {{ cookiecutter.package }}.fastpath import compile_preprocessor, probe_rows
from {{ cookiecutter.package }}.features import build_pipeline, build_preprocessor
from tests.conftest import ROOT
from tests.feature_shapes import SHAPES, SYNTHETIC, shape, training_data, with_columns


def fitted(contract):
    features, targets = training_data(contract, rows=400, seed=1)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]
    return build_pipeline(contract, params).fit(features, targets)


@pytest.mark.parametrize("name", SHAPES)
def test_fast_preprocessor_equals_the_pipeline_on_every_shape(contract, name):
    variant = shape(contract, name)
    schema = feature_schema(variant)
    preprocessor = build_preprocessor(variant).fit(training_data(variant, rows=300, seed=1)[0])
    transform = compile_preprocessor(preprocessor, probe_rows(schema))
    assert transform is not None, (f"{name}: the fast path does not apply to features.py's preprocessor; serving "
                                   "then runs the pipeline as is (correct, ~2 ms slower per call)")
    rows = probe_rows(schema, rows=200, seed=8)  # other numbers than the probe, gaps where allowed
    np.testing.assert_allclose(transform(rows.tolist()), preprocessor.transform(rows), rtol=1e-12)


def test_one_numeric_column_and_one_categorical_column(contract):
    """The smallest blocks: a single numeric column (its values are not tuples) and a single category."""
    variant = with_columns(contract, {**SYNTHETIC["numeric"], **SYNTHETIC["categorical"]})
    schema = [{**feature, "nullable": True} for feature in feature_schema(variant)]
    preprocessor = build_preprocessor(variant).fit(training_data(variant, rows=100, seed=1)[0])
    transform = compile_preprocessor(preprocessor, probe_rows(schema))
    assert transform is not None
    rows = probe_rows(schema, rows=40, seed=9)
    np.testing.assert_allclose(transform(rows.tolist()), preprocessor.transform(rows), rtol=1e-12)
    assert transform([]).shape == (0, preprocessor.transform(rows).shape[1])


@pytest.mark.parametrize("name", SHAPES)
@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "pipeline"])
def test_serving_predicts_what_the_pipeline_predicts_on_every_shape(contract, name, fast):
    variant = shape(contract, name)
    pipeline = fitted(variant)
    schema = feature_schema(variant)
    predictor = serve.Predictor(serve.LoadedModel(pipeline, schema, variant.model.task,
                                                  getattr(pipeline, "classes_", np.array([])).tolist()))
    assert predictor.preprocess is not None
    if not fast:
        predictor.preprocess = None
    rows = probe_rows(schema, rows=50, seed=3)
    got = predictor.predict_values(rows.tolist())
    if variant.model.task == "classification":
        expected = pipeline.predict_proba(rows)
        assert got["predictions"] == pipeline.classes_[expected.argmax(axis=1)].tolist()
        np.testing.assert_allclose(got["probabilities"], expected[:, 1] if expected.shape[1] == 2 else expected,
                                   rtol=1e-9)
    else:
        np.testing.assert_allclose(got["predictions"], pipeline.predict(rows), rtol=1e-9)


def test_an_unknown_preprocessor_falls_back_to_the_pipeline(contract, caplog):
    variant = shape(contract, "mixed")
    features = variant.data.features
    categorical = [i for i, n in enumerate(features) if variant.data.columns[n].type == "category"]
    numeric = [i for i in range(len(features)) if i not in categorical]
    other = ColumnTransformer([("numeric", StandardScaler(), numeric), ("categorical", OneHotEncoder(), categorical)])
    matrix = training_data(variant, rows=200, seed=1)[0]
    other.fit(matrix)
    with caplog.at_level(logging.INFO, logger=fastpath.__name__):
        assert compile_preprocessor(other, probe_rows(feature_schema(variant))) is None
        assert compile_preprocessor(Pipeline([("scale", StandardScaler())]), matrix) is None
    assert [r.message for r in caplog.records if "fast path not used" in r.message][:1], caplog.text


def test_any_error_while_building_the_fast_path_falls_back_logged_once(contract, monkeypatch, caplog):
    variant = shape(contract, "numeric")
    pipeline = fitted(variant)

    def broken(preprocessor):  # e.g. scikit-learn renaming a fitted attribute (AttributeError: categories_)
        raise AttributeError("'OneHotEncoder' object has no attribute 'categories_'")

    monkeypatch.setattr(fastpath, "plan", broken)
    with caplog.at_level(logging.WARNING, logger=fastpath.__name__):
        predictor = serve.Predictor(serve.LoadedModel(pipeline, feature_schema(variant), variant.model.task,
                                                      getattr(pipeline, "classes_", np.array([])).tolist()))
        rows = probe_rows(feature_schema(variant), rows=5, seed=2).tolist()
        for _ in range(3):
            predictor.predict_values(rows)
    assert predictor.preprocess is None
    warnings = [r for r in caplog.records if "fast path not used" in r.message]
    assert len(warnings) == 1 and "AttributeError" in warnings[0].message


def test_a_fast_path_failing_at_prediction_time_falls_back_logged_once(contract, caplog):
    variant = shape(contract, "mixed+missing")
    pipeline = fitted(variant)
    schema = feature_schema(variant)
    predictor = serve.Predictor(serve.LoadedModel(pipeline, schema, variant.model.task,
                                                  getattr(pipeline, "classes_", np.array([])).tolist()))
    rows = probe_rows(schema, rows=5, seed=2).tolist()
    expected = predictor.predict_values(rows)

    def broken(values):
        raise IndexError("list index out of range")

    predictor.preprocess = broken
    with caplog.at_level(logging.WARNING, logger=serve.__name__):
        results = [predictor.predict_values(rows) for _ in range(3)]
    assert all(result["predictions"] == expected["predictions"] for result in results)
    assert len([r for r in caplog.records if "fast path failed" in r.message]) == 1

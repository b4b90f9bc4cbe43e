"""The smoke test's verdict: what a deployment answered against the offline predictions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from gitops_ml.core.smoke import (
    REL_TOL,
    Answer,
    Golden,
    GoldenError,
    Observed,
    json_rows,
    mismatches,
    pick_rows,
    problems,
)

DIGEST = "sha256:" + "c" * 64
ROWS = [{"age": 40, "plan": "basic"}, {"age": 51, "plan": None}]


def golden(probabilities=(0.25, 0.75)) -> Golden:
    return Golden("churn", "3", ROWS, [0, 1], list(probabilities) if probabilities else None, "data/split/test.csv")


def observed(**changes) -> Observed:
    answers = {
        "health": Answer(200, {"status": "ok"}),
        "ready": Answer(200, {"status": "ready"}),
        "metadata": Answer(200, {"name": "churn", "version": "3", "image_digest": DIGEST}),
        "predict": Answer(200, {"predictions": [0, 1], "probabilities": [0.25, 0.75], "model_version": "3"}),
    }
    return Observed(**{**answers, **changes})


def test_a_deployment_that_answers_as_expected_passes():
    assert problems(observed(), golden(), DIGEST) == []


def test_probabilities_may_differ_in_the_last_bits_only():
    close = 0.75 * (1 + REL_TOL / 10)
    assert problems(observed(predict=Answer(200, {"predictions": [0, 1], "probabilities": [0.25, close]})),
                    golden(), DIGEST) == []
    far = 0.75 * (1 + REL_TOL * 10)
    found = problems(observed(predict=Answer(200, {"predictions": [0, 1], "probabilities": [0.25, far]})),
                     golden(), DIGEST)
    assert len(found) == 1 and "probabilities[1]: expected 0.75" in found[0] and "version 3" in found[0]


def test_a_different_label_is_a_mismatch_even_when_probabilities_agree():
    found = problems(observed(predict=Answer(200, {"predictions": [1, 1], "probabilities": [0.25, 0.75]})),
                     golden(), DIGEST)
    assert found and "predictions[0]: expected 0, got 1" in found[0]


@pytest.mark.parametrize(("key", "value"),
                         [("name", "other"), ("version", "4"), ("image_digest", "sha256:" + "d" * 64)])
def test_metadata_must_name_the_expected_model_version_and_digest(key, value):
    meta = {"name": "churn", "version": "3", "image_digest": DIGEST, key: value}
    found = problems(observed(metadata=Answer(200, meta)), golden(), DIGEST)
    assert found == [f"GET /metadata: {key} is {value!r}, expected " + repr({"name": "churn", "version": "3",
                                                                           "image_digest": DIGEST}[key])]


def test_every_failing_endpoint_is_reported_with_what_it_answered():
    found = problems(observed(health=Answer(None, error="ConnectError: refused"), ready=Answer(503, {"detail": "x"}),
                              predict=Answer(422, {"detail": "age: bad"})), golden(), DIGEST)
    assert found[0] == "GET /health: no answer (ConnectError: refused)"
    assert found[1].startswith("GET /ready: HTTP 503")
    assert found[2].startswith("POST /predict (2 golden rows): HTTP 422") and "age: bad" in found[2]


def test_a_regressor_has_no_probabilities_to_compare():
    regression = Golden("spend", "1", ROWS, [10.5, 20.25], None, "x.csv")
    answer = Answer(200, {"predictions": [10.5, 20.25 + 1e-12]})
    meta = Answer(200, {"name": "spend", "version": "1", "image_digest": None})
    assert problems(observed(predict=answer, metadata=meta), regression, None) == []


def test_mismatches_checks_lengths_types_and_nested_lists():
    assert mismatches("p", [1, 2], [1]) == ["p: expected 2 values, got 1"]
    assert mismatches("p", [1], None) == ["p: expected 1 values, got NoneType"]
    assert mismatches("p", ["yes"], [1]) == ["p[0]: expected 'yes', got 1"]
    assert mismatches("p", [True], [1]) == ["p[0]: expected True, got 1"]  # a bool label is not a number
    assert mismatches("p", [[0.1, 0.9]], [[0.1, 0.8]]) == ["p[0][1]: expected 0.9, got 0.8"]


def test_pick_rows_spreads_over_the_data_and_includes_a_missing_value():
    frame = pd.DataFrame({"a": np.arange(100.0), "b": ["x"] * 100})
    frame.loc[37, "a"] = np.nan
    picks = pick_rows(frame, 5)
    assert len(picks) == 5 and 37 in picks and picks[0] == 0
    assert pick_rows(frame.dropna(), 5) == [0, 24, 49, 73, 98]
    assert pick_rows(frame.iloc[:3], 50) == [0, 1, 2]
    assert pick_rows(frame.iloc[:0], 5) == []


def test_json_rows_are_plain_json_with_nulls():
    frame = pd.DataFrame({"age": pd.array([40, None], dtype="Int64"), "charge": [1.5, math.nan],
                          "plan": pd.array(["basic", None], dtype="string"), "target": [0, 1]})
    assert json_rows(frame, ["age", "charge", "plan"]) == [{"age": 40, "charge": 1.5, "plan": "basic"},
                                                           {"age": None, "charge": None, "plan": None}]
    assert type(json_rows(frame, ["age"])[0]["age"]) is int


def test_golden_round_trips_and_refuses_what_is_not_golden():
    assert Golden.from_dict(golden().to_dict(), "g.json") == golden()
    with pytest.raises(GoldenError, match="g.json: not golden expectations"):
        Golden.from_dict({"rows": []}, "g.json")
    with pytest.raises(GoldenError, match="2 rows but 1 predictions"):
        Golden.from_dict({**golden().to_dict(), "predictions": [0]}, "g.json")

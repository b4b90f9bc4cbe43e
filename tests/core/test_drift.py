"""The drift decision as a table of cases, and Evidently run for real on the template's simulated production data."""

from __future__ import annotations

import math

import pytest
from gitops_ml.core.drift import decide_drift
from gitops_ml.io.csv_input import read_strings
from gitops_ml.io.evidently_drift import measure_drift

from tests import template_files

# (id, p-values per column, threshold, max_drifted_share, dataset drifted?, drifted columns)
CASES = [
    ("nothing drifted", {"a": 0.5, "b": 0.9, "c": 0.2}, 0.05, 0.3, False, []),
    ("one of three is under the share", {"a": 0.01, "b": 0.9, "c": 0.2}, 0.05, 0.5, False, ["a"]),
    ("one of three reaches a 1/3 share", {"a": 0.01, "b": 0.9, "c": 0.2}, 0.05, 1 / 3, True, ["a"]),
    ("all drifted", {"a": 1e-10, "b": 0.001}, 0.05, 0.3, True, ["a", "b"]),
    ("a p-value equal to the threshold is not drift", {"a": 0.05, "b": 0.05}, 0.05, 0.3, False, []),
    ("an uncomputable score counts as drift", {"a": math.nan, "b": 0.9}, 0.05, 0.5, True, ["a"]),
    ("a zero share needs at least one drifted column", {"a": 0.5}, 0.05, 0.0, False, []),
    ("a zero share with one drifted column", {"a": 0.01, "b": 0.5}, 0.05, 0.0, True, ["a"]),
    ("a stricter threshold", {"a": 0.03, "b": 0.04}, 0.01, 0.3, False, []),
]


@pytest.mark.parametrize(("scores", "threshold", "max_share", "drifted", "columns"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_decide_drift(scores, threshold, max_share, drifted, columns):
    result = decide_drift(scores, threshold, max_share)
    assert result.drifted is drifted
    assert result.drifted_columns == columns
    assert result.share == pytest.approx(len(columns) / len(scores))
    assert [c.column for c in result.columns] == list(scores)  # the caller's order is kept


def test_decide_drift_needs_columns():
    with pytest.raises(ValueError, match="no columns"):
        decide_drift({}, 0.05, 0.3)


def test_drift_result_serialises_without_nan():
    as_dict = decide_drift({"a": math.nan, "b": 0.123456789}, 0.05, 0.3).to_dict()
    assert as_dict["columns"] == [{"column": "a", "score": None, "drifted": True},
                                  {"column": "b", "score": 0.123457, "drifted": False}]


@pytest.fixture(scope="module")
def reference():
    return read_strings(template_files.sample_csv())


def _current(tmp_path, drift: float):
    path = tmp_path / f"current-{drift}.csv"
    template_files.simulate(1000, seed=7, drift=drift).to_csv(path, index=False)
    return read_strings(path)  # read back as text, the way data-check sees it


def test_evidently_detects_simulated_drift_and_writes_its_report(reference, tmp_path):
    contract = template_files.contract()
    html = tmp_path / "drift.html"
    result = measure_drift(reference, _current(tmp_path, drift=1.0), contract, html)
    assert result.drifted
    assert {"age", "monthly_charges", "support_calls", "contract"} <= set(result.drifted_columns)
    assert [c.column for c in result.columns] == contract.data.features
    assert html.stat().st_size > 10_000 and "<html" in html.read_text(encoding="utf-8")[:1000].lower()


def test_evidently_finds_no_drift_in_an_independent_sample_without_drift(reference, tmp_path):
    result = measure_drift(reference, _current(tmp_path, drift=0.0), template_files.contract())
    assert not result.drifted
    assert result.share < 0.3


def test_ks_columns_drift_at_a_p_value_equal_to_the_threshold():
    """Evidently decides KS as p <= threshold and chi-square as p < threshold; `inclusive` names the KS columns."""
    result = decide_drift({"num": 0.05, "cat": 0.05}, 0.05, 0.5, inclusive={"num"})
    assert result.drifted_columns == ["num"]
    assert result.drifted


# -- the monitoring verdict and live performance ---------------------------------------------------

from gitops_ml.core.drift import (  # noqa: E402
    PERF_DROP,
    PERF_FEW,
    PERF_FLOOR,
    PERF_NONE,
    PERF_OK,
    ColumnDrift,
    drift_markdown,
    judge_performance,
    monitoring_verdict,
)


def _perf(live, labels=500, offline=None, floors=None, max_drop=0.05):
    return judge_performance(live, offline or {"roc_auc": 0.85, "log_loss": 0.40}, labels, primary="roc_auc",
                             floors=floors if floors is not None else {"roc_auc": 0.70}, max_drop=max_drop,
                             min_labels=100, lower_is_better={"log_loss"})


@pytest.mark.parametrize(("live", "labels", "floors", "status"), [
    ({"roc_auc": 0.84}, 500, None, PERF_OK),
    ({"roc_auc": 0.78}, 500, None, PERF_DROP),  # 0.07 worse than offline 0.85
    ({"roc_auc": 0.65}, 500, None, PERF_FLOOR),
    ({"roc_auc": math.nan}, 500, None, PERF_FLOOR),  # undefined (one class): fails closed
    ({"roc_auc": 0.84, "log_loss": 0.9}, 500, {"log_loss": 0.6}, PERF_FLOOR),  # lower is better: a ceiling
    ({"roc_auc": 0.30}, 50, None, PERF_FEW),
    ({}, 0, None, PERF_NONE),
])
def test_live_performance(live, labels, floors, status):
    assert _perf(live, labels, floors=floors).status == status


def test_the_verdict_insufficient_stable_drifted_and_the_alert():
    stable = decide_drift({"a": 0.5, "b": 0.6}, 0.05, 0.5)
    drifted = decide_drift({"a": 0.001, "b": 0.6}, 0.05, 0.5)
    few = monitoring_verdict(50, 200, drifted, None, None)
    assert (few.status, few.drifted, few.retrain) == ("insufficient data", False, False)
    assert "50 current row(s), fewer than drift.min_current_rows 200" in few.reasons[0]
    assert monitoring_verdict(500, 200, None, None, None, missing="no champion").status == "insufficient data"
    calm = monitoring_verdict(500, 200, stable, ColumnDrift("prediction", 0.4, False), _perf({"roc_auc": 0.84}))
    assert (calm.status, calm.drifted, calm.retrain, calm.alert) == ("stable", False, False, False)
    moved = monitoring_verdict(500, 200, drifted, None, None)
    assert (moved.status, moved.retrain, moved.alert) == ("drifted", True, False)
    by_predictions = monitoring_verdict(500, 200, stable, ColumnDrift("prediction", 0.001, True), None)
    assert by_predictions.drifted and "predictions drifted" in by_predictions.reasons[0]
    worse = monitoring_verdict(500, 200, stable, None, _perf({"roc_auc": 0.78}))
    assert (worse.status, worse.retrain, worse.alert) == ("stable", True, False)
    broken = monitoring_verdict(500, 200, stable, None, _perf({"roc_auc": 0.6}))
    assert (broken.retrain, broken.alert) == (True, True) and "below the floor" in broken.reasons[0]


def test_the_markdown_names_the_drifted_columns_and_the_measures():
    result = {"status": "drifted", "current": {"source": "data/production/current.csv", "rows": 900},
              "reference": {"source": "m v3", "rows": 1200}, "reasons": ["1/2 column(s) drifted (age)"],
              "data_drift": {**decide_drift({"age": 1e-9, "region": 0.4}, 0.05, 0.3).to_dict(),
                             "columns": [{"column": "age", "test": "ks", "statistic": 0.31, "score": 1e-9,
                                          "drifted": True},
                                         {"column": "region", "test": "chisquare", "statistic": 2.5, "score": 0.4,
                                          "drifted": False}]},
              "prediction_drift": {"test": "chisquare", "p_value": 0.002, "drifted": True},
              "performance": _perf({"roc_auc": 0.6}).to_dict()}
    text = drift_markdown(result)
    assert "Drift: drifted" in text and "| age | ks | 0.31 | 1.0e-09 | **yes** |" in text
    assert "| region | chisquare | 2.5 | 0.4 | no |" in text
    assert "Prediction drift (chisquare): p = 0.002, **drifted**" in text
    assert "| roc_auc | 0.6 | 0.85 |" in text and "below floor" in text

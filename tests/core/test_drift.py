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

"""Evidently: the drift report people read (HTML), and the reference implementation the engine matches.

The drift decision is computed by `io.drift_engine` over all rows; Evidently renders its HTML report
on a bounded sample (`HTML_SAMPLE_ROWS` of each dataset), so the report stays fast and small however
large the data. `measure_drift` runs Evidently's own tests on whole frames: the benchmark and the
tests compare the engine with it.

Evidently picks a test per column by type and size unless told (above 1000 rows it switches
numbers to Wasserstein distance and categories to Jensen-Shannon, which score on another scale than
p-values). The contract's `drift.column_threshold` is one p-value, so every column gets a p-value
test here: Kolmogorov-Smirnov for numbers, chi-square for categories and booleans. Evidently is
imported inside the functions: importing it takes seconds.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gitops_ml.core.contract import Contract
from gitops_ml.core.drift import CHISQUARE, KS, DriftResult, decide_drift

NUMERIC_TEST, CATEGORICAL_TEST = KS, CHISQUARE
HTML_SAMPLE_ROWS = 5000
METHOD = ("p-value of a two-sample test per column over all rows, as Evidently computes it: "
          "Kolmogorov-Smirnov (numeric), chi-square (categorical)")


def _typed(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """String data as Evidently needs it; values the data checks flag as non-numeric become missing."""
    typed = frame[numeric + categorical].copy()
    for name in numeric:
        typed[name] = pd.to_numeric(typed[name], errors="coerce")
    return typed


def _split(contract: Contract, columns) -> tuple[list[str], list[str]]:
    features = [name for name in contract.data.features if name in columns]
    numeric = [name for name in features if contract.data.columns[name].is_numeric]
    return numeric, [name for name in features if name not in numeric]


def _run(reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str], categorical: list[str],
         contract: Contract):
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    report = Report(
        [DataDriftPreset(columns=numeric + categorical, num_method=NUMERIC_TEST, cat_method=CATEGORICAL_TEST,
                         threshold=contract.drift.column_threshold, drift_share=contract.drift.max_drifted_share)],
        include_tests=True,
    )
    return report.run(reference_data=Dataset.from_pandas(reference, data_definition=definition),
                      current_data=Dataset.from_pandas(current, data_definition=definition))


def save_html(reference: pd.DataFrame, current: pd.DataFrame, contract: Contract, html_path: Path) -> None:
    """Evidently's HTML report of typed frames (numbers as floats, categories as text), e.g. the engine's samples."""
    numeric, categorical = _split(contract, set(reference.columns) & set(current.columns))
    snapshot = _run(reference[numeric + categorical], current[numeric + categorical], numeric, categorical, contract)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(html_path))


def measure_drift(reference: pd.DataFrame, current: pd.DataFrame, contract: Contract,
                  html_path: Path | None = None) -> DriftResult:
    """Evidently's own drift decision on whole frames of strings (as read for the checks)."""
    numeric, categorical = _split(contract, set(reference.columns) & set(current.columns))
    snapshot = _run(_typed(reference, numeric, categorical), _typed(current, numeric, categorical), numeric,
                    categorical, contract)
    if html_path is not None:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html_path))
    scores = {
        metric["config"]["column"]: float(metric["value"])
        for metric in snapshot.dict()["metrics"]
        if metric["config"]["type"].endswith(":ValueDrift")
    }
    ordered = {name: scores[name] for name in numeric + categorical}  # contract order, for stable reports
    return decide_drift(ordered, contract.drift.column_threshold, contract.drift.max_drifted_share,
                        inclusive=set(numeric))  # Evidently: KS drifts at p <= threshold, chi-square at p <

"""Drift of current data against reference data, measured by Evidently and decided by `core.drift`.

Evidently picks a test per column by type and size unless told; its distance-based tests (for
larger samples) score on another scale than p-values. The contract's `drift.column_threshold` is
one number, so every column gets a p-value test here: Kolmogorov-Smirnov for numbers, chi-square
for categories and booleans. Evidently is imported inside the function: importing it takes seconds.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gitops_ml.core.contract import Contract
from gitops_ml.core.drift import DriftResult, decide_drift

NUMERIC_TEST, CATEGORICAL_TEST = "ks", "chisquare"
METHOD = "p-value of a two-sample test per column: Kolmogorov-Smirnov (numeric), chi-square (categorical)"


def _typed(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """String data as Evidently needs it; values the data checks flag as non-numeric become missing."""
    typed = frame[numeric + categorical].copy()
    for name in numeric:
        typed[name] = pd.to_numeric(typed[name], errors="coerce")
    return typed


def measure_drift(reference: pd.DataFrame, current: pd.DataFrame, contract: Contract,
                  html_path: Path | None = None) -> DriftResult:
    """Drift of the contract's feature columns (all values strings, as read for the checks)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = contract.data.columns
    features = [name for name in contract.data.features if name in reference.columns and name in current.columns]
    numeric = [name for name in features if columns[name].is_numeric]
    categorical = [name for name in features if not columns[name].is_numeric]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    report = Report(
        [DataDriftPreset(columns=numeric + categorical, num_method=NUMERIC_TEST, cat_method=CATEGORICAL_TEST,
                         threshold=contract.drift.column_threshold, drift_share=contract.drift.max_drifted_share)],
        include_tests=True,
    )
    snapshot = report.run(
        reference_data=Dataset.from_pandas(_typed(reference, numeric, categorical), data_definition=definition),
        current_data=Dataset.from_pandas(_typed(current, numeric, categorical), data_definition=definition),
    )
    if html_path is not None:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html_path))
    scores = {
        metric["config"]["column"]: float(metric["value"])
        for metric in snapshot.dict()["metrics"]
        if metric["config"]["type"].endswith(":ValueDrift")
    }
    ordered = {name: scores[name] for name in numeric + categorical}  # contract order, for stable reports
    return decide_drift(ordered, contract.drift.column_threshold, contract.drift.max_drifted_share)

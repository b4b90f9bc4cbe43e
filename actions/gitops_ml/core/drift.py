"""The drift decision: from per-column test p-values to "has this dataset drifted?".

Kept apart from Evidently (which computes the p-values) so the decision the drift workflow and
data-check act on is a pure function with unit tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from gitops_ml.core.checks import CheckResult


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    score: float  # p-value of the column's two-sample test; small means the distributions differ
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    drifted: bool
    share: float  # drifted columns / columns tested
    columns: tuple[ColumnDrift, ...]
    threshold: float
    max_drifted_share: float

    @property
    def drifted_columns(self) -> list[str]:
        return [column.column for column in self.columns if column.drifted]

    def to_dict(self) -> dict:
        return {
            "drifted": self.drifted,
            "share": round(self.share, 6),
            "threshold": self.threshold,
            "max_drifted_share": self.max_drifted_share,
            "drifted_columns": self.drifted_columns,
            "columns": [
                {"column": c.column, "score": None if math.isnan(c.score) else float(f"{c.score:.6g}"),
                 "drifted": c.drifted}
                for c in self.columns
            ],
        }


def decide_drift(column_scores: Mapping[str, float], threshold: float, max_drifted_share: float) -> DriftResult:
    """A column drifted when its p-value is below `threshold` (or could not be computed: fail closed);
    the dataset drifted when at least `max_drifted_share` of the columns did, and at least one did.
    """
    if not column_scores:
        raise ValueError("no columns to decide drift on")
    columns = tuple(
        ColumnDrift(name, float(score), math.isnan(score) or score < threshold)
        for name, score in column_scores.items()
    )
    drifted = sum(column.drifted for column in columns)
    share = drifted / len(columns)
    return DriftResult(drifted > 0 and share >= max_drifted_share, share, columns, threshold, max_drifted_share)


def drift_check(drift: DriftResult, fail_on_drift: bool) -> CheckResult:
    """The data check's verdict on drift: pass, or warn (fail when asked) naming the drifted columns."""
    seen = f"{len(drift.drifted_columns)}/{len(drift.columns)} column(s) ({100 * drift.share:.0f}%)"
    expected = f"< {100 * drift.max_drifted_share:.0f}% of columns with p < {drift.threshold:g}"
    if not drift.drifted:
        return CheckResult("drift", None, "pass", seen, expected, f"no dataset drift ({seen} drifted)")
    return CheckResult(
        "drift", None, "fail" if fail_on_drift else "warn", seen, expected,
        f"dataset drift: {seen} drifted ({', '.join(drift.drifted_columns)}), at or over drift.max_drifted_share "
        f"{drift.max_drifted_share:g}; see drift.html, and retrain on recent data if the change is real",
    )


def drift_skipped(reason: str) -> CheckResult:
    """Drift could not be measured: a warning that says why and how to measure it."""
    return CheckResult("drift", None, "warn", "skipped", "reference data",
                       f"drift not measured: {reason}; pass --reference with a CSV to compare against, or --no-drift")

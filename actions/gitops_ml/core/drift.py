"""The drift decision: from per-column test p-values to "has this dataset drifted?".

Kept apart from Evidently (which computes the p-values) so the decision the drift workflow and
data-check act on is a pure function with unit tests.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Collection, Mapping, Sequence
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


def decide_drift(column_scores: Mapping[str, float], threshold: float, max_drifted_share: float,
                 inclusive: Collection[str] = ()) -> DriftResult:
    """A column drifted when its p-value is below `threshold` (or could not be computed: fail closed);
    the dataset drifted when at least `max_drifted_share` of the columns did, and at least one did.

    Columns in `inclusive` drift at a p-value equal to the threshold too: Evidently's KS test decides
    `p <= threshold`, its chi-square test `p < threshold`.
    """
    if not column_scores:
        raise ValueError("no columns to decide drift on")
    columns = tuple(
        ColumnDrift(name, float(score),
                    math.isnan(score) or score < threshold or (name in inclusive and score == threshold))
        for name, score in column_scores.items()
    )
    drifted = sum(column.drifted for column in columns)
    share = drifted / len(columns)
    return DriftResult(drifted > 0 and share >= max_drifted_share, share, columns, threshold, max_drifted_share)


# -- the statistics, from aggregates the engine computes over the data (exactly Evidently's tests) ---

KS, CHISQUARE = "ks", "chisquare"
# scipy.stats.ks_2samp's method="auto" (Evidently's call) is exact up to this many rows per sample.
KS_EXACT_MAX_N = 10_000


@dataclass(frozen=True)
class ColumnTest:
    """One column's two-sample test: which test, its statistic and p-value, and the rows it saw."""

    column: str
    test: str  # KS or CHISQUARE
    statistic: float
    p_value: float
    n_reference: int
    n_current: int
    exact: bool = True  # False: a p-value far past the threshold, from Kolmogorov's limit (see ks_asymptotic)


def _en(n_reference: int, n_current: int) -> float:
    m, n = sorted([float(n_reference), float(n_current)], reverse=True)
    return float(round(m * n / (m + n)))


@functools.lru_cache(maxsize=64)
def ks_probe(en: float, threshold: float) -> float:
    """A KS statistic whose exact p-value (scipy's kstwo.sf) is at most `threshold`, just past it.

    kstwo.sf is decreasing in D, so every larger D drifts too; and scipy computes the sf near the
    threshold in milliseconds, while a tiny p-value (strong drift) costs it about a second per column
    for some sample sizes (e.g. 1M rows each). The probe starts from Kolmogorov's limit.
    """
    from scipy.stats import distributions

    d = 0.9 * float(distributions.kstwobign.isf(threshold)) / math.sqrt(en)  # below it: finite n, smaller p
    for _ in range(100):
        d *= 1.01
        if float(distributions.kstwo.sf(d, en)) <= threshold:
            return d
    return math.inf  # never reached in practice; every column then gets the exact computation


def ks_asymptotic(d_max: float, d_min: float, n_reference: int, n_current: int,
                  threshold: float | None = None) -> tuple[float, float, bool]:
    """KS statistic, two-sided p-value and whether that p-value is scipy's own, from the extremes of
    ECDF(reference) - ECDF(current).

    The same arithmetic as `scipy.stats.ks_2samp` above `KS_EXACT_MAX_N` rows: D is the larger of
    max(diff) and -min(diff) (clipped at 0), and p = kstwo.sf(D, round(n*m/(n+m))). With a
    `threshold`, a D at or past `ks_probe` is drift by monotonicity, and its (tiny) p-value is
    Kolmogorov's limit instead (flagged not exact): the decision is still exactly scipy's.
    """
    from scipy.stats import distributions

    low = min(max(-d_min, 0.0), 1.0)
    d = float(low if low > d_max else d_max)
    en = _en(n_reference, n_current)
    if threshold is not None and d >= ks_probe(en, threshold):
        limit = float(distributions.kstwobign.sf(math.sqrt(en) * d))
        return d, min(limit, threshold), False
    p = float(distributions.kstwo.sf(d, en))
    return d, min(max(p, 0.0), 1.0), True


def ks_small(reference: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    """KS statistic and p-value of small samples: scipy's own exact computation, as Evidently calls it."""
    from scipy.stats import ks_2samp

    result = ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def chisquare_counts(reference: Mapping[str, int], current: Mapping[str, int]) -> tuple[float, float]:
    """Evidently's chi-square test from category counts: the current counts against the reference counts
    scaled to the current size, over the union of the categories seen (missing values left out)."""
    from scipy.stats import chisquare

    keys = list(dict.fromkeys([*current, *reference]))
    n_reference, n_current = sum(reference.values()), sum(current.values())
    k_norm = n_current / n_reference
    observed = [current.get(key, 0) for key in keys]
    expected = [reference.get(key, 0) * k_norm for key in keys]
    with warnings.catch_warnings():  # a category absent from the reference: infinite statistic, p = 0
        warnings.simplefilter("ignore")
        result = chisquare(observed, expected)
    return float(result.statistic), float(result.pvalue)


def decide_tests(tests: Sequence[ColumnTest], threshold: float, max_drifted_share: float) -> DriftResult:
    """The drift decision over the engine's column tests, with each test's own comparison."""
    return decide_drift({t.column: t.p_value for t in tests}, threshold, max_drifted_share,
                        inclusive={t.column for t in tests if t.test == KS})


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

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


# -- monitoring: the verdict of `gitops-ml drift` ----------------------------------------------------

STABLE, DRIFTED, INSUFFICIENT = "stable", "drifted", "insufficient data"
PERF_OK, PERF_FLOOR, PERF_DROP, PERF_FEW, PERF_NONE = "ok", "below floor", "dropped", "insufficient labels", "no labels"


@dataclass(frozen=True)
class Performance:
    """Live performance (from labelled current rows) against the champion's offline metrics and the floors."""

    status: str  # PERF_*
    labels: int
    live: dict[str, float]
    offline: dict[str, float]
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        def clean(values: Mapping[str, float]) -> dict:
            return {k: None if math.isnan(v) else float(f"{v:.6g}") for k, v in values.items()}
        return {"status": self.status, "labels": self.labels, "live": clean(self.live), "offline": clean(self.offline),
                "problems": list(self.problems)}


def judge_performance(live: Mapping[str, float], offline: Mapping[str, float], labels: int, *, primary: str,
                      floors: Mapping[str, float], max_drop: float, min_labels: int,
                      lower_is_better: Collection[str]) -> Performance:
    """Below a floor (the contract's promotion.floors) is an alert; the primary metric more than `max_drop`
    worse than the champion's offline value is a drop. Too few labels: not judged."""
    live, offline = dict(live), dict(offline)
    if labels == 0:
        return Performance(PERF_NONE, 0, live, offline)
    if labels < min_labels:
        return Performance(PERF_FEW, labels, live, offline,
                           (f"{labels} labelled row(s), fewer than drift.min_labels {min_labels}",))
    below = []
    for metric, floor in floors.items():
        value = live.get(metric, math.nan)
        lower = metric in lower_is_better
        if math.isnan(value) or (value > floor if lower else value < floor):
            below.append(f"live {metric} {value:.4g} {'above' if lower else 'below'} the floor {floor:g}")
    if below:
        return Performance(PERF_FLOOR, labels, live, offline, tuple(below))
    value, was = live.get(primary, math.nan), offline.get(primary, math.nan)
    if not math.isnan(value) and not math.isnan(was):
        worse = value - was if primary in lower_is_better else was - value
        if worse > max_drop:
            return Performance(PERF_DROP, labels, live, offline,
                               (f"live {primary} {value:.4g} is {worse:.4g} worse than the champion's offline "
                                f"{was:.4g} (drift.max_live_drop {max_drop:g})",))
    return Performance(PERF_OK, labels, live, offline)


@dataclass(frozen=True)
class Verdict:
    status: str  # STABLE, DRIFTED or INSUFFICIENT
    drifted: bool
    retrain: bool  # open or update the retraining pull request
    alert: bool  # live performance below the floor: open or update the alert issue
    reasons: tuple[str, ...]


def monitoring_verdict(rows: int, min_rows: int, data: DriftResult | None, prediction: ColumnDrift | None,
                       performance: Performance | None, missing: str | None = None) -> Verdict:
    """Insufficient data is its own outcome (never 'no drift'); drift is the dataset's drift or the predictions';
    retraining is due on drift or a live performance drop; the alert is for performance below the floor."""
    if missing or rows < min_rows or data is None:
        why = missing or f"{rows} current row(s), fewer than drift.min_current_rows {min_rows}"
        return Verdict(INSUFFICIENT, False, False, False, (f"insufficient data: {why}",))
    reasons = []
    if data.drifted:
        reasons.append(f"{len(data.drifted_columns)}/{len(data.columns)} column(s) drifted "
                       f"({', '.join(data.drifted_columns)}), at or over drift.max_drifted_share "
                       f"{data.max_drifted_share:g}")
    if prediction is not None and prediction.drifted:
        reasons.append(f"the predictions drifted (p = {prediction.score:.3g})")
    drifted = bool(reasons)
    alert = performance is not None and performance.status == PERF_FLOOR
    dropped = performance is not None and performance.status in (PERF_FLOOR, PERF_DROP)
    if dropped:
        reasons += list(performance.problems)
    return Verdict(DRIFTED if drifted else STABLE, drifted, drifted or dropped, alert, tuple(reasons))


def _p(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3g}" if value >= 1e-4 else f"{value:.1e}"


def drift_markdown(result: Mapping) -> str:
    """The job summary / PR body table of a drift result (the JSON `gitops-ml drift` writes)."""
    status = result["status"]
    icon = {"drifted": "🔴", "stable": "🟢"}.get(status, "⚪")
    lines = [f"### {icon} Drift: {status}", ""]
    lines.append(f"Current data: {result['current']['source']} ({result['current']['rows']} rows); reference: "
                 f"{result['reference']['source']} ({result['reference']['rows']} rows).")
    for reason in result.get("reasons", []):
        lines.append(f"- {reason}")
    data = result.get("data_drift")
    if data:
        lines += ["", f"Share of drifted columns: **{100 * data['share']:.0f}%** (dataset drift at "
                      f"{100 * data['max_drifted_share']:.0f}%; a column drifts at p < {data['threshold']:g}).", "",
                  "| column | test | statistic | p-value | drifted |", "| --- | --- | --- | --- | --- |"]
        for column in data["columns"]:
            mark = "**yes**" if column["drifted"] else "no"
            lines.append(f"| {column['column']} | {column.get('test', '')} | {_p(column.get('statistic'))} | "
                         f"{_p(column['score'])} | {mark} |")
    prediction = result.get("prediction_drift")
    if prediction:
        lines += ["", f"Prediction drift ({prediction['test']}): p = {_p(prediction['p_value'])}, "
                      f"{'**drifted**' if prediction['drifted'] else 'not drifted'}."]
    performance = result.get("performance")
    if performance and performance["status"] != PERF_NONE:
        lines += ["", f"Live performance on {performance['labels']} labelled row(s): **{performance['status']}**.", ""]
        if performance["live"]:
            lines += ["| metric | live | champion (offline) |", "| --- | --- | --- |"]
            for metric, value in performance["live"].items():
                lines.append(f"| {metric} | {_p(value)} | {_p(performance['offline'].get(metric))} |")
        lines += [f"- {problem}" for problem in performance.get("problems", [])]
    return "\n".join(lines) + "\n"

"""The promotion policy as one pure function: challenger vs champion under the contract.

Every rule yields a `RuleOutcome`, passed or not, so the report can show the whole table and not
only the first failure. Missing or NaN values fail closed: a metric we could not compute is never
evidence that a model is good enough.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from gitops_ml.core.contract import LOWER_IS_BETTER, Contract, improvement


class Scored(Protocol):
    """What the policy reads from an evaluation (`core.evaluation.Evaluation` fits)."""

    metrics: dict[str, float]
    slices: dict[str, dict[str, float]]
    latency_p95_ms: float | None


@dataclass(frozen=True)
class RuleOutcome:
    rule: str  # primary | guard | floor | latency | fairness | bootstrap
    metric: str | None
    champion: float | None
    challenger: float | None
    delta: float | None
    threshold: float | None
    passed: bool
    detail: str


@dataclass(frozen=True)
class Decision:
    verdict: str  # promote | reject
    primary: str
    first_champion: bool
    rules: tuple[RuleOutcome, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def failed(self) -> list[RuleOutcome]:
        return [rule for rule in self.rules if not rule.passed]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rules": [asdict(rule) for rule in self.rules], "notes": list(self.notes)}


def _missing(*values: float | None) -> bool:
    return any(value is None or math.isnan(value) for value in values)


def _primary(metric: str, new: float, old: float, min_improvement: float) -> RuleOutcome:
    delta = improvement(metric, new, old)
    passed = not _missing(delta) and delta >= min_improvement
    detail = f"improvement must be at least {min_improvement:g}"
    return RuleOutcome("primary", metric, old, new, delta, min_improvement, passed, detail)


def _guard(metric: str, new: float, old: float, max_drop: float) -> RuleOutcome:
    delta = improvement(metric, new, old)
    passed = not _missing(delta) and delta >= -max_drop
    return RuleOutcome("guard", metric, old, new, delta, max_drop, passed, f"may not worsen by more than {max_drop:g}")


def _floor(metric: str, new: float, old: float | None, floor: float) -> RuleOutcome:
    lower = metric in LOWER_IS_BETTER
    passed = not _missing(new) and (new <= floor if lower else new >= floor)
    detail = f"must be {'at most' if lower else 'at least'} {floor:g}"
    return RuleOutcome("floor", metric, old, new, None, floor, passed, detail)


def _latency(new: float | None, old: float | None, budget: float) -> RuleOutcome:
    passed = not _missing(new) and new <= budget
    detail = f"one-row predict p95 must be at most {budget:g} ms" + (" (not measured)" if _missing(new) else "")
    delta = None if _missing(new, old) else old - new
    return RuleOutcome("latency", "latency_p95_ms", old, new, delta, budget, passed, detail)


def _fairness(metric: str, slices: dict[str, dict[str, float]], max_gap: float, min_size: int,
              undefined: dict[str, dict[str, str]]) -> RuleOutcome:
    """The max-min gap of `metric` across groups of at least `min_size` rows.

    Smaller groups are left out. A group where the metric is undefined (e.g. ROC AUC of a group
    holding one class) fails the rule closed, naming the group and the reason: the gap cannot be
    known, and an unknown gap is never evidence of a fair model.
    """
    values = {group: row.get(metric, math.nan) for group, row in slices.items() if row.get("rows", 0) >= min_size}
    if len(values) < 2:
        detail = f"not assessed: fewer than two groups with at least {min_size} rows"
        return RuleOutcome("fairness", metric, None, None, None, max_gap, True, detail)
    unknown = sorted(group for group, value in values.items() if _missing(value))
    if unknown:
        why = "; ".join(f"'{g}': {undefined.get(g, {}).get(metric, 'undefined')}" for g in unknown)
        detail = (f"{metric} is undefined for group(s) {why}; the gap cannot be assessed, so the rule fails: "
                  f"use a fairness metric every group defines (e.g. accuracy) or raise min_group_size")
        return RuleOutcome("fairness", metric, None, math.nan, None, max_gap, False, detail)
    worst, best = min(values, key=values.get), max(values, key=values.get)
    gap = abs(values[best] - values[worst])
    if metric in LOWER_IS_BETTER:
        best, worst = worst, best
    if gap == 0:
        detail = f"all {len(values)} groups have the same {metric}; the gap must be at most {max_gap:g}"
    else:
        detail = f"gap between groups '{best}' (best) and '{worst}' (worst) must be at most {max_gap:g}"
    return RuleOutcome("fairness", metric, None, gap, None, max_gap, gap <= max_gap, detail)


def _bootstrap(metric: str, ci, require: str, margin: float) -> tuple[RuleOutcome, str | None]:
    if ci is None or _missing(ci.delta, ci.low, ci.high):
        return RuleOutcome("bootstrap", metric, None, None, None, None, False, "confidence interval unavailable"), None
    level = f"{ci.confidence:.0%} CI [{ci.low:+.4f}, {ci.high:+.4f}]"
    if require == "significance":
        passed, threshold, detail = ci.low > 0, 0.0, f"{level}: lower bound must be above 0 (significance)"
    else:
        passed, threshold = ci.low >= -margin, -margin
        detail = f"{level}: lower bound must be at least {-margin:g} (non-inferiority)"
    note = None
    if ci.delta > 0 and ci.low <= 0:
        note = f"The {metric} improvement ({ci.delta:+.4f}) is within the noise: its {level} includes 0."
    return RuleOutcome("bootstrap", metric, None, None, ci.delta, threshold, passed, detail), note


def decide(challenger: Scored, champion: Scored | None, contract: Contract, ci=None) -> Decision:
    """Promote only when every rule passes. Without a champion only floors, latency and fairness apply.

    `ci` is the bootstrap interval of the primary metric (`core.bootstrap.Interval`), needed with a champion.
    """
    policy, primary = contract.promotion, contract.metrics.primary
    new, old = challenger.metrics, champion.metrics if champion else {}
    nan = math.nan
    rules: list[RuleOutcome] = []
    notes: list[str] = []
    if champion is not None:
        rules.append(_primary(primary, new.get(primary, nan), old.get(primary, nan), policy.min_improvement))
        for metric, guard in policy.guards.items():
            rules.append(_guard(metric, new.get(metric, nan), old.get(metric, nan), guard.max_drop))
    for metric, floor in policy.floors.items():
        rules.append(_floor(metric, new.get(metric, nan), old.get(metric), floor))
    if policy.latency_p95_ms is not None:
        rules.append(_latency(challenger.latency_p95_ms, champion.latency_p95_ms if champion else None,
                              policy.latency_p95_ms))
    if policy.fairness is not None:
        fair = policy.fairness
        rules.append(_fairness(fair.metric, challenger.slices, fair.max_gap, fair.min_group_size,
                               getattr(challenger, "slice_undefined", {})))
    if champion is not None:
        rule, note = _bootstrap(primary, ci, policy.bootstrap.require, policy.bootstrap.margin)
        rules.append(rule)
        notes += [note] if note else []
    else:
        notes.append("No champion yet: this would be the first, so only floors, latency and fairness apply.")
    verdict = "promote" if all(rule.passed for rule in rules) else "reject"
    return Decision(verdict, primary, champion is None, tuple(rules), tuple(notes))


def promotion_refusal(version: str, verdict: str | None, compared_with: str | None, champion: str | None) -> str | None:
    """Why a production version may not become the champion, or None when its verification approves it.

    `verdict` and `compared_with` are what `gitops-ml verify` recorded on the production version
    (tags only the production identity can write); `champion` is the version serving now (None: no
    champion yet). A verification against another champion is stale.
    """
    current = champion or "none"
    if verdict is None:
        return (f"version {version} was never verified (no verify.verdict tag): only `gitops-ml verify` in the "
                "merge job makes a version promotable")
    if verdict != "promote":
        return f"version {version}'s verify verdict is '{verdict}' (against champion {compared_with})"
    if compared_with != current:
        return (f"version {version} was verified against champion {compared_with}, but the champion is now {current}; "
                "run `gitops-ml verify` again")
    return None

"""The promotion policy as a decision table: each case is a challenger, a champion and the expected rules."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from gitops_ml.core.bootstrap import Interval
from gitops_ml.core.contract import parse_contract
from gitops_ml.core.policy import decide

COLUMNS = {"x": {"type": "float"}, "group": {"type": "category", "categories": ["a", "b"]}}


def contract(task: str = "classification", **promotion):
    target = {"y": {"type": "int"}} if task == "classification" else {"y": {"type": "float"}}
    primary = "roc_auc" if task == "classification" else "rmse"
    return parse_contract({
        "model": {"task": task},
        "data": {"train": "t.csv", "target": "y", "sensitive_attribute": "group", "columns": {**COLUMNS, **target}},
        "metrics": {"primary": primary},
        "promotion": {"latency_p95_ms": 50, **promotion},
        "registry": {"model_name": "m", "image": "i"},
    })


@dataclass
class Ev:
    metrics: dict
    latency_p95_ms: float | None = 5.0
    slices: dict = field(default_factory=dict)


def ci(delta, low, high):
    return Interval(delta, low, high, 0.95, 1000)


GOOD_CI = ci(0.02, 0.01, 0.03)
GROUPS = {"a": {"rows": 100, "accuracy": 0.80}, "b": {"rows": 100, "accuracy": 0.78}}
CLS = contract(guards={"accuracy": {"max_drop": 0.01}}, floors={"roc_auc": 0.7},
               fairness={"metric": "accuracy", "max_gap": 0.05, "min_group_size": 30})
REG = contract("regression", guards={"mae": {"max_drop": 5.0}}, floors={"rmse": 100.0},
               bootstrap={"require": "non_inferiority", "margin": 2.0})
SIG = contract(bootstrap={"require": "significance"})

# id -> (contract, challenger, champion, ci, verdict, failed rules as {(rule, metric)})
CASES = {
    "better-challenger-promotes": (
        CLS, Ev({"roc_auc": 0.82, "accuracy": 0.80}, slices=GROUPS), Ev({"roc_auc": 0.80, "accuracy": 0.80}),
        GOOD_CI, "promote", set()),
    "worse-primary-rejects": (
        CLS, Ev({"roc_auc": 0.78, "accuracy": 0.80}, slices=GROUPS), Ev({"roc_auc": 0.80, "accuracy": 0.80}),
        ci(-0.02, -0.03, -0.01), "reject", {("primary", "roc_auc"), ("bootstrap", "roc_auc")}),
    "guard-drop-too-large-rejects": (
        CLS, Ev({"roc_auc": 0.82, "accuracy": 0.75}, slices=GROUPS), Ev({"roc_auc": 0.80, "accuracy": 0.80}),
        GOOD_CI, "reject", {("guard", "accuracy")}),
    "guard-drop-within-allowance-promotes": (
        CLS, Ev({"roc_auc": 0.82, "accuracy": 0.795}, slices=GROUPS), Ev({"roc_auc": 0.80, "accuracy": 0.80}),
        GOOD_CI, "promote", set()),
    "below-floor-rejects": (
        CLS, Ev({"roc_auc": 0.69, "accuracy": 0.80}, slices=GROUPS), Ev({"roc_auc": 0.60, "accuracy": 0.80}),
        ci(0.09, 0.05, 0.12), "reject", {("floor", "roc_auc")}),
    "slow-model-rejects": (
        CLS, Ev({"roc_auc": 0.82, "accuracy": 0.80}, latency_p95_ms=80.0, slices=GROUPS),
        Ev({"roc_auc": 0.80, "accuracy": 0.80}), GOOD_CI, "reject", {("latency", "latency_p95_ms")}),
    "unmeasured-latency-fails-closed": (
        CLS, Ev({"roc_auc": 0.82, "accuracy": 0.80}, latency_p95_ms=None, slices=GROUPS),
        Ev({"roc_auc": 0.80, "accuracy": 0.80}), GOOD_CI, "reject", {("latency", "latency_p95_ms")}),
    "fairness-gap-rejects": (
        CLS, Ev({"roc_auc": 0.82, "accuracy": 0.80},
                slices={"a": {"rows": 100, "accuracy": 0.90}, "b": {"rows": 100, "accuracy": 0.70}}),
        Ev({"roc_auc": 0.80, "accuracy": 0.80}), GOOD_CI, "reject", {("fairness", "accuracy")}),
    "fairness-ignores-small-groups": (
        CLS, Ev({"roc_auc": 0.82, "accuracy": 0.80},
                slices={**GROUPS, "tiny": {"rows": 5, "accuracy": 0.1}}),
        Ev({"roc_auc": 0.80, "accuracy": 0.80}), GOOD_CI, "promote", set()),
    "nan-primary-fails-closed": (
        CLS, Ev({"roc_auc": math.nan, "accuracy": 0.80}, slices=GROUPS), Ev({"roc_auc": 0.80, "accuracy": 0.80}),
        ci(math.nan, math.nan, math.nan), "reject",
        {("primary", "roc_auc"), ("floor", "roc_auc"), ("bootstrap", "roc_auc")}),
    "missing-ci-fails-closed": (
        CLS, Ev({"roc_auc": 0.82, "accuracy": 0.80}, slices=GROUPS), Ev({"roc_auc": 0.80, "accuracy": 0.80}),
        None, "reject", {("bootstrap", "roc_auc")}),
    "no-champion-floors-only-promotes": (
        CLS, Ev({"roc_auc": 0.75, "accuracy": 0.60}, slices=GROUPS), None, None, "promote", set()),
    "no-champion-below-floor-rejects": (
        CLS, Ev({"roc_auc": 0.65, "accuracy": 0.80}, slices=GROUPS), None, None, "reject", {("floor", "roc_auc")}),
    "rmse-lower-is-better-promotes": (
        REG, Ev({"rmse": 60.0, "mae": 40.0}), Ev({"rmse": 62.0, "mae": 41.0}), ci(2.0, 0.5, 3.5), "promote", set()),
    "rmse-higher-rejects": (
        REG, Ev({"rmse": 70.0, "mae": 41.0}), Ev({"rmse": 62.0, "mae": 41.0}), ci(-8.0, -10.0, -6.0), "reject",
        {("primary", "rmse"), ("bootstrap", "rmse")}),
    "mae-guard-lower-is-better-rejects": (
        REG, Ev({"rmse": 60.0, "mae": 50.0}), Ev({"rmse": 62.0, "mae": 41.0}), ci(2.0, 0.5, 3.5), "reject",
        {("guard", "mae")}),
    "rmse-floor-is-a-ceiling": (
        REG, Ev({"rmse": 120.0, "mae": 40.0}), None, None, "reject", {("floor", "rmse")}),
    "non-inferior-within-margin-promotes": (
        REG, Ev({"rmse": 61.9, "mae": 41.0}), Ev({"rmse": 62.0, "mae": 41.0}), ci(0.1, -1.5, 1.7), "promote", set()),
    "non-inferiority-lower-bound-below-margin-rejects": (
        REG, Ev({"rmse": 61.9, "mae": 41.0}), Ev({"rmse": 62.0, "mae": 41.0}), ci(0.1, -2.5, 2.7), "reject",
        {("bootstrap", "rmse")}),
    "significance-needs-ci-above-zero": (
        SIG, Ev({"roc_auc": 0.81}), Ev({"roc_auc": 0.80}), ci(0.01, -0.002, 0.02), "reject",
        {("bootstrap", "roc_auc")}),
    "significance-met-promotes": (
        SIG, Ev({"roc_auc": 0.83}), Ev({"roc_auc": 0.80}), ci(0.03, 0.01, 0.05), "promote", set()),
}


@pytest.mark.parametrize(("policy", "challenger", "champion", "interval", "verdict", "failed"),
                         list(CASES.values()), ids=list(CASES))
def test_decision_table(policy, challenger, champion, interval, verdict, failed):
    decision = decide(challenger, champion, policy, interval)
    assert decision.verdict == verdict
    assert {(rule.rule, rule.metric) for rule in decision.failed} == failed


def test_no_champion_applies_only_floors_latency_and_fairness():
    decision = decide(Ev({"roc_auc": 0.75, "accuracy": 0.8}, slices=GROUPS), None, CLS)
    assert decision.first_champion
    assert {rule.rule for rule in decision.rules} == {"floor", "latency", "fairness"}


def test_win_inside_the_noise_is_noted():
    decision = decide(Ev({"rmse": 61.9, "mae": 41.0}), Ev({"rmse": 62.0, "mae": 41.0}), REG, ci(0.1, -1.5, 1.7))
    assert decision.verdict == "promote"
    assert any("within the noise" in note for note in decision.notes)


def test_rmse_delta_is_signed_so_positive_is_better():
    decision = decide(Ev({"rmse": 60.0, "mae": 40.0}), Ev({"rmse": 62.0, "mae": 40.0}), REG, ci(2.0, 0.5, 3.5))
    primary = next(rule for rule in decision.rules if rule.rule == "primary")
    assert primary.delta == pytest.approx(2.0)


def fairness_rule(decision):
    return next(rule for rule in decision.rules if rule.rule == "fairness")


def test_fairness_with_an_undefined_group_metric_fails_closed_naming_group_and_reason():
    auc_fair = contract(fairness={"metric": "roc_auc", "max_gap": 0.1, "min_group_size": 30})
    slices = {"a": {"rows": 100, "roc_auc": 0.8}, "b": {"rows": 40, "roc_auc": math.nan}}
    challenger = Ev({"roc_auc": 0.82}, slices=slices)
    challenger.slice_undefined = {"b": {"roc_auc": "needs both classes; only 0 present in these rows"}}
    rule = fairness_rule(decide(challenger, None, auc_fair))
    assert not rule.passed and "'b': needs both classes; only 0 present" in rule.detail
    assert "use a fairness metric every group defines" in rule.detail


def test_fairness_detail_never_names_the_same_group_twice():
    equal = Ev({"roc_auc": 0.82, "accuracy": 0.8}, slices={"female": {"rows": 100, "accuracy": 0.8},
                                                            "male": {"rows": 100, "accuracy": 0.8}})
    rule = fairness_rule(decide(equal, None, CLS))
    assert rule.passed and rule.challenger == 0 and "'female' and 'female'" not in rule.detail
    assert "all 2 groups have the same accuracy" in rule.detail
    apart = fairness_rule(decide(Ev({"roc_auc": 0.82}, slices=GROUPS), None, CLS))
    assert "'a' (best) and 'b' (worst)" in apart.detail


def test_fairness_best_and_worst_follow_the_metrics_direction():
    mae_fair = contract("regression", fairness={"metric": "mae", "max_gap": 50.0, "min_group_size": 30})
    slices = {"a": {"rows": 100, "mae": 10.0}, "b": {"rows": 100, "mae": 30.0}}
    rule = fairness_rule(decide(Ev({"rmse": 1.0, "mae": 20.0}, slices=slices), None, mae_fair))
    assert rule.challenger == 20.0 and "'a' (best) and 'b' (worst)" in rule.detail

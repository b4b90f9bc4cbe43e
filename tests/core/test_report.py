"""Reports people read: the PR comment, the model card, the data-check table, the job summaries."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gitops_ml.core.bootstrap import Interval
from gitops_ml.core.checks import CheckResult
from gitops_ml.core.comparison import Comparison
from gitops_ml.core.policy import decide
from gitops_ml.core.report import (
    MARKER,
    Side,
    comparison_markdown,
    data_check_markdown,
    data_check_table,
    model_card,
    promotion_summary,
    train_summary,
)

from tests import template_files

CONTRACT = template_files.contract("classification")


@dataclass
class Ev:
    metrics: dict
    latency_p95_ms: float | None = 2.0
    slices: dict = field(default_factory=dict)
    rows: int = 500

    def to_dict(self):
        return {"rows": self.rows, "metrics": self.metrics, "slices": self.slices,
                "latency_p95_ms": self.latency_p95_ms}


GOOD = {"roc_auc": 0.83, "accuracy": 0.80, "f1": 0.6, "precision": 0.6, "recall": 0.6, "log_loss": 0.4}
OLD = {**GOOD, "roc_auc": 0.80}
SLICES = {"female": {"rows": 250, "accuracy": 0.81, "roc_auc": 0.84}, "male": {"rows": 250, "accuracy": 0.79,
                                                                             "roc_auc": 0.82}}
CI = Interval(0.03, 0.01, 0.05, 0.95, 1000)


def comparison(new=GOOD, old=OLD, ci=CI):
    challenger, champion = Ev(new, slices=SLICES), Ev(old, slices=SLICES) if old else None
    decision = decide(challenger, champion, CONTRACT, ci)
    return Comparison("churn-model", "7", "run7", challenger, "6" if old else None, "run6" if old else None,
                      champion, ci if old else None, decision, "data/holdout.csv", "2026-11-25T10:00:00+00:00")


def test_the_pr_comment_carries_the_marker_verdict_every_metric_and_the_groups():
    result = comparison()
    text = comparison_markdown(CONTRACT, result.decision, Side("7", result.challenger), Side("6", result.champion),
                               CI, "data/holdout.csv", "gitops-ml compare --challenger 7")
    assert text.startswith(MARKER) and "✅ **promote**" in text
    for metric in CONTRACT.metric_names:
        assert f"| {metric} |" in text
    assert "### By gender" in text and "| female | 250 |" in text
    assert "[+0.0100, +0.0500]" in text and "gitops-ml compare --challenger 7" in text


def test_a_reject_says_which_rule_failed():
    result = comparison(new={**GOOD, "accuracy": 0.70})
    text = comparison_markdown(CONTRACT, result.decision, Side("7", result.challenger), Side("6", result.champion),
                               CI, "d.csv", "x")
    assert "❌ **reject**" in text and "Failed: guard accuracy" in text


def test_nan_is_shown_as_nan_not_as_a_number():
    result = comparison(new={**GOOD, "log_loss": math.nan})
    text = model_card(CONTRACT, Side("7", result.challenger, "run7", {"git_sha": "abc"}), result.decision, None)
    assert "| log_loss | NaN |" in text and "Git commit: `abc`" in text


def test_comparison_tags_and_result_say_what_was_compared_with_what():
    result = comparison()
    tags = result.tags(sha="f" * 40, pr_number="12")
    assert tags["compare.verdict"] == "promote" and tags["compare.champion_version"] == "6"
    assert tags["compare.ci"] == "[0.010000, 0.050000]" and tags["compare.data"] == "data/holdout.csv"
    first = comparison(old=None).tags()
    assert first["compare.champion_version"] == "none" and first["compare.ci"] is None
    assert result.to_dict()["champion"]["version"] == "6" and result.to_dict()["ci"]["samples"] == 1000
    assert result.status_description().startswith("promote: version 7 vs champion version 6")


def test_data_check_markdown_escapes_pipes_and_lists_what_to_do():
    results = [CheckResult("type", "a|b", "fail", "'x' on line 3", "numbers", "column 'a|b': fix it"),
               CheckResult("min_rows", None, "pass", "900", ">= 100", "900 rows")]
    text = data_check_markdown(results, "data/raw/x.csv", None)
    assert "a\\|b" in text and "❌ Data check: fail" in text and "- ❌ column 'a|b': fix it" in text
    assert "TYPE" not in text and "FAIL" in data_check_table(results)


def test_summaries_of_train_and_promote():
    text = train_summary({"model_name": "m", "version": "3", "git_sha": "abc", "data_hash": "d", "run_id": "r",
                          "metrics": {"roc_auc": 0.81234}})
    assert "version 3" in text and "| roc_auc | 0.8123 |" in text
    text = promotion_summary("m", "3", "2", {"audit.pr_number": "5", "audit.image_digest": None})
    assert "(was 2, now previous-champion)" in text and "audit.pr_number: `5`" in text and "image" not in text


def test_the_model_card_and_the_comment_say_why_a_metric_is_nan():
    challenger = Ev({**GOOD, "roc_auc": 0.83}, slices={**SLICES, "male": {**SLICES["male"], "roc_auc": math.nan}})
    challenger.undefined = {}
    challenger.slice_undefined = {"male": {"roc_auc": "needs both classes; only 0 present in these rows"}}
    card = model_card(CONTRACT, Side("7", challenger), None, None)
    assert "- `roc_auc` for group 'male': needs both classes; only 0 present" in card
    decision = decide(challenger, None, CONTRACT, None)
    text = comparison_markdown(CONTRACT, decision, Side("7", challenger), None, None, "d.csv", "gitops-ml compare")
    assert "Not computed on the challenger" in text and "group 'male'" in text

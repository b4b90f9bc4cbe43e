"""The retraining bot's rules and the alert issue's, as tables of cases."""

from __future__ import annotations

import pytest
from gitops_ml.core import retrain as rules


def pr(number, state="open", merged=False, data="aa"):
    return {"number": number, "state": state, "merged_at": "2026-01-01T00:00:00Z" if merged else None,
            "body": f"text\n{rules.marker('m', data)}\n"}


@pytest.mark.parametrize(("retrain", "data", "pulls", "action", "which"), [
    (False, "aa", [], rules.NOTHING, None),
    (True, None, [], rules.NOTHING, None),  # no labelled data to add
    (True, "aa", [], rules.CREATE, None),
    (True, "bb", [pr(1)], rules.UPDATE, 1),
    (True, "aa", [pr(1, "closed")], rules.DECLINED, 1),  # declined for this data
    (True, "bb", [pr(1, "closed")], rules.CREATE, None),  # new data: a new PR
    (True, "aa", [pr(1, "closed", merged=True)], rules.CREATE, None),  # merged before: retrain again
    (True, "aa", [pr(1, "closed"), pr(2, "closed", merged=True)], rules.CREATE, None),  # only the latest counts
    (True, "aa", [pr(2, "closed"), pr(3)], rules.UPDATE, 3),
])
def test_plan_pull(retrain, data, pulls, action, which):
    plan = rules.plan_pull(retrain, data, pulls)
    assert plan.action == action
    assert (plan.pull or {}).get("number") == which


def test_a_new_pr_after_a_declined_one_names_it():
    plan = rules.plan_pull(True, "bb", [pr(7, "closed", data="aa")])
    body = rules.pull_body("m", "bb", 12, "data/raw/customers.csv", "### table", plan.declined)
    assert "#7, was closed without merging for other data (`aa`)" in body
    assert rules.data_hash_of(body) == "bb" and "### table" in body and "**12** new labelled row(s)" in body


@pytest.mark.parametrize(("alert", "judged", "issues", "action"), [
    (True, True, [], rules.OPEN_ALERT),
    (True, True, [{"number": 4, "state": "open", "body": rules.alert_marker("m")}], rules.UPDATE_ALERT),
    (False, True, [{"number": 4, "state": "open", "body": rules.alert_marker("m")}], rules.CLOSE_ALERT),
    (False, False, [{"number": 4, "state": "open", "body": rules.alert_marker("m")}], rules.KEEP_ALERT),
    (False, True, [{"number": 4, "state": "open", "body": rules.alert_marker("other")}], rules.KEEP_ALERT),
])
def test_plan_alert(alert, judged, issues, action):
    assert rules.plan_alert("m", alert, judged, issues)[0] == action

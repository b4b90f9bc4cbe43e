"""The merge job's decisions: approval at the head, candidate binding, reconcile, holdout, credentials."""

from __future__ import annotations

from gitops_ml.core.trust import (
    Candidate,
    approval_at_head,
    candidate_for,
    holdout_refusal,
    missing_credentials,
    prs_to_process,
)

HEAD, OLD = "h" * 40, "o" * 40


def review(login: str, state: str, commit: str = HEAD) -> dict:
    return {"user": {"login": login}, "state": state, "commit_id": commit}


def test_an_approval_of_the_head_counts():
    approval = approval_at_head([review("ana", "APPROVED")], HEAD)
    assert approval.ok and approval.approved_by == ("ana",) and approval.refusal() is None


def test_an_approval_of_an_older_commit_is_stale():
    approval = approval_at_head([review("ana", "APPROVED", OLD)], HEAD)
    assert not approval.ok and approval.stale == ("ana",)
    assert "no approving review" in approval.refusal() and "ana" in approval.refusal()


def test_changes_requested_after_an_approval_blocks():
    approval = approval_at_head([review("ana", "APPROVED"), review("bo", "APPROVED"),
                                 review("bo", "CHANGES_REQUESTED")], HEAD)
    assert not approval.ok and approval.blocked_by == ("bo",) and "bo" in approval.refusal()


def test_a_comment_after_an_approval_keeps_it_and_a_dismissal_drops_it():
    assert approval_at_head([review("ana", "APPROVED"), review("ana", "COMMENTED")], HEAD).ok
    assert not approval_at_head([review("ana", "APPROVED"), review("ana", "DISMISSED")], HEAD).ok


def test_the_authors_own_review_never_counts():
    assert not approval_at_head([review("mia", "APPROVED")], HEAD, author="mia").ok
    assert not approval_at_head([], HEAD).ok


def test_the_candidate_is_the_newest_trained_from_the_head():
    candidates = [Candidate("1", HEAD, HEAD, False), Candidate("3", HEAD, HEAD, False), Candidate("4", OLD, OLD, False)]
    assert candidate_for(candidates, HEAD) == (candidates[1], None)


def test_a_candidate_whose_run_disagrees_or_was_dirty_is_refused():
    found, why = candidate_for([Candidate("2", OLD, HEAD, False), Candidate("3", HEAD, HEAD, True)], HEAD)
    assert found is None and "2, 3" in why and "disagree" in why


def test_no_candidate_for_the_head_says_to_rerun_the_train_job():
    found, why = candidate_for([Candidate("1", OLD, OLD, False)], HEAD)
    assert found is None and "no candidate version was trained from head" in why


def pull(number: int, merge: str, base: str = "main", merged: bool = True) -> dict:
    return {"number": number, "merge_commit_sha": merge, "merged_at": "2026-01-01T00:00:00Z" if merged else None,
            "base": {"ref": base}, "head": {"sha": f"head-{number}"}}


def test_reconcile_takes_every_merged_pull_request_in_merge_order_once():
    commits = ["c1", "c2", "c3"]
    pulls = {"c1": [pull(10, "c1")], "c2": [pull(11, "c2"), pull(10, "c1")], "c3": [pull(12, "c3")]}
    assert [p.number for p in prs_to_process(commits, pulls, "main")] == [10, 11, 12]
    assert prs_to_process(commits, pulls, "main")[1].head_sha == "head-11"


def test_reconcile_skips_done_unmerged_other_base_and_foreign_merge_commits():
    commits = ["c1", "c2"]
    pulls = {"c1": [pull(1, "c1"), pull(2, "c1", merged=False), pull(3, "c1", base="dev"), pull(4, "elsewhere")],
             "c2": [pull(5, "c2")]}
    assert [p.number for p in prs_to_process(commits, pulls, "main", done={5})] == [1]
    assert prs_to_process([], pulls, "main") == []


def test_the_holdout_must_be_the_pinned_one():
    pin = "a" * 64
    assert holdout_refusal("data/holdout/holdout.csv", pin, pin) is None
    changed = holdout_refusal("data/holdout/holdout.csv", pin, "b" * 64)
    assert "data/holdout/holdout.csv" in changed and "holdout_sha256" in changed
    assert "dvc pull data/holdout/holdout.csv" in holdout_refusal("data/holdout/holdout.csv", pin, None)
    assert holdout_refusal("x.csv", None, None) is None  # no holdout pinned: nothing to check


def test_credentials_are_required_in_ci_only_and_named_by_their_secret():
    assert missing_credentials({}, ci=False, identity="production") is None
    assert "MLFLOW_TRACKING_URI" in missing_credentials({"MLFLOW_TRACKING_URI": " "}, ci=True, identity=None)
    candidate = missing_credentials({"MLFLOW_TRACKING_URI": "https://mlflow"}, ci=True, identity="candidate")
    assert "MLFLOW_CANDIDATE_USERNAME" in candidate and "MLFLOW_CANDIDATE_PASSWORD" in candidate
    production = missing_credentials({"MLFLOW_TRACKING_URI": "https://mlflow", "MLFLOW_TRACKING_USERNAME": "p"},
                                     ci=True, identity="production")
    assert "MLFLOW_TRACKING_PASSWORD" in production and "USERNAME" not in production.split("empty")[1]
    assert "Environment `production`" in production
    full = {"MLFLOW_TRACKING_URI": "u", "MLFLOW_TRACKING_USERNAME": "p", "MLFLOW_TRACKING_PASSWORD": "s"}
    assert missing_credentials(full, ci=True, identity="production") is None

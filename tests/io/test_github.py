"""The GitHub client against the local fake: sticky comments across pages, reviews, permission errors."""

from __future__ import annotations

import pytest
from gitops_ml.io.github import GitHub, GitHubPermissionError

MARKER = "<!-- gitops-ml:compare -->"


def test_sticky_comment_is_found_on_a_later_page_and_updated_in_place(github_fake):
    github_fake.page_size = 2
    github_fake.comments[7] = [{"id": i, "body": f"human comment {i}"} for i in range(1, 4)]
    client = GitHub(github_fake.token, "acme/churn")
    created = client.upsert_comment(7, f"{MARKER}\nfirst", MARKER)
    updated = client.upsert_comment(7, f"{MARKER}\nsecond", MARKER)
    assert created["id"] == updated["id"]
    bodies = [c["body"] for c in github_fake.comments[7]]
    assert bodies.count(f"{MARKER}\nsecond") == 1 and not any("first" in b for b in bodies)
    assert github_fake.calls_to("create_comment") == 1 and github_fake.calls_to("update_comment") == 1
    assert github_fake.calls_to("list_comments") == 4  # two pages, twice


def test_approvers_are_users_whose_latest_review_approves(github_fake):
    github_fake.reviews[3] = [
        {"user": {"login": "ana"}, "state": "APPROVED"},
        {"user": {"login": "bo"}, "state": "APPROVED"},
        {"user": {"login": "bo"}, "state": "CHANGES_REQUESTED"},
        {"user": {"login": "cy"}, "state": "CHANGES_REQUESTED"},
        {"user": {"login": "cy"}, "state": "APPROVED"},
        {"user": {"login": "cy"}, "state": "COMMENTED"},
    ]
    assert GitHub(github_fake.token, "acme/churn").approvers(3) == ["ana", "cy"]


@pytest.mark.parametrize(("endpoint", "status", "call", "needs"), [
    ("create_status", 403, lambda gh: gh.create_status("abc123", "success", "ok"), "statuses: write"),
    ("list_comments", 404, lambda gh: gh.upsert_comment(1, MARKER, MARKER), "pull-requests: write"),
    ("get_pull", 403, lambda gh: gh.pull(1), "pull-requests: read"),
], ids=["status-403", "comments-404", "pull-403"])
def test_forbidden_calls_name_the_permission_and_never_the_token(github_fake, endpoint, status, call, needs):
    github_fake.fail[endpoint] = status
    with pytest.raises(GitHubPermissionError) as error:
        call(GitHub(github_fake.token, "acme/churn"))
    assert needs in str(error.value) and str(status) in str(error.value)
    assert github_fake.token not in str(error.value)


def test_a_wrong_token_is_reported_as_rejected(github_fake):
    with pytest.raises(GitHubPermissionError, match="rejected the token"):
        GitHub("not-the-token", "acme/churn").pull(1)

"""The GitHub client against the local fake, over real HTTP: sticky comments, retries, rate limits, the
token kept on the API host, clear errors, and every endpoint gitops-ml uses."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI, Request
from gitops_ml.core.retry import RetryPolicy
from gitops_ml.io.github import GitHub, GitHubError, GitHubPermissionError, GitHubRateLimitError

from tests.github_fake import (
    forbidden,
    links_to,
    not_json,
    rate_limited,
    redirect,
    review,
    secondary_rate_limit,
    serve,
    server_error,
    too_many_requests,
)

MARKER = "<!-- gitops-ml:compare -->"
NOW = 1_700_000_000.0
HEAD, OLD = "a" * 40, "b" * 40


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def gh(github_fake, waits):
    """A client whose sleeps are recorded instead of slept, on a fixed clock."""
    with GitHub(github_fake.token, "acme/churn", sleep=waits.append, clock=lambda: NOW) as client:
        yield client


@pytest.fixture
def elsewhere():
    """A second server on another host (127.0.0.2) that records every request it gets."""
    seen: list[dict] = []
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST", "PATCH"])
    async def record(path: str, request: Request):
        seen.append(dict(request.headers))
        return []

    with serve(app, host="127.0.0.2") as url:
        yield url, seen


# -- sticky comment, statuses, permissions (behaviour unchanged) --------------------------------------

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


def test_only_approvals_of_the_head_count_when_a_head_is_given(github_fake, gh):
    github_fake.reviews[4] = [
        review("ana", "APPROVED", OLD, pr=4),  # approved an earlier head: stale
        review("bo", "APPROVED", OLD, pr=4),
        review("bo", "APPROVED", HEAD, pr=4),
        review("cy", "APPROVED", HEAD, pr=4),
        review("cy", "DISMISSED", HEAD, pr=4),
    ]
    assert {r["commit_id"] for r in gh.reviews(4)} == {OLD, HEAD}
    assert gh.approvers(4, head_sha=HEAD) == ["bo"]
    assert gh.approvers(4) == ["ana", "bo"]


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


# -- retries and rate limits ------------------------------------------------------------------------

def test_transient_5xx_are_retried_with_growing_backoff_until_success(github_fake, gh, waits):
    github_fake.pulls[5] = {"number": 5, "state": "open"}
    github_fake.inject("list_pulls", server_error(502), server_error(504))
    assert [p["number"] for p in gh.pulls()] == [5]
    assert waits == [1.0, 2.0] and github_fake.calls_to("list_pulls") == 3


def test_a_create_is_sent_again_after_503_but_not_after_500(github_fake, gh, waits):
    github_fake.inject("create_issue", server_error(503))
    gh.create_issue("drift", "body", ["drift"])
    assert waits == [1.0] and len(github_fake.issues) == 1

    github_fake.inject("create_issue", server_error(500))
    with pytest.raises(GitHubError, match="may have been applied") as error:
        gh.create_issue("drift again", "body")
    assert "opening issue 'drift again'" in str(error.value)
    assert github_fake.calls_to("create_issue") == 3 and len(github_fake.issues) == 1 and waits == [1.0]


def test_a_lasting_outage_gives_up_after_the_attempts(github_fake, waits):
    github_fake.inject("get_pull", *[server_error(502)] * 3)
    client = GitHub(github_fake.token, "acme/churn", sleep=waits.append, retry=RetryPolicy(attempts=3))
    with pytest.raises(GitHubError, match=r"reading PR #1: GitHub answered 502 3 times"):
        client.pull(1)
    assert waits == [1.0, 2.0] and github_fake.calls_to("get_pull") == 3


def test_an_unreachable_host_is_retried_then_named(waits):
    client = GitHub("t", "acme/churn", url="http://127.0.0.1:9", sleep=waits.append, retry=RetryPolicy(attempts=3))
    with pytest.raises(GitHubError, match=r"could not reach http://127.0.0.1:9.*ConnectError"):
        client.create_issue("x", "y")  # a create too: the connection never opened, so nothing was applied
    assert waits == [1.0, 2.0]


def test_429_waits_as_long_as_retry_after_says(github_fake, gh, waits):
    github_fake.inject("create_status", too_many_requests(retry_after=7))
    gh.create_status(HEAD, "success", "ok")
    assert waits == [7.0] and len(github_fake.statuses) == 1


def test_a_primary_rate_limit_403_waits_until_the_reset(github_fake, gh, waits, capsys):
    github_fake.inject("list_issues", rate_limited(reset=int(NOW) + 30))
    assert gh.issues("drift") == []
    assert waits == [31.0] and github_fake.calls_to("list_issues") == 2
    assert "primary rate limit; waiting 31 s" in capsys.readouterr().err


@pytest.mark.parametrize(("retry_after", "expected"), [(None, 60.0), (5, 5.0)], ids=["no-hint", "retry-after"])
def test_a_secondary_rate_limit_waits_then_succeeds(github_fake, gh, waits, retry_after, expected):
    github_fake.inject("create_comment", secondary_rate_limit(retry_after))
    gh.comment(2, "hello")
    assert waits == [expected] and len(github_fake.comments[2]) == 1


def test_a_rate_limit_resetting_too_late_fails_naming_when_it_resets(github_fake, gh, waits):
    reset = int(NOW) + 3600
    github_fake.inject("list_deployments", rate_limited(reset=reset, status=429))
    with pytest.raises(GitHubRateLimitError) as error:
        gh.deployments("production")
    when = datetime.fromtimestamp(reset + 1, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert when in str(error.value) and "listing deployments to production" in str(error.value)
    assert error.value.resets_at == reset + 1
    assert waits == [] and github_fake.calls_to("list_deployments") == 1
    assert github_fake.token not in str(error.value)


def test_a_permission_403_is_not_retried_and_names_the_permission(github_fake, gh, waits):
    github_fake.inject("create_deployment", forbidden())
    with pytest.raises(GitHubPermissionError) as error:
        gh.create_deployment(HEAD, "production")
    message = str(error.value)
    assert "deployments: write" in message and "Resource not accessible by integration" in message
    assert waits == [] and github_fake.calls_to("create_deployment") == 1 and github_fake.token not in message


def test_github_refusing_actions_prs_is_explained(github_fake, gh):
    github_fake.refs["retrain"] = HEAD
    github_fake.inject("create_pull", forbidden("GitHub Actions is not permitted to create or approve pull requests."))
    with pytest.raises(GitHubPermissionError) as error:
        gh.create_pull("Retrain", "retrain", "main")
    assert "not permitted to create" in str(error.value)
    assert "Allow GitHub Actions to create and approve pull requests" in str(error.value)


# -- answers that are not what they should be ---------------------------------------------------------

def test_a_non_json_answer_is_a_clear_error_naming_the_call(github_fake, gh):
    github_fake.inject("get_pull", not_json())
    with pytest.raises(GitHubError) as error:
        gh.pull(12)
    message = str(error.value)
    assert message.startswith("reading PR #12: GitHub answered 200 with text/html")
    assert "not JSON" in message and "GITHUB_API_URL" in message


def test_a_link_to_another_host_is_refused_and_the_token_never_reaches_it(github_fake, gh, elsewhere):
    url, seen = elsewhere
    github_fake.inject("list_comments", links_to(f"{url}/repos/acme/churn/issues/1/comments?page=2",
                                                 [{"id": 1, "body": "page one"}]))
    with pytest.raises(GitHubError) as error:
        gh.comments(1)
    assert "127.0.0.2" in str(error.value) and "not the API host" in str(error.value)
    assert seen == []  # not a single request, so no Authorization header either


def test_a_redirect_to_another_host_is_refused(github_fake, gh, elsewhere):
    url, seen = elsewhere
    github_fake.inject("get_pull", redirect(f"{url}/repos/acme/churn/pulls/1"))
    with pytest.raises(GitHubError, match="not the API host"):
        gh.pull(1)
    assert seen == []


def test_a_redirect_on_the_api_host_is_followed(github_fake, gh):
    github_fake.pulls[2] = {"number": 2, "title": "renamed repository"}
    github_fake.inject("get_pull", redirect(f"{github_fake.url}/repos/acme/renamed/pulls/2", status=301))
    assert gh.pull(2)["title"] == "renamed repository"
    assert [path for name, path in github_fake.calls] == ["/repos/acme/churn/pulls/2", "/repos/acme/renamed/pulls/2"]


def test_a_next_link_back_to_a_read_page_stops_the_loop(github_fake, gh):
    github_fake.inject("list_reviews", links_to(f"{github_fake.url}/repos/acme/churn/pulls/1/reviews?per_page=100"),
                       links_to(f"{github_fake.url}/repos/acme/churn/pulls/1/reviews?per_page=100"))
    with pytest.raises(GitHubError, match="already read"):
        gh.reviews(1)


@pytest.mark.parametrize(("call", "message"), [
    (lambda gh: gh.pull("1/../../orgs"), "expected a pull request, issue or deployment number"),
    (lambda gh: gh.pulls(head="retrain"), "head must be 'owner:branch'"),
    (lambda gh: gh.issues("drift,alert"), "one label at a time"),
    (lambda gh: gh.create_deployment_status(1, "done"), "deployment state must be one of"),
    (lambda gh: gh.close_issue(1, "wontfix"), "closing reason must be"),
], ids=["number", "bare-head", "two-labels", "deployment-state", "close-reason"])
def test_bad_input_is_refused_before_any_call(github_fake, gh, call, message):
    with pytest.raises(GitHubError, match=message):
        call(gh)
    assert github_fake.calls == []


def test_a_redirect_loop_is_a_clear_error(github_fake, gh):
    github_fake.inject("get_pull", *[redirect(f"{github_fake.url}/repos/acme/churn/pulls/1")] * 25)
    with pytest.raises(GitHubError, match="reading PR #1: .* failed: TooManyRedirects"):
        gh.pull(1)


@pytest.mark.parametrize("url", ["api.github.com", "ftp://github.test", "https://"])
def test_a_malformed_api_url_is_refused(url):
    with pytest.raises(GitHubError, match="GITHUB_API_URL must be an http"):
        GitHub("t", "acme/churn", url=url)


@pytest.mark.parametrize("repository", ["churn", "acme/churn/../x", "../churn", "acme/churn?x=1"])
def test_a_malformed_repository_is_refused(repository):
    with pytest.raises(GitHubError, match="repository must be 'owner/name'"):
        GitHub("t", repository)


# -- every endpoint, round-tripped through the fake ---------------------------------------------------

def test_pull_requests_round_trip(github_fake, gh):
    github_fake.refs.update({"retrain/drift": HEAD, "main": OLD})
    opened = gh.create_pull("Retrain on drift", "retrain/drift", "main", body="drift summary")
    number = opened["number"]
    assert opened["state"] == "open" and opened["head"]["sha"] == HEAD and opened["base"]["ref"] == "main"
    assert [p["number"] for p in gh.pulls(head="acme:retrain/drift")] == [number]
    assert gh.pulls(head="someone-else:retrain/drift") == []
    with pytest.raises(GitHubError, match="A pull request already exists for acme:retrain/drift"):
        gh.create_pull("Retrain again", "retrain/drift", "main")

    labels = gh.add_labels(number, ["retrain", "drift"])
    assert [label["name"] for label in labels] == ["retrain", "drift"]
    updated = gh.update_pull(number, title="Retrain (updated)", body="new summary")
    assert (updated["title"], updated["body"], updated["state"]) == ("Retrain (updated)", "new summary", "open")
    assert [p["number"] for p in gh.pulls_for_commit(HEAD)] == [number]
    assert gh.pull(number)["labels"][0]["name"] == "retrain"

    assert gh.update_pull(number, state="closed")["state"] == "closed"
    assert gh.pulls() == [] and [p["number"] for p in gh.pulls(state="closed")] == [number]


def test_issues_round_trip_and_pull_requests_are_not_issues(github_fake, gh):
    github_fake.refs.update({"retrain/drift": HEAD, "main": OLD})
    pull = gh.create_pull("Retrain", "retrain/drift", "main")
    gh.add_labels(pull["number"], ["drift"])  # GitHub lists this PR under /issues too
    issue = gh.create_issue("Drift on churn", "three columns drifted", ["drift", "gitops-ml"])
    assert issue["number"] == pull["number"] + 1  # issues and PRs share one sequence
    assert [i["number"] for i in gh.issues("drift")] == [issue["number"]]

    comment = gh.comment(issue["number"], "still drifting")
    assert github_fake.comments[issue["number"]][0]["id"] == comment["id"]
    closed = gh.close_issue(issue["number"], "not_planned")
    assert (closed["state"], closed["state_reason"]) == ("closed", "not_planned")
    assert gh.issues("drift") == [] and [i["number"] for i in gh.issues("drift", state="closed")] == [issue["number"]]


def test_deployments_round_trip(github_fake, gh):
    github_fake.statuses.append({"sha": HEAD, "context": "ci/lint", "state": "failure"})  # must not block
    first = gh.create_deployment(HEAD, "staging", payload={"model_version": "3"}, description="model 3",
                                 transient=False, production=False)
    sent = next(r for r in github_fake.requests if r.name == "create_deployment").body
    assert sent["auto_merge"] is False and sent["required_contexts"] == []
    assert (first["sha"], first["environment"], first["payload"]) == (HEAD, "staging", {"model_version": "3"})
    assert first["production_environment"] is False and first["transient_environment"] is False

    gh.create_deployment_status(first["id"], "in_progress", log_url="https://ci.test/run/1")
    done = gh.create_deployment_status(first["id"], "success", description="smoke test passed",
                                       environment_url="http://staging.test", log_url="https://ci.test/run/1")
    assert (done["state"], done["environment_url"], done["log_url"]) == ("success", "http://staging.test",
                                                                          "https://ci.test/run/1")
    second = gh.create_deployment(OLD, "staging", payload={"model_version": "4"})
    gh.create_deployment_status(second["id"], "success")
    gh.create_deployment(HEAD, "production", production=True)

    assert [d["id"] for d in gh.deployments("staging")] == [second["id"], first["id"]]  # newest first
    assert [d["id"] for d in gh.deployments("staging", sha=HEAD)] == [first["id"]]
    assert [s["state"] for s in gh.deployment_statuses(first["id"])] == ["inactive", "success", "in_progress"]
    failed = gh.create_deployment_status(second["id"], "failure", description="x" * 200)
    assert failed["state"] == "failure" and len(failed["description"]) == 140


def test_a_deployment_of_an_unknown_ref_names_github_s_reason(github_fake, gh):
    with pytest.raises(GitHubError, match=r'422 \("No ref found for: no-such-branch"\)'):
        gh.create_deployment("no-such-branch", "production")


def test_compare_reads_a_real_git_history(github_fake, gh, tmp_path):
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q", "-b", "main")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "base")
    git("checkout", "-q", "-b", "retrain/drift")
    (tmp_path / "params.yaml").write_text("n_estimators: 200\n")
    git("add", "params.yaml")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "retrain")
    github_fake.git_dir = tmp_path

    ahead = gh.compare("main", "retrain/drift")
    assert (ahead["status"], ahead["ahead_by"], ahead["behind_by"]) == ("ahead", 1, 0)
    assert [f["filename"] for f in ahead["files"]] == ["params.yaml"]
    assert gh.compare("retrain/drift", "retrain/drift")["status"] == "identical"
    assert gh.compare("retrain/drift", "main")["status"] == "behind"

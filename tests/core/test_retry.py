"""When to call GitHub again: rate limits told apart from permissions, backoff, budgets, creates kept single."""

from __future__ import annotations

import pytest
from gitops_ml.core.retry import Answer, GiveUp, Retry, RetryPolicy, decide, rate_limit, retry_after

NOW = 1_700_000_000.0
PRIMARY = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 30)}
SECONDARY = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."


@pytest.mark.parametrize(("answer", "kind"), [
    (Answer(403, PRIMARY, "API rate limit exceeded"), "primary"),
    (Answer(429, PRIMARY), "primary"),
    (Answer(403, {"x-ratelimit-remaining": "12"}, SECONDARY), "secondary"),
    (Answer(429, {}, "Too many requests"), "secondary"),
    (Answer(403, {"retry-after": "30"}, "abuse detection"), "secondary"),
    (Answer(403, {"x-ratelimit-remaining": "4999"}, "Resource not accessible by integration"), None),
    (Answer(404, PRIMARY, "Not Found"), None),
    (Answer(502), None),
], ids=["403-remaining-0", "429-remaining-0", "403-secondary-message", "429-bare", "403-retry-after",
        "403-permission", "404", "502"])
def test_rate_limits_are_told_apart_from_permission_errors(answer, kind):
    assert rate_limit(answer) == kind


def test_retry_after_reads_seconds_and_http_dates_and_ignores_garbage():
    assert retry_after("17", NOW) == 17.0
    assert retry_after("Tue, 14 Nov 2023 22:14:20 GMT", NOW) == 60.0  # NOW + 60 s
    assert retry_after("Tue, 14 Nov 2023 22:00:00 GMT", NOW) == 0.0  # already past
    assert retry_after("soon", NOW) is None and retry_after(None, NOW) is None


def test_primary_rate_limit_waits_until_the_reset_plus_a_second():
    answer = Answer(403, PRIMARY, "API rate limit exceeded")
    assert decide(answer, "GET", 1, 0.0, NOW) == Retry(31.0, "primary rate limit")


def test_retry_after_wins_over_the_reset_header():
    answer = Answer(429, {**PRIMARY, "retry-after": "5"})
    assert decide(answer, "POST", 1, 0.0, NOW) == Retry(5.0, "primary rate limit")


def test_secondary_rate_limit_without_a_hint_waits_a_minute_then_longer():
    answer = Answer(403, {}, SECONDARY)
    assert [decide(answer, "GET", n, 0.0, NOW).wait for n in (1, 2)] == [60.0, 120.0]


def test_a_rate_limit_outlasting_the_budget_gives_up_naming_the_reset():
    answer = Answer(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 3600)})
    step = decide(answer, "GET", 1, 0.0, NOW, RetryPolicy(max_wait=300))
    assert step == GiveUp("primary rate limit, lasting longer than the 300 s a call may wait", True, NOW + 3601)


def test_a_rate_limit_still_there_after_the_last_attempt_gives_up():
    step = decide(Answer(429, {"retry-after": "1"}), "GET", 5, 4.0, NOW, RetryPolicy(attempts=5))
    assert step == GiveUp("secondary rate limit, still in force after 5 attempts", True, NOW + 1)


def test_the_budget_counts_what_was_already_waited():
    answer = Answer(429, {"retry-after": "100"})
    assert isinstance(decide(answer, "GET", 2, 150.0, NOW, RetryPolicy(max_wait=300)), Retry)
    assert isinstance(decide(answer, "GET", 2, 250.0, NOW, RetryPolicy(max_wait=300)), GiveUp)


def test_transient_failures_back_off_exponentially_up_to_the_cap():
    policy = RetryPolicy(attempts=10, backoff=1.0, max_backoff=5.0, max_wait=1000)
    waits = [decide(Answer(502), "GET", n, 0.0, NOW, policy).wait for n in range(1, 6)]
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_503_with_retry_after_waits_at_least_that_long():
    assert decide(Answer(503, {"retry-after": "9"}), "GET", 1, 0.0, NOW).wait == 9.0


def test_transient_failures_give_up_after_the_last_attempt():
    step = decide(Answer(500), "GET", 5, 15.0, NOW, RetryPolicy(attempts=5))
    assert isinstance(step, GiveUp) and not step.rate_limited and "500 5 times" in step.reason


@pytest.mark.parametrize(("answer", "retried"), [
    (Answer(502), True),
    (Answer(503), True),
    (Answer(500), False),
    (Answer(504), False),
    (Answer(None, message="ReadTimeout", sent=True), False),
    (Answer(None, message="ConnectError", sent=False), True),
    (Answer(429, {"retry-after": "1"}), True),
], ids=["502", "503", "500", "504", "read-timeout", "never-connected", "429"])
def test_a_create_is_sent_again_only_when_github_cannot_have_applied_it(answer, retried):
    step = decide(answer, "POST", 1, 0.0, NOW)
    assert isinstance(step, Retry) is retried
    if not retried:
        assert "may have been applied" in step.reason


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_idempotent_calls_are_retried_after_any_5xx_or_lost_answer(method):
    assert isinstance(decide(Answer(500), method, 1, 0.0, NOW), Retry)
    assert isinstance(decide(Answer(None, message="ReadTimeout"), method, 1, 0.0, NOW), Retry)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_client_errors_are_not_a_retry_matter(status):
    assert decide(Answer(status, {"x-ratelimit-remaining": "4999"}, "nope"), "GET", 1, 0.0, NOW) is None

"""Whether to call GitHub again after a failed answer, and how long to wait first.

A pure function of the answer, following GitHub's documented rules ("Rate limits for the REST
API", "Troubleshooting the REST API"):
- a primary rate limit is a 403 or 429 with `x-ratelimit-remaining: 0`; it ends at
  `x-ratelimit-reset` (UTC epoch seconds);
- a secondary rate limit is a 403 or 429 whose message says so; without `retry-after`, wait at
  least a minute, then exponentially longer;
- `retry-after` (seconds, or an HTTP date) wins whenever it is present;
- 5xx answers and lost connections are transient: back off exponentially.

A rate-limited request was not processed, so any method may be sent again. A create (POST) that
failed with 500, 504 or a lost answer may have been applied, so it is not repeated blindly: only
502/503 (GitHub could not serve it) and connections that never opened are retried for POST.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
NOT_APPLIED = frozenset({502, 503})  # GitHub did not serve the request: safe to send a POST again
SECONDARY_MINIMUM = 60.0  # GitHub: "wait for at least one minute before retrying"
RESET_MARGIN = 1.0  # x-ratelimit-reset is whole seconds; wait one more so the window has surely turned


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # calls per request, the first included
    backoff: float = 1.0  # first wait after a transient failure, doubled each time
    max_backoff: float = 30.0
    max_wait: float = 300.0  # seconds one request may spend waiting in total, rate limits included


DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True)
class Answer:
    """What came back, reduced to what the decision needs. `status` None: no answer at all."""

    status: int | None
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    message: str = ""
    sent: bool = True  # False when the connection never opened, so the server cannot have acted


@dataclass(frozen=True)
class Retry:
    wait: float
    reason: str


@dataclass(frozen=True)
class GiveUp:
    reason: str
    rate_limited: bool = False
    resets_at: float | None = None  # epoch seconds a rate limit ends: as GitHub said, else our estimate


def rate_limit(answer: Answer) -> str | None:
    """'primary', 'secondary' or None: is this answer GitHub refusing because of a rate limit?"""
    if answer.status not in (403, 429):
        return None
    if "secondary rate limit" in answer.message.lower():
        return "secondary"
    if answer.headers.get("x-ratelimit-remaining") == "0":
        return "primary"
    if answer.status == 429 or "retry-after" in answer.headers:
        return "secondary"
    return None  # a 403 without any rate-limit sign is a permission problem


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `retry-after` header (seconds or an HTTP date); None if absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        return max(parsedate_to_datetime(text).timestamp() - now, 0.0)
    except (TypeError, ValueError, IndexError):
        return None


def _rate_limit_wait(answer: Answer, attempt: int, now: float) -> float:
    after = retry_after(answer.headers.get("retry-after"), now)
    if after is not None:
        return after
    reset = answer.headers.get("x-ratelimit-reset", "")
    if answer.headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
        return max(int(reset) - now, 0.0) + RESET_MARGIN
    return SECONDARY_MINIMUM * 2 ** (attempt - 1)  # no hint from GitHub: a minute, then longer


def decide(answer: Answer, method: str, attempt: int, waited: float, now: float,
           policy: RetryPolicy = DEFAULT_POLICY) -> Retry | GiveUp | None:
    """After failed call number `attempt` (1-based) having already waited `waited` seconds:
    Retry (wait, then call again), GiveUp (a retryable failure that ran out of attempts or time, or
    a create that may have been applied), or None (not a retry matter: a permission or input error).
    """
    kind = rate_limit(answer)
    if kind:
        wait = _rate_limit_wait(answer, attempt, now)
        if attempt >= policy.attempts:
            return GiveUp(f"{kind} rate limit, still in force after {attempt} attempts", True, now + wait)
        if waited + wait > policy.max_wait:
            return GiveUp(f"{kind} rate limit, lasting longer than the {policy.max_wait:.0f} s a call may wait",
                          True, now + wait)
        return Retry(wait, f"{kind} rate limit")
    if answer.status is not None and answer.status < 500:
        return None
    what = f"GitHub answered {answer.status}" if answer.status else f"no answer ({answer.message or 'connection lost'})"
    if method.upper() not in IDEMPOTENT and answer.sent and answer.status not in NOT_APPLIED:
        return GiveUp(f"{what} to a create, which may have been applied; not sent again")
    wait = min(policy.backoff * 2 ** (attempt - 1), policy.max_backoff)
    wait = max(wait, retry_after(answer.headers.get("retry-after"), now) or 0.0)
    if attempt >= policy.attempts or waited + wait > policy.max_wait:
        return GiveUp(f"{what} {attempt} times; gave up after waiting {waited:.0f} s")
    return Retry(wait, what)

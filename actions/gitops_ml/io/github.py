"""A GitHub REST client people can rely on: retries, rate limits, pagination that stays on the API host.

Only what gitops-ml posts or reads: sticky PR comments, commit statuses, pull requests and their
reviews, issues, deployments and deployment statuses. `GITHUB_API_URL` makes GitHub Enterprise (and
the tests' local fake) work.

- Transient failures (5xx, lost connections) are retried with exponential backoff; rate limits
  (429, or a 403 that says so) wait as long as GitHub asks, within a bounded budget, and otherwise
  fail naming when the limit resets. When to retry is decided by `core.retry`.
- The token is only ever sent to the API host: a `Link` or redirect to any other host is refused.
- Errors name the call and the token permission it needs; the token is never part of a message.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from gitops_ml.core.retry import DEFAULT_POLICY, Answer, GiveUp, Retry, RetryPolicy, decide
from gitops_ml.errors import GitopsMLError

STATUS_CONTEXT = "gitops-ml/compare"
DEPLOYMENT_STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")
REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
DEFAULT_PORTS = {"http": 80, "https": 443}


class GitHubError(GitopsMLError):
    """A GitHub API call failed; the message names the call and what to check."""


class GitHubPermissionError(GitHubError):
    """The token was rejected (401) or lacks a permission (403, or 404 on a private repository)."""


class GitHubRateLimitError(GitHubError):
    """GitHub's rate limit would outlast the wait this call may spend; `resets_at` is epoch seconds."""

    def __init__(self, message: str, resets_at: float | None):
        super().__init__(message)
        self.resets_at = resets_at


class _OffHost(Exception):  # noqa: N818 - internal signal, turned into a GitHubError by `_call`
    """A request was about to leave the API host (a `Link` or a redirect pointed elsewhere)."""

    def __init__(self, url: httpx.URL):
        super().__init__(str(url))
        self.url = url


def api_url() -> str:
    return os.environ.get("GITHUB_API_URL") or "https://api.github.com"


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or DEFAULT_PORTS.get(url.scheme)


def _segment(value: Any) -> str:
    """One path segment, quoted so a hostile ref or SHA cannot change which endpoint is called."""
    return quote(str(value), safe="")


def _number(value: Any) -> int:
    """An issue, pull request or deployment number; anything else is refused before a URL is built."""
    text = str(value).strip()
    if not text.isdigit():
        raise GitHubError(f"expected a pull request, issue or deployment number, got {value!r}")
    return int(text)


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class GitHub:
    """One repository on one GitHub (or GitHub Enterprise) host.

    `sleep` and `clock` are injectable so tests see every wait without waiting; `retry` bounds how
    often and how long a call is repeated.
    """

    def __init__(self, token: str, repository: str, url: str | None = None, timeout: float = 30.0, *,
                 retry: RetryPolicy = DEFAULT_POLICY, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time):
        if not REPOSITORY.fullmatch(repository or "") or any(part in (".", "..") for part in repository.split("/")):
            raise GitHubError(f"repository must be 'owner/name', got {repository!r} (set GITHUB_REPOSITORY)")
        self.repository = repository
        self.repo_path = f"/repos/{repository}"
        self.policy, self.sleep, self.clock = retry, sleep, clock
        self._token = token
        try:
            base = httpx.URL((url or api_url()).rstrip("/"))
        except httpx.InvalidURL:
            base = httpx.URL("")
        if base.scheme not in DEFAULT_PORTS or not base.host:
            raise GitHubError(f"GITHUB_API_URL must be an http(s) address such as https://api.github.com, "
                              f"got {str(base)!r}")
        self.http = httpx.Client(
            base_url=base,
            timeout=timeout,
            follow_redirects=True,  # GitHub redirects renamed repositories; every hop passes the guard below
            event_hooks={"request": [self._stay_on_api_host]},
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "gitops-ml",
            },
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> GitHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------------

    def _stay_on_api_host(self, request: httpx.Request) -> None:
        """Called before every request, redirects included: the token goes to the API host only."""
        if _origin(request.url) != _origin(self.http.base_url):
            raise _OffHost(request.url)

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _message(self, response: httpx.Response) -> str:
        """GitHub's own explanation of a failure (its `message` and `errors`), short and token-free."""
        try:
            data = response.json()
        except ValueError:
            return self._redact(response.text[:200].strip())
        if not isinstance(data, dict):
            return ""
        parts = [str(data.get("message") or "")]
        for error in data.get("errors") or []:
            if isinstance(error, dict):
                parts.append(error.get("message") or " ".join(str(error[k]) for k in ("field", "code") if k in error))
            else:
                parts.append(str(error))
        return self._redact("; ".join(p for p in parts if p)[:500])

    def _call(self, what: str, permission: str, method: str, url: str, *, params: dict | None = None,
              json: Any = None) -> httpx.Response:
        """Send one request, retrying as `core.retry` decides; raise a GitHubError naming `what` on failure."""
        attempt, waited = 0, 0.0
        while True:
            attempt += 1
            response = None
            try:
                response = self.http.request(method, url, params=params, json=json)
                answer = Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()},
                                self._message(response) if response.is_error else "")
            except _OffHost as off:
                raise GitHubError(
                    f"{what}: GitHub pointed to {off.url.scheme}://{off.url.netloc.decode()} (a Link header or "
                    f"a redirect), which is not the API host {self.http.base_url}; refused, so the token is not "
                    "sent there. Check GITHUB_API_URL and any proxy in between."
                ) from None
            except httpx.TransportError as error:
                never_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
                answer = Answer(None, message=type(error).__name__, sent=not never_sent)
            except httpx.RequestError as error:  # too many redirects, an undecodable body: not transient
                raise GitHubError(f"{what}: the call to {self.http.base_url} failed: {type(error).__name__}") from None
            if response is not None and not response.is_error:
                return response
            step = decide(answer, method, attempt, waited, self.clock(), self.policy)
            if isinstance(step, Retry):
                print(f"GitHub, {what}: {step.reason}; waiting {step.wait:.0f} s, then trying again", file=sys.stderr)
                self.sleep(step.wait)
                waited += step.wait
                continue
            raise self._failure(what, permission, answer, step)

    def _failure(self, what: str, permission: str, answer: Answer, step: GiveUp | None) -> GitHubError:
        said = f' ("{answer.message}")' if answer.message else ""
        if step is not None and step.rate_limited:
            resets_at = step.resets_at or self.clock()
            return GitHubRateLimitError(
                f"{what}: GitHub's {step.reason}{said}. It resets at {_when(resets_at)} (in "
                f"{resets_at - self.clock():.0f} s): re-run the job after that, or spread the calls over fewer "
                "parallel jobs", resets_at)
        if answer.status is None:
            detail = f" ({step.reason})" if step is not None else ""
            return GitHubError(f"{what}: could not reach {self.http.base_url}: {answer.message}{detail}. Check "
                               "GITHUB_API_URL and the network, then re-run the job")
        if step is not None:
            return GitHubError(f"{what}: {step.reason}{said}. Check on GitHub whether it happened and GitHub's "
                               "status, then re-run the job")
        if answer.status == 401:
            return GitHubPermissionError(f"{what}: GitHub rejected the token (401); check the github-token input")
        if answer.status in (403, 404):
            return GitHubPermissionError(
                f"{what} on {self.repository}: GitHub answered {answer.status}{said}. The token needs "
                f"`{permission}` (add it to the workflow's `permissions:`), and the repository and the "
                "object named must exist."
            )
        return GitHubError(f"{what} on {self.repository}: GitHub answered {answer.status}{said}")

    def _json(self, what: str, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type") or "no content type"
            start = self._redact(response.text[:120].strip())
            raise GitHubError(
                f"{what}: GitHub answered {response.status_code} with {kind}, not JSON ({start!r}). "
                f"Check GITHUB_API_URL ({self.http.base_url}) is the API address (GitHub Enterprise: "
                "https://HOST/api/v3) and that no proxy rewrites the answer."
            ) from None

    def _object(self, what: str, permission: str, method: str, url: str, **kwargs: Any) -> dict:
        data = self._json(what, self._call(what, permission, method, url, **kwargs))
        if not isinstance(data, dict):
            raise GitHubError(f"{what}: GitHub answered a {type(data).__name__} where an object was expected")
        return data

    def _pages(self, what: str, permission: str, path: str, params: dict | None = None) -> list[dict]:
        """All items of a paginated list, following `Link: rel="next"` on the API host only."""
        items: list[dict] = []
        url: str | None = path
        query: dict | None = {"per_page": 100, **(params or {})}
        seen: set[str] = set()
        while url:
            response = self._call(what, permission, "GET", url, params=query)
            page = self._json(what, response)
            if not isinstance(page, list):
                raise GitHubError(f"{what}: GitHub answered a {type(page).__name__} where a list was expected")
            items += page
            seen.add(str(response.url))
            url, query = response.links.get("next", {}).get("url"), None
            if url in seen:
                raise GitHubError(f"{what}: GitHub's next page link points back to a page already read")
        return items

    # -- pull request comments and commit statuses -----------------------------------------------

    def comments(self, pr: int) -> list[dict]:
        return self._pages(f"listing comments of #{pr}", "pull-requests: write",
                           f"{self.repo_path}/issues/{_number(pr)}/comments")

    def upsert_comment(self, pr: int, body: str, marker: str) -> dict:
        """Update the comment holding `marker` in place, or create it: one sticky comment per PR."""
        ours = [c for c in self.comments(pr) if marker in (c.get("body") or "")]
        if ours:
            return self._object(f"updating comment on PR #{pr}", "pull-requests: write", "PATCH",
                                f"{self.repo_path}/issues/comments/{_number(ours[0]['id'])}", json={"body": body})
        return self.comment(pr, body, permission="pull-requests: write")

    def create_status(self, sha: str, state: str, description: str, target_url: str | None = None,
                      context: str = STATUS_CONTEXT) -> dict:
        payload = {"state": state, "description": description[:140], "context": context}
        if target_url:
            payload["target_url"] = target_url
        return self._object(f"setting status {context} on {sha[:12]}", "statuses: write", "POST",
                            f"{self.repo_path}/statuses/{_segment(sha)}", json=payload)

    # -- pull requests ---------------------------------------------------------------------------

    def pull(self, pr: int) -> dict:
        return self._object(f"reading PR #{pr}", "pull-requests: read", "GET", f"{self.repo_path}/pulls/{_number(pr)}")

    def pulls(self, state: str = "open", head: str | None = None, base: str | None = None) -> list[dict]:
        """Pull requests by state; `head` is 'owner:branch' (GitHub ignores a bare branch, so it is refused)."""
        if state not in ("open", "closed", "all"):
            raise GitHubError(f"pull request state must be open, closed or all, got {state!r}")
        if head is not None and (":" not in head or not all(head.split(":", 1))):
            raise GitHubError(f"head must be 'owner:branch', got {head!r}: GitHub would ignore it and list every PR")
        params = {"state": state, **({"head": head} if head else {}), **({"base": base} if base else {})}
        return self._pages(f"listing {state} pull requests", "pull-requests: read", f"{self.repo_path}/pulls", params)

    def create_pull(self, title: str, head: str, base: str, body: str = "", draft: bool = False) -> dict:
        return self._object(
            f"opening a pull request from {head} into {base}",
            "pull-requests: write (and, for GITHUB_TOKEN, the setting 'Allow GitHub Actions to create and "
            "approve pull requests')",
            "POST", f"{self.repo_path}/pulls", json={"title": title, "head": head, "base": base, "body": body,
                                                      "draft": draft})

    def update_pull(self, pr: int, *, title: str | None = None, body: str | None = None,
                    state: str | None = None) -> dict:
        if state not in (None, "open", "closed"):
            raise GitHubError(f"a pull request's state must be open or closed, got {state!r}")
        changes = {k: v for k, v in (("title", title), ("body", body), ("state", state)) if v is not None}
        if not changes:
            raise GitHubError(f"updating PR #{pr}: give a title, a body or a state")
        return self._object(f"updating PR #{pr}", "pull-requests: write", "PATCH",
                            f"{self.repo_path}/pulls/{_number(pr)}", json=changes)

    def add_labels(self, number: int, labels: Iterable[str]) -> list[dict]:
        """Add labels to an issue or pull request (GitHub creates unknown labels); returns all its labels."""
        what = f"labelling #{number}"
        data = self._json(what, self._call(what, "pull-requests: write (issues: write on an issue)", "POST",
                                           f"{self.repo_path}/issues/{_number(number)}/labels",
                                           json={"labels": list(labels)}))
        if not isinstance(data, list):
            raise GitHubError(f"{what}: GitHub answered a {type(data).__name__} where a list was expected")
        return data

    def reviews(self, pr: int) -> list[dict]:
        """Submitted reviews, oldest first; each has `state`, `user` and `commit_id` (the head it reviewed)."""
        return self._pages(f"listing reviews of PR #{pr}", "pull-requests: read",
                           f"{self.repo_path}/pulls/{_number(pr)}/reviews")

    def approvers(self, pr: int, head_sha: str | None = None) -> list[str]:
        """Users whose latest review is APPROVED, sorted; with `head_sha`, only approvals of that head count."""
        latest: dict[str, dict] = {}
        for review in self.reviews(pr):
            if review.get("state") not in ("COMMENTED", "PENDING") and review.get("user"):
                latest[review["user"]["login"]] = review
        return sorted(user for user, review in latest.items() if review.get("state") == "APPROVED"
                      and (head_sha is None or review.get("commit_id") == head_sha))

    def pulls_for_commit(self, sha: str) -> list[dict]:
        """Pull requests whose head holds `sha`, or that merged it (`GET /commits/{sha}/pulls`)."""
        return self._pages(f"listing pull requests of commit {sha[:12]}", "contents: read",
                           f"{self.repo_path}/commits/{_segment(sha)}/pulls")

    def compare(self, base: str, head: str) -> dict:
        """`status` (identical, ahead, behind, diverged), `ahead_by`, `behind_by`, `files`, ... of base...head."""
        basehead = f"{quote(base, safe='/:')}...{quote(head, safe='/:')}"
        return self._object(f"comparing {base}...{head}", "contents: read", "GET",
                            f"{self.repo_path}/compare/{basehead}")

    # -- issues ----------------------------------------------------------------------------------

    def issues(self, label: str, state: str = "open") -> list[dict]:
        """Issues (not pull requests, which GitHub lists here too) carrying `label`."""
        if "," in label:
            raise GitHubError(f"one label at a time: {label!r} holds a comma, which GitHub reads as two labels")
        if state not in ("open", "closed", "all"):
            raise GitHubError(f"issue state must be open, closed or all, got {state!r}")
        found = self._pages(f"listing {state} issues labelled {label!r}", "issues: read",
                            f"{self.repo_path}/issues", {"labels": label, "state": state})
        return [item for item in found if "pull_request" not in item]

    def create_issue(self, title: str, body: str, labels: Iterable[str] = ()) -> dict:
        return self._object(f"opening issue {title[:60]!r}", "issues: write", "POST", f"{self.repo_path}/issues",
                            json={"title": title, "body": body, "labels": list(labels)})

    def comment(self, number: int, body: str, permission: str = "issues: write") -> dict:
        """A new comment on an issue (or, with permission pull-requests: write, a pull request)."""
        return self._object(f"commenting on #{number}", permission, "POST",
                            f"{self.repo_path}/issues/{_number(number)}/comments", json={"body": body})

    def update_issue(self, number: int, *, title: str | None = None, body: str | None = None) -> dict:
        changes = {k: v for k, v in (("title", title), ("body", body)) if v is not None}
        if not changes:
            raise GitHubError(f"updating issue #{number}: give a title or a body")
        return self._object(f"updating issue #{number}", "issues: write", "PATCH",
                            f"{self.repo_path}/issues/{_number(number)}", json=changes)

    def close_issue(self, number: int, reason: str = "completed") -> dict:
        if reason not in ("completed", "not_planned"):
            raise GitHubError(f"closing reason must be completed or not_planned, got {reason!r}")
        return self._object(f"closing issue #{number}", "issues: write", "PATCH",
                            f"{self.repo_path}/issues/{_number(number)}",
                            json={"state": "closed", "state_reason": reason})

    # -- deployments -----------------------------------------------------------------------------

    def create_deployment(self, ref: str, environment: str, *, payload: dict | None = None, description: str = "",
                          transient: bool = False, production: bool | None = None, task: str = "deploy") -> dict:
        """A deployment record of `ref` to `environment`.

        Never merges the default branch into `ref` (`auto_merge: false`) and never waits for commit
        statuses (`required_contexts: []`): gitops-ml has already decided what ships.
        """
        what = f"recording a deployment of {ref[:40]} to {environment}"
        request = {"ref": ref, "environment": environment, "task": task, "payload": payload or {},
                   "description": description, "auto_merge": False, "required_contexts": [],
                   "transient_environment": transient}
        if production is not None:
            request["production_environment"] = production
        response = self._call(what, "deployments: write", "POST", f"{self.repo_path}/deployments", json=request)
        data = self._json(what, response)
        if response.status_code != 201 or not isinstance(data, dict) or "id" not in data:
            said = data.get("message") if isinstance(data, dict) else None
            raise GitHubError(f"{what}: GitHub answered {response.status_code} without creating it: {said}")
        return data

    def create_deployment_status(self, deployment_id: int, state: str, *, description: str = "",
                                 environment_url: str | None = None, log_url: str | None = None,
                                 auto_inactive: bool | None = None) -> dict:
        if state not in DEPLOYMENT_STATES:
            raise GitHubError(f"deployment state must be one of {', '.join(DEPLOYMENT_STATES)}, got {state!r}")
        request: dict[str, Any] = {"state": state, "description": description[:140]}
        for key, value in (("environment_url", environment_url), ("log_url", log_url),
                           ("auto_inactive", auto_inactive)):
            if value is not None:
                request[key] = value
        return self._object(f"marking deployment {deployment_id} {state}", "deployments: write", "POST",
                            f"{self.repo_path}/deployments/{_number(deployment_id)}/statuses", json=request)

    def deployments(self, environment: str, *, ref: str | None = None, sha: str | None = None) -> list[dict]:
        """Deployments to `environment`, newest first (GitHub's order)."""
        params = {"environment": environment, **({"ref": ref} if ref else {}), **({"sha": sha} if sha else {})}
        return self._pages(f"listing deployments to {environment}", "deployments: read",
                           f"{self.repo_path}/deployments", params)

    def deployment_statuses(self, deployment_id: int) -> list[dict]:
        """A deployment's statuses, newest first."""
        return self._pages(f"listing statuses of deployment {deployment_id}", "deployments: read",
                           f"{self.repo_path}/deployments/{_number(deployment_id)}/statuses")

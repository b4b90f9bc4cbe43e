"""A small GitHub REST client: PR comments (sticky), commit statuses, pull requests, reviews.

Only what gitops-ml posts or reads. `GITHUB_API_URL` makes GitHub Enterprise (and the tests'
local fake) work. Errors name the call and the token permission it needs; the token itself is
never part of a message.
"""

from __future__ import annotations

import os

import httpx

from gitops_ml.errors import GitopsMLError

STATUS_CONTEXT = "gitops-ml/compare"
PERMISSIONS = {"comments": "pull-requests: write", "statuses": "statuses: write", "pulls": "pull-requests: read"}


class GitHubError(GitopsMLError):
    """A GitHub API call failed; the message names the call and what to check."""


class GitHubPermissionError(GitHubError):
    """The token was rejected (401) or lacks a permission (403, or 404 on a private repository)."""


def api_url() -> str:
    return os.environ.get("GITHUB_API_URL") or "https://api.github.com"


class GitHub:
    def __init__(self, token: str, repository: str, url: str | None = None, timeout: float = 30.0):
        if "/" not in repository:
            raise GitHubError(f"repository must be 'owner/name', got {repository!r} (set GITHUB_REPOSITORY)")
        self.repository = repository
        self.http = httpx.Client(
            base_url=(url or api_url()).rstrip("/"),
            timeout=timeout,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "gitops-ml",
            },
        )

    def _request(self, what: str, scope: str, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise GitHubError(f"{what}: could not reach {self.http.base_url}: {type(error).__name__}") from None
        if response.status_code == 401:
            raise GitHubPermissionError(f"{what}: GitHub rejected the token (401); check the github-token input")
        if response.status_code in (403, 404):
            raise GitHubPermissionError(
                f"{what} on {self.repository}: GitHub answered {response.status_code}. The token needs "
                f"`{PERMISSIONS[scope]}` (add it to the workflow's `permissions:`), and the repository and "
                f"number must exist."
            )
        if response.is_error:
            raise GitHubError(f"{what}: GitHub answered {response.status_code}: {response.text[:300]}")
        return response

    def _pages(self, what: str, scope: str, path: str) -> list[dict]:
        """All items of a paginated list, following the `Link: rel="next"` headers."""
        items: list[dict] = []
        url, params = path, {"per_page": 100}
        while url:
            response = self._request(what, scope, "GET", url, params=params)
            items += response.json()
            url, params = response.links.get("next", {}).get("url"), None
        return items

    def comments(self, pr: int) -> list[dict]:
        path = f"/repos/{self.repository}/issues/{pr}/comments"
        return self._pages(f"listing comments of PR #{pr}", "comments", path)

    def upsert_comment(self, pr: int, body: str, marker: str) -> dict:
        """Update the comment holding `marker` in place, or create it: one sticky comment per PR."""
        ours = [c for c in self.comments(pr) if marker in (c.get("body") or "")]
        if ours:
            path = f"/repos/{self.repository}/issues/comments/{ours[0]['id']}"
            return self._request(f"updating comment on PR #{pr}", "comments", "PATCH", path, json={"body": body}).json()
        path = f"/repos/{self.repository}/issues/{pr}/comments"
        return self._request(f"commenting on PR #{pr}", "comments", "POST", path, json={"body": body}).json()

    def create_status(self, sha: str, state: str, description: str, target_url: str | None = None,
                      context: str = STATUS_CONTEXT) -> dict:
        payload = {"state": state, "description": description[:140], "context": context}
        if target_url:
            payload["target_url"] = target_url
        path = f"/repos/{self.repository}/statuses/{sha}"
        return self._request(f"setting status {context} on {sha[:12]}", "statuses", "POST", path, json=payload).json()

    def pull(self, pr: int) -> dict:
        return self._request(f"reading PR #{pr}", "pulls", "GET", f"/repos/{self.repository}/pulls/{pr}").json()

    def approvers(self, pr: int) -> list[str]:
        """Users whose latest (non-comment) review is APPROVED, sorted."""
        latest: dict[str, str] = {}
        path = f"/repos/{self.repository}/pulls/{pr}/reviews"
        for review in self._pages(f"listing reviews of PR #{pr}", "pulls", path):
            if review.get("state") != "COMMENTED" and review.get("user"):
                latest[review["user"]["login"]] = review["state"]
        return sorted(user for user, state in latest.items() if state == "APPROVED")

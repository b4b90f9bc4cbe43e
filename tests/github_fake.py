"""A local fake of the GitHub REST endpoints gitops-ml uses: a real HTTP server, recording every call.

It answers with GitHub's response shapes (REST API 2022-11-28) for one repository: issue and PR
comments, commit statuses, pull requests (list, get, create, update, labels, reviews, the PRs of a
commit), compare, issues (list, create, update), deployments with their statuses, and releases (create, get by
tag, update, list, latest). It checks the
bearer token, paginates with `Link` headers and lists newest first where GitHub does.

Branches and commits: `refs` maps branch names to SHAs; with `git_dir` (a bare or working
repository) refs are resolved and compared with real git, so an act run that pushes a branch to a
local remote can open a pull request from it.

Faults, to test a client for real over HTTP:
- `fake.fail["create_comment"] = 403` answers every call to that endpoint with that status;
- `fake.inject("list_pulls", server_error(502), server_error(502))` answers the next calls from a
  queue, then normally again: 5xx, 429 with Retry-After, rate-limit 403s, a non-JSON 200, a
  redirect, or a `Link` to another host (see the helpers below).
"""

from __future__ import annotations

import contextlib
import itertools
import re
import subprocess
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

TOKEN = "ghs_fake-token-for-tests"
HTML = "https://github.test"
DOCS = "https://docs.github.com/rest"
SHA = re.compile(r"[0-9a-f]{40}")
BOT = "github-actions[bot]"
_ids = itertools.count(1)  # ids for the shapes built outside a State


# -- faults ---------------------------------------------------------------------------------------

@dataclass
class Fault:
    """One canned answer: a JSON body (dict or list) or raw text, with headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"

    def response(self) -> Response:
        if isinstance(self.body, str):
            return Response(self.body, status_code=self.status, headers=self.headers, media_type=self.content_type)
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


def server_error(status: int = 502) -> Fault:
    return Fault(status, {"message": "Server Error"})


def too_many_requests(retry_after: int) -> Fault:
    return Fault(429, {"message": "Too many requests"}, {"Retry-After": str(retry_after)})


def rate_limited(reset: int, status: int = 403) -> Fault:
    """A primary rate limit: `x-ratelimit-remaining: 0` until the epoch second `reset`."""
    return Fault(status, {"message": "API rate limit exceeded for installation ID 1.",
                          "documentation_url": f"{DOCS}/using-the-rest-api/rate-limits-for-the-rest-api"},
                 {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-used": "5000",
                  "x-ratelimit-reset": str(reset), "x-ratelimit-resource": "core"})


def secondary_rate_limit(retry_after: int | None = None) -> Fault:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return Fault(403, {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you "
                                  "try again.", "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api"},
                 {"x-ratelimit-remaining": "4000", **headers})


def forbidden(message: str = "Resource not accessible by integration") -> Fault:
    return Fault(403, {"message": message, "documentation_url": DOCS},
                 {"x-ratelimit-remaining": "4999", "x-accepted-github-permissions": "pull_requests=write"})


def not_json(status: int = 200) -> Fault:
    return Fault(status, "<html><body><h1>Sign in to GitHub</h1></body></html>", content_type="text/html")


def redirect(location: str, status: int = 307) -> Fault:
    return Fault(status, None, {"Location": location})


def links_to(url: str, body: list | None = None) -> Fault:
    """A page whose `Link: rel="next"` points at `url` (e.g. another host)."""
    return Fault(200, body or [], {"Link": f'<{url}>; rel="next"'})


# -- GitHub's shapes ------------------------------------------------------------------------------

def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def user(login: str) -> dict:
    return {"login": login, "id": zlib.crc32(login.encode()), "node_id": f"U_{login}",
            "type": "Bot" if login.endswith("[bot]") else "User", "url": f"https://api.github.test/users/{login}",
            "html_url": f"{HTML}/{login}", "site_admin": False}


def review(login: str, state: str, commit_id: str, pr: int = 1) -> dict:
    """A submitted pull request review, as `GET /pulls/{n}/reviews` lists it."""
    review_id = next(_ids)
    return {"id": review_id, "node_id": f"PRR_{review_id}",
            "user": user(login), "body": "", "state": state, "commit_id": commit_id,
            "html_url": f"{HTML}/acme/repo/pull/{pr}#pullrequestreview-{review_id}",
            "pull_request_url": f"https://api.github.test/repos/acme/repo/pulls/{pr}",
            "author_association": "MEMBER", "submitted_at": now_iso()}


@dataclass
class Recorded:
    """One request as the fake saw it (the token itself is never kept)."""

    name: str
    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorized: bool


@dataclass
class State:
    url: str = ""
    token: str = TOKEN
    page_size: int = 30  # GitHub's default; tests lower it to exercise pagination
    comments: dict[int, list[dict]] = field(default_factory=dict)  # issue/PR number -> comments
    statuses: list[dict] = field(default_factory=list)
    pulls: dict[int, dict] = field(default_factory=dict)
    reviews: dict[int, list[dict]] = field(default_factory=dict)
    issues: dict[int, dict] = field(default_factory=dict)
    labels: dict[str, dict] = field(default_factory=dict)  # name -> label
    deployments: list[dict] = field(default_factory=list)  # oldest first
    deployment_statuses: dict[int, list[dict]] = field(default_factory=dict)  # id -> statuses, oldest first
    releases: list[dict] = field(default_factory=list)  # oldest first
    latest_release: int | None = None  # id of the release GitHub marks "Latest"
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag -> SHA
    git_dir: Path | None = None  # resolve refs and compare with real git when set
    fail: dict[str, int] = field(default_factory=dict)  # endpoint name -> status, every time
    faults: dict[str, deque[Fault]] = field(default_factory=dict)  # endpoint name -> next answers
    calls: list[tuple[str, str]] = field(default_factory=list)  # (endpoint name, path)
    requests: list[Recorded] = field(default_factory=list)
    next_id: int = 1000

    def reset(self) -> None:
        """Back to an empty repository (same server, same URL): each test starts clean."""
        self.__dict__.update(State(url=self.url).__dict__)

    def calls_to(self, name: str) -> int:
        return sum(1 for called, _ in self.calls if called == name)

    def inject(self, name: str, *faults: Fault) -> None:
        """Answer the next calls to endpoint `name` with `faults`, in order, then normally again."""
        self.faults.setdefault(name, deque()).extend(faults)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def new_number(self) -> int:
        """Issues and pull requests share one sequence of numbers, as on GitHub."""
        return max([0, *self.pulls, *self.issues]) + 1

    def git(self, *args: str) -> str | None:
        if self.git_dir is None:
            return None
        done = subprocess.run(["git", "-C", str(self.git_dir), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else None

    def resolve(self, ref: str) -> str | None:
        """The SHA a branch, tag or SHA names, or None when the repository has no such ref."""
        if ref in self.refs:
            return self.refs[ref]
        if found := self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"):
            return found
        return ref if SHA.fullmatch(ref) and self.git_dir is None else None

    def label(self, name: str) -> dict:
        if name not in self.labels:
            self.labels[name] = {"id": self.new_id(), "node_id": f"LA_{name}", "url": f"{self.url}/labels/{name}",
                                 "name": name, "color": "ededed", "default": False, "description": None}
        return self.labels[name]


def error(status: int, message: str, errors: list[dict] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"message": message, "documentation_url": DOCS}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status)


def not_found() -> JSONResponse:
    return error(404, "Not Found")


def invalid(resource: str, field_name: str, code: str = "missing_field") -> JSONResponse:
    return error(422, "Validation Failed", [{"resource": resource, "field": field_name, "code": code}])


def make_app(state: State) -> FastAPI:  # noqa: C901 - one small handler per endpoint
    app = FastAPI()

    async def guard(name: str, request: Request) -> Response | None:
        """Record the call; answer for a bad token, a queued fault or a standing failure."""
        authorized = request.headers.get("authorization") == f"Bearer {state.token}"
        body, readable = None, True
        if request.method in ("POST", "PATCH", "PUT"):
            try:
                body = await request.json()
            except ValueError:
                readable = False
        state.calls.append((name, request.url.path))
        state.requests.append(Recorded(name, request.method, request.url.path, dict(request.query_params), body,
                                       authorized))
        if not authorized:
            return error(401, "Bad credentials")
        if not readable or (body is not None and not isinstance(body, dict)):
            return error(400, "Problems parsing JSON")
        if state.faults.get(name):
            return state.faults[name].popleft().response()
        if name in state.fail:
            return error(state.fail[name], "Resource not accessible by integration")
        return None

    def page(request: Request, items: list[dict]) -> JSONResponse:
        per_page = min(int(request.query_params.get("per_page", 30)), state.page_size)
        number = int(request.query_params.get("page", 1))
        chunk = items[(number - 1) * per_page : number * per_page]
        headers = {}
        if number * per_page < len(items):
            headers["Link"] = f'<{request.url.include_query_params(page=number + 1)}>; rel="next"'
        return JSONResponse(chunk, headers=headers)

    def api(owner: str, repo: str, path: str) -> str:
        return f"{state.url}/repos/{owner}/{repo}{path}"

    # -- comments and statuses ----------------------------------------------------------------------

    @app.get("/repos/{owner}/{repo}/issues/{number}/comments")
    async def list_comments(owner: str, repo: str, number: int, request: Request):
        return await guard("list_comments", request) or page(request, state.comments.get(number, []))

    @app.post("/repos/{owner}/{repo}/issues/{number}/comments")
    async def create_comment(owner: str, repo: str, number: int, request: Request):
        if denied := await guard("create_comment", request):
            return denied
        body = (await request.json()).get("body")
        if not body:
            return invalid("IssueComment", "body")
        comment_id = state.new_id()
        comment = {"id": comment_id, "node_id": f"IC_{comment_id}",
                   "url": api(owner, repo, f"/issues/comments/{comment_id}"),
                   "html_url": f"{HTML}/{owner}/{repo}/pull/{number}#issuecomment-{comment_id}",
                   "issue_url": api(owner, repo, f"/issues/{number}"), "body": body, "user": user(BOT),
                   "author_association": "NONE", "created_at": now_iso(), "updated_at": now_iso()}
        state.comments.setdefault(number, []).append(comment)
        return JSONResponse(comment, status_code=201)

    @app.patch("/repos/{owner}/{repo}/issues/comments/{comment_id}")
    async def update_comment(owner: str, repo: str, comment_id: int, request: Request):
        if denied := await guard("update_comment", request):
            return denied
        body = (await request.json()).get("body")
        if not body:
            return invalid("IssueComment", "body")
        for comment in (c for comments in state.comments.values() for c in comments):
            if comment["id"] == comment_id:
                comment.update(body=body, updated_at=now_iso())
                return comment
        return not_found()

    @app.post("/repos/{owner}/{repo}/statuses/{sha}")
    async def create_status(owner: str, repo: str, sha: str, request: Request):
        if denied := await guard("create_status", request):
            return denied
        given = await request.json()
        if given.get("state") not in ("error", "failure", "pending", "success"):
            return invalid("Status", "state", "invalid")
        status_id = state.new_id()
        status = {"id": status_id, "node_id": f"SC_{status_id}", "url": api(owner, repo, f"/statuses/{sha}"),
                  "sha": sha,
                  "state": given["state"], "description": given.get("description"),
                  "target_url": given.get("target_url"), "context": given.get("context", "default"),
                  "creator": user(BOT), "created_at": now_iso(), "updated_at": now_iso()}
        state.statuses.append(status)
        return JSONResponse(status, status_code=201)

    # -- pull requests --------------------------------------------------------------------------------

    @app.get("/repos/{owner}/{repo}/pulls")
    async def list_pulls(owner: str, repo: str, request: Request):
        if denied := await guard("list_pulls", request):
            return denied
        wanted, head, base = (request.query_params.get(k) for k in ("state", "head", "base"))
        found = [p for _, p in sorted(state.pulls.items(), reverse=True)
                 if wanted == "all" or p.get("state", "open") == (wanted or "open")]
        if head and ":" in head:  # GitHub ignores a head filter that is not 'owner:branch'
            found = [p for p in found if p.get("head", {}).get("label") == head]
        if base:
            found = [p for p in found if p.get("base", {}).get("ref") == base]
        return page(request, found)

    @app.get("/repos/{owner}/{repo}/pulls/{number}")
    async def get_pull(owner: str, repo: str, number: int, request: Request):
        if denied := await guard("get_pull", request):
            return denied
        return state.pulls[number] if number in state.pulls else not_found()

    @app.post("/repos/{owner}/{repo}/pulls")
    async def create_pull(owner: str, repo: str, request: Request):
        if denied := await guard("create_pull", request):
            return denied
        given = await request.json()
        for required in ("title", "head", "base"):
            if not given.get(required):
                return invalid("PullRequest", required)
        head_owner, _, branch = given["head"].rpartition(":")
        label = f"{head_owner or owner}:{branch}"
        head_sha, base_sha = state.resolve(branch), state.resolve(given["base"])
        if head_sha is None:
            return invalid("PullRequest", "head", "invalid")
        if base_sha is None:
            return invalid("PullRequest", "base", "invalid")
        if any(p.get("state") == "open" and p.get("head", {}).get("label") == label
               and p.get("base", {}).get("ref") == given["base"] for p in state.pulls.values()):
            return error(422, "Validation Failed", [{"resource": "PullRequest", "code": "custom",
                                                     "message": f"A pull request already exists for {label}."}])
        number = state.new_number()
        pull = {"url": api(owner, repo, f"/pulls/{number}"), "id": state.new_id(), "node_id": f"PR_{number}",
                "html_url": f"{HTML}/{owner}/{repo}/pull/{number}", "number": number, "state": "open",
                "locked": False, "title": given["title"], "body": given.get("body"), "user": user(BOT),
                "labels": [], "draft": bool(given.get("draft")), "merged": False, "merged_at": None,
                "merge_commit_sha": None, "merged_by": None, "closed_at": None,
                "head": {"label": label, "ref": branch, "sha": head_sha},
                "base": {"label": f"{owner}:{given['base']}", "ref": given["base"], "sha": base_sha},
                "created_at": now_iso(), "updated_at": now_iso()}
        state.pulls[number] = pull
        return JSONResponse(pull, status_code=201)

    @app.patch("/repos/{owner}/{repo}/pulls/{number}")
    async def update_pull(owner: str, repo: str, number: int, request: Request):
        if denied := await guard("update_pull", request):
            return denied
        if number not in state.pulls:
            return not_found()
        given, pull = await request.json(), state.pulls[number]
        if given.get("state") not in (None, "open", "closed"):
            return invalid("PullRequest", "state", "invalid")
        pull.update({k: given[k] for k in ("title", "body", "state") if k in given}, updated_at=now_iso())
        pull["closed_at"] = now_iso() if pull.get("state") == "closed" else None
        return pull

    @app.post("/repos/{owner}/{repo}/issues/{number}/labels")
    async def add_labels(owner: str, repo: str, number: int, request: Request):
        if denied := await guard("add_labels", request):
            return denied
        target = state.pulls.get(number) or state.issues.get(number)
        if target is None:
            return not_found()
        names = (await request.json()).get("labels")
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            return invalid("Label", "labels", "invalid")
        have = {label["name"] for label in target.setdefault("labels", [])}
        target["labels"] += [state.label(n) for n in dict.fromkeys(names) if n not in have]
        return target["labels"]

    @app.get("/repos/{owner}/{repo}/pulls/{number}/reviews")
    async def list_reviews(owner: str, repo: str, number: int, request: Request):
        return await guard("list_reviews", request) or page(request, state.reviews.get(number, []))

    @app.get("/repos/{owner}/{repo}/commits/{sha}/pulls")
    async def commit_pulls(owner: str, repo: str, sha: str, request: Request):
        if denied := await guard("commit_pulls", request):
            return denied
        found = [p for _, p in sorted(state.pulls.items(), reverse=True)
                 if sha in (p.get("head", {}).get("sha"), p.get("merge_commit_sha"))]
        return page(request, found)

    @app.get("/repos/{owner}/{repo}/compare/{basehead:path}")
    async def compare(owner: str, repo: str, basehead: str, request: Request):
        if denied := await guard("compare", request):
            return denied
        base, _, head = basehead.partition("...")
        base_sha, head_sha = state.resolve(base), state.resolve(head)
        merge_base = state.git("merge-base", base_sha, head_sha) if base_sha and head_sha else None
        if merge_base is None:
            return not_found()
        ahead = state.git("rev-list", "--reverse", f"{base_sha}..{head_sha}").split()
        behind = int(state.git("rev-list", "--count", f"{head_sha}..{base_sha}"))
        status = ("identical" if not ahead and not behind else "ahead" if not behind
                  else "behind" if not ahead else "diverged")
        files = [{"filename": line.split("\t")[-1], "status": {"A": "added", "D": "removed"}.get(line[0], "modified")}
                 for line in state.git("diff", "--name-status", f"{merge_base}..{head_sha}").splitlines()]
        return {"url": api(owner, repo, f"/compare/{basehead}"),
                "html_url": f"{HTML}/{owner}/{repo}/compare/{basehead}",
                "base_commit": {"sha": base_sha}, "merge_base_commit": {"sha": merge_base}, "status": status,
                "ahead_by": len(ahead), "behind_by": behind, "total_commits": len(ahead),
                "commits": [{"sha": sha} for sha in ahead], "files": files}

    # -- issues -------------------------------------------------------------------------------------

    def pull_as_issue(number: int, pull: dict) -> dict:
        """How `GET /issues` shows a pull request: as an issue with a `pull_request` key."""
        return {"number": number, "id": pull.get("id"), "title": pull.get("title"), "body": pull.get("body"),
                "state": pull.get("state", "open"), "labels": pull.get("labels", []), "user": pull.get("user"),
                "html_url": pull.get("html_url"),
                "pull_request": {"url": pull.get("url"), "html_url": pull.get("html_url"),
                                 "merged_at": pull.get("merged_at")}}

    @app.get("/repos/{owner}/{repo}/issues")
    async def list_issues(owner: str, repo: str, request: Request):
        if denied := await guard("list_issues", request):
            return denied
        wanted = request.query_params.get("state", "open")
        labels = {n for n in request.query_params.get("labels", "").split(",") if n}
        everything = list(state.issues.items()) + [(n, pull_as_issue(n, p)) for n, p in state.pulls.items()]
        found = [i for _, i in sorted(everything, key=lambda pair: pair[0], reverse=True)
                 if (wanted == "all" or i.get("state", "open") == wanted)
                 and labels <= {label["name"] for label in i.get("labels", [])}]
        return page(request, found)

    @app.post("/repos/{owner}/{repo}/issues")
    async def create_issue(owner: str, repo: str, request: Request):
        if denied := await guard("create_issue", request):
            return denied
        given = await request.json()
        if not given.get("title"):
            return invalid("Issue", "title")
        number = state.new_number()
        issue = {"url": api(owner, repo, f"/issues/{number}"), "id": state.new_id(), "node_id": f"I_{number}",
                 "number": number,
                 "html_url": f"{HTML}/{owner}/{repo}/issues/{number}", "title": given["title"],
                 "body": given.get("body"), "user": user(BOT), "state": "open", "state_reason": None,
                 "labels": [state.label(n) for n in dict.fromkeys(given.get("labels") or [])], "locked": False,
                 "comments": 0, "created_at": now_iso(), "updated_at": now_iso(), "closed_at": None}
        state.issues[number] = issue
        return JSONResponse(issue, status_code=201)

    @app.patch("/repos/{owner}/{repo}/issues/{number}")
    async def update_issue(owner: str, repo: str, number: int, request: Request):
        if denied := await guard("update_issue", request):
            return denied
        if number not in state.issues:
            return not_found()
        given, issue = await request.json(), state.issues[number]
        if given.get("state") not in (None, "open", "closed"):
            return invalid("Issue", "state", "invalid")
        if given.get("state_reason") not in (None, "completed", "not_planned", "reopened"):
            return invalid("Issue", "state_reason", "invalid")
        issue.update({k: given[k] for k in ("title", "body", "state", "state_reason") if k in given},
                     updated_at=now_iso())
        issue["closed_at"] = now_iso() if issue["state"] == "closed" else None
        return issue

    # -- deployments --------------------------------------------------------------------------------

    def latest_states(sha: str) -> dict[str, str]:
        latest: dict[str, str] = {}
        for status in state.statuses:
            if status["sha"] == sha:
                latest[status["context"]] = status["state"]
        return latest

    @app.post("/repos/{owner}/{repo}/deployments")
    async def create_deployment(owner: str, repo: str, request: Request):
        if denied := await guard("create_deployment", request):
            return denied
        given = await request.json()
        if not given.get("ref"):
            return invalid("Deployment", "ref")
        sha = state.resolve(given["ref"])
        if sha is None:
            return error(422, f"No ref found for: {given['ref']}")
        # Without `required_contexts`, GitHub waits for every context; with a list, only those.
        latest = latest_states(sha)
        required = given.get("required_contexts", list(latest))
        failing = [c for c in required if latest.get(c) != "success"]
        if failing:
            return error(409, f"Conflict: Commit status checks failed for {given['ref']}.",
                         [{"contexts": [{"context": c, "state": latest.get(c, "missing")} for c in failing],
                           "resource": "Deployment", "field": "required_contexts", "code": "invalid"}])
        environment = given.get("environment", "production")
        deployment_id = state.new_id()
        deployment = {"url": api(owner, repo, f"/deployments/{deployment_id}"), "id": deployment_id,
                      "node_id": f"DE_{deployment_id}", "sha": sha, "ref": given["ref"],
                      "task": given.get("task", "deploy"), "payload": given.get("payload") or {},
                      "original_environment": environment, "environment": environment,
                      "description": given.get("description"), "creator": user(BOT),
                      "created_at": now_iso(), "updated_at": now_iso(),
                      "statuses_url": api(owner, repo, f"/deployments/{deployment_id}/statuses"),
                      "repository_url": api(owner, repo, ""),
                      "transient_environment": bool(given.get("transient_environment", False)),
                      "production_environment": bool(given.get("production_environment",
                                                                environment == "production"))}
        state.deployments.append(deployment)
        state.deployment_statuses[deployment_id] = []
        return JSONResponse(deployment, status_code=201)

    @app.get("/repos/{owner}/{repo}/deployments")
    async def list_deployments(owner: str, repo: str, request: Request):
        if denied := await guard("list_deployments", request):
            return denied
        filters = {k: request.query_params[k] for k in ("environment", "ref", "sha", "task")
                   if k in request.query_params}
        found = [d for d in reversed(state.deployments) if all(d[k] == v for k, v in filters.items())]
        return page(request, found)

    def add_status(deployment: dict, given: dict) -> dict:
        status_id = state.new_id()
        log_url = given.get("log_url") or given.get("target_url") or ""
        status = {"url": f"{deployment['url']}/statuses/{status_id}", "id": status_id,
                  "node_id": f"DES_{status_id}", "state": given["state"], "creator": user(BOT),
                  "description": given.get("description", ""),
                  "environment": given.get("environment", deployment["environment"]), "target_url": log_url,
                  "log_url": log_url, "environment_url": given.get("environment_url", ""),
                  "created_at": now_iso(), "updated_at": now_iso(), "deployment_url": deployment["url"],
                  "repository_url": deployment["repository_url"]}
        state.deployment_statuses[deployment["id"]].append(status)
        return status

    @app.post("/repos/{owner}/{repo}/deployments/{deployment_id}/statuses")
    async def create_deployment_status(owner: str, repo: str, deployment_id: int, request: Request):
        if denied := await guard("create_deployment_status", request):
            return denied
        deployment = next((d for d in state.deployments if d["id"] == deployment_id), None)
        if deployment is None:
            return not_found()
        given = await request.json()
        if given.get("state") not in ("error", "failure", "inactive", "in_progress", "queued", "pending",
                                      "success"):
            return invalid("DeploymentStatus", "state", "invalid")
        status = add_status(deployment, given)
        if given["state"] == "success" and given.get("auto_inactive", True):
            # GitHub: earlier successful non-transient, non-production deployments to the same environment
            # become inactive.
            for earlier in state.deployments:
                statuses = state.deployment_statuses[earlier["id"]]
                if (earlier is not deployment and earlier["environment"] == deployment["environment"]
                        and not earlier["transient_environment"] and not earlier["production_environment"]
                        and statuses and statuses[-1]["state"] == "success"):
                    add_status(earlier, {"state": "inactive"})
        return JSONResponse(status, status_code=201)

    @app.get("/repos/{owner}/{repo}/deployments/{deployment_id}/statuses")
    async def list_deployment_statuses(owner: str, repo: str, deployment_id: int, request: Request):
        if denied := await guard("list_deployment_statuses", request):
            return denied
        if deployment_id not in state.deployment_statuses:
            return not_found()
        return page(request, list(reversed(state.deployment_statuses[deployment_id])))

    # -- releases -----------------------------------------------------------------------------------

    def release_shape(owner: str, repo: str, given: dict, release_id: int, sha: str | None) -> dict:
        tag = given["tag_name"]
        return {"url": api(owner, repo, f"/releases/{release_id}"), "id": release_id, "node_id": f"RE_{release_id}",
                "html_url": f"{HTML}/{owner}/{repo}/releases/tag/{tag}", "tag_name": tag,
                "target_commitish": given.get("target_commitish") or "main", "name": given.get("name") or tag,
                "body": given.get("body") or "", "draft": bool(given.get("draft", False)),
                "prerelease": bool(given.get("prerelease", False)), "author": user(BOT), "assets": [],
                "created_at": now_iso(), "published_at": now_iso(),
                "tarball_url": api(owner, repo, f"/tarball/{tag}"), "zipball_url": api(owner, repo, f"/zipball/{tag}"),
                "upload_url": f"https://uploads.github.test/repos/{owner}/{repo}/releases/{release_id}/assets{{?name,label}}",
                "tag_sha": sha}  # not in GitHub's shape: the commit the tag named when the release was made

    def mark_latest(release: dict, make_latest: str) -> None:
        if make_latest == "true" or (make_latest == "legacy" and state.latest_release is None):
            state.latest_release = release["id"]

    @app.post("/repos/{owner}/{repo}/releases")
    async def create_release(owner: str, repo: str, request: Request):
        if denied := await guard("create_release", request):
            return denied
        given = await request.json()
        if not given.get("tag_name"):
            return invalid("Release", "tag_name")
        if any(r["tag_name"] == given["tag_name"] for r in state.releases):
            return invalid("Release", "tag_name", "already_exists")
        if given.get("make_latest", "true") not in ("true", "false", "legacy"):
            return invalid("Release", "make_latest", "invalid")
        # GitHub creates a missing tag from target_commitish (default: the default branch).
        sha = state.resolve(given["tag_name"]) or state.resolve(given.get("target_commitish") or "main")
        release = release_shape(owner, repo, given, state.new_id(), sha)
        state.releases.append(release)
        mark_latest(release, given.get("make_latest", "true"))
        return JSONResponse(release, status_code=201)

    @app.get("/repos/{owner}/{repo}/releases/tags/{tag:path}")
    async def get_release_by_tag(owner: str, repo: str, tag: str, request: Request):
        if denied := await guard("get_release_by_tag", request):
            return denied
        found = next((r for r in state.releases if r["tag_name"] == tag), None)
        return JSONResponse(found) if found else not_found()

    @app.get("/repos/{owner}/{repo}/releases/latest")
    async def get_latest_release(owner: str, repo: str, request: Request):
        if denied := await guard("get_latest_release", request):
            return denied
        found = next((r for r in state.releases if r["id"] == state.latest_release), None)
        return JSONResponse(found) if found else not_found()

    @app.patch("/repos/{owner}/{repo}/releases/{release_id}")
    async def update_release(owner: str, repo: str, release_id: int, request: Request):
        if denied := await guard("update_release", request):
            return denied
        found = next((r for r in state.releases if r["id"] == release_id), None)
        if found is None:
            return not_found()
        given = await request.json()
        for key in ("tag_name", "target_commitish", "name", "body", "draft", "prerelease"):
            if key in given:
                found[key] = given[key]
        mark_latest(found, given.get("make_latest", "false"))
        return JSONResponse(found)

    @app.get("/repos/{owner}/{repo}/releases")
    async def list_releases(owner: str, repo: str, request: Request):
        return await guard("list_releases", request) or page(request, list(reversed(state.releases)))

    return app


@contextlib.contextmanager
def serve(app: FastAPI, host: str = "127.0.0.1") -> Iterator[str]:
    """Run `app` on `host` (a free port) in a thread; yield its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the fake server on {host} did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def github_fake_server() -> Iterator[State]:
    """One fake for the whole session (starting a server per test costs ~0.3 s)."""
    state = State()
    with serve(make_app(state)) as url:
        state.url = url
        yield state


@pytest.fixture
def github_fake(github_fake_server, monkeypatch):
    """The fake on 127.0.0.1, emptied for this test; GITHUB_API_URL points at it. Yields its State."""
    github_fake_server.reset()
    monkeypatch.setenv("GITHUB_API_URL", github_fake_server.url)
    return github_fake_server

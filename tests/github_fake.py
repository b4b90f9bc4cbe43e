"""A local fake of the few GitHub REST endpoints gitops-ml uses, recording every call.

It checks the bearer token, paginates with `Link` headers like GitHub, and can be told to answer
an endpoint with an error status (`fake.fail["create_comment"] = 403`) to test permission messages.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from tests.conftest import free_port

TOKEN = "ghs_fake-token-for-tests"


@dataclass
class State:
    url: str = ""
    token: str = TOKEN
    page_size: int = 30  # GitHub's default; tests lower it to exercise pagination
    comments: dict[int, list[dict]] = field(default_factory=dict)  # PR number -> comments
    statuses: list[dict] = field(default_factory=list)
    pulls: dict[int, dict] = field(default_factory=dict)
    reviews: dict[int, list[dict]] = field(default_factory=dict)
    fail: dict[str, int] = field(default_factory=dict)  # endpoint name -> status to answer
    calls: list[tuple[str, str]] = field(default_factory=list)  # (endpoint name, path)
    next_id: int = 1000

    def calls_to(self, name: str) -> int:
        return sum(1 for called, _ in self.calls if called == name)


def make_app(state: State) -> FastAPI:
    app = FastAPI()

    def guard(name: str, request: Request) -> Response | None:
        state.calls.append((name, request.url.path))
        if request.headers.get("authorization") != f"Bearer {state.token}":
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        if name in state.fail:
            return JSONResponse({"message": "Resource not accessible by integration"}, status_code=state.fail[name])
        return None

    def page(request: Request, items: list[dict]) -> JSONResponse:
        per_page = min(int(request.query_params.get("per_page", 30)), state.page_size)
        number = int(request.query_params.get("page", 1))
        chunk = items[(number - 1) * per_page : number * per_page]
        headers = {}
        if number * per_page < len(items):
            headers["Link"] = f'<{request.url.include_query_params(page=number + 1)}>; rel="next"'
        return JSONResponse(chunk, headers=headers)

    def new_id() -> int:
        state.next_id += 1
        return state.next_id

    @app.get("/repos/{owner}/{repo}/issues/{number}/comments")
    def list_comments(owner: str, repo: str, number: int, request: Request):
        return guard("list_comments", request) or page(request, state.comments.get(number, []))

    @app.post("/repos/{owner}/{repo}/issues/{number}/comments")
    async def create_comment(owner: str, repo: str, number: int, request: Request):
        if denied := guard("create_comment", request):
            return denied
        comment = {"id": new_id(), "body": (await request.json())["body"], "user": {"login": "github-actions[bot]"},
                   "html_url": f"https://github.test/{owner}/{repo}/pull/{number}#c"}
        state.comments.setdefault(number, []).append(comment)
        return JSONResponse(comment, status_code=201)

    @app.patch("/repos/{owner}/{repo}/issues/comments/{comment_id}")
    async def update_comment(owner: str, repo: str, comment_id: int, request: Request):
        if denied := guard("update_comment", request):
            return denied
        for comment in (c for comments in state.comments.values() for c in comments):
            if comment["id"] == comment_id:
                comment["body"] = (await request.json())["body"]
                return comment
        return JSONResponse({"message": "Not Found"}, status_code=404)

    @app.post("/repos/{owner}/{repo}/statuses/{sha}")
    async def create_status(owner: str, repo: str, sha: str, request: Request):
        if denied := guard("create_status", request):
            return denied
        status = {"id": new_id(), "sha": sha, **(await request.json())}
        state.statuses.append(status)
        return JSONResponse(status, status_code=201)

    @app.get("/repos/{owner}/{repo}/pulls/{number}")
    def get_pull(owner: str, repo: str, number: int, request: Request):
        if denied := guard("get_pull", request):
            return denied
        if number not in state.pulls:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        return state.pulls[number]

    @app.get("/repos/{owner}/{repo}/pulls/{number}/reviews")
    def list_reviews(owner: str, repo: str, number: int, request: Request):
        return guard("list_reviews", request) or page(request, state.reviews.get(number, []))

    return app


@pytest.fixture
def github_fake(monkeypatch):
    """The fake on 127.0.0.1 in a thread; GITHUB_API_URL points at it for the test. Yields its State."""
    state = State()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(make_app(state), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the GitHub fake did not start")
        time.sleep(0.05)
    state.url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("GITHUB_API_URL", state.url)
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(timeout=10)

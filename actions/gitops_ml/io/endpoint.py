"""A serving endpoint over HTTP: wait until it is ready, and collect the smoke test's answers.

The verdict on the answers is `core.smoke.problems`; this module only asks. Every deploy target
uses it with the URL it can reach (a container's address, a port-forward, the environment URL).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from gitops_ml.core.smoke import Answer, Golden, Observed

POLL_S = 0.25


class Endpoint:
    def __init__(self, base_url: str, timeout_s: float = 30.0, direct: bool = False):
        """`direct`: a container's own address, never reached through HTTP(S)_PROXY."""
        self.url = base_url.rstrip("/")
        self.client = httpx.Client(timeout=timeout_s, trust_env=not direct)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Endpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _answer(self, method: str, path: str, **kwargs: Any) -> Answer:
        try:
            response = self.client.request(method, self.url + path, **kwargs)
        except httpx.HTTPError as error:
            return Answer(None, error=f"{type(error).__name__}: {error}")
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:500]
        return Answer(response.status_code, body)

    def get(self, path: str) -> Answer:
        return self._answer("GET", path)

    def wait_ready(self, path: str, timeout_s: float, gone: Callable[[], str | None] = lambda: None) -> Answer:
        """Poll `path` until it answers 200 or `timeout_s` passes; `gone` says why to stop early
        (e.g. the container exited). Returns the last answer (status 200 when ready)."""
        deadline = time.monotonic() + timeout_s
        while True:
            last = self.get(path)
            if last.status == 200:
                return last
            stop = gone()
            if stop:
                return Answer(None, error=stop)
            if time.monotonic() >= deadline:
                return last
            time.sleep(POLL_S)

    def observe(self, golden: Golden, health_path: str = "/health", ready_path: str = "/ready") -> Observed:
        """The smoke test's four answers."""
        return Observed(
            health=self.get(health_path),
            ready=self.get(ready_path),
            metadata=self.get("/metadata"),
            predict=self._answer("POST", "/predict", json={"rows": golden.rows}),
        )

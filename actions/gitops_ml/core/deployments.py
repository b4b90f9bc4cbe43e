"""GitHub deployment records of a deploy or a rollback, as pure functions of what happened.

A deploy is one GitHub deployment of the commit that was shipped to one environment: `in_progress`
while it runs, then `success` (with the environment URL) or `failure` (with the failing step and
why). When a deploy succeeds, the deployment it replaced is marked `inactive`. A rollback is its own
deployment (task `deploy:rollback`) and always ends `failure`: the version rolled back from failed
in production, so it is never reported as a success, even when the redeploy of the previous
champion served; its description says what serves now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gitops_ml.core.deploy import DeployResult

DEPLOY_TASK = "deploy"
ROLLBACK_TASK = "deploy:rollback"
MAX_DESCRIPTION = 140  # GitHub truncates deployment status descriptions beyond this


@dataclass(frozen=True)
class Status:
    state: str
    description: str
    environment_url: str | None = None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


def payload(model: str, version: str, image: str, rollback_from: str | None = None,
            reason: str | None = None) -> dict[str, Any]:
    """What the deployment carries: the model version and the image by digest (and, for a rollback, from what)."""
    found: dict[str, Any] = {"model": model, "version": version, "image": image}
    if rollback_from is not None:
        found.update(rollback_from=rollback_from, reason=reason or "")
    return found


def description(model: str, version: str, rollback_from: str | None = None) -> str:
    if rollback_from is not None:
        return _short(f"roll back {model} from version {rollback_from} to version {version}")
    return _short(f"{model} version {version}")


def started(version: str, rollback_from: str | None = None) -> Status:
    if rollback_from is not None:
        return Status("in_progress", _short(f"redeploying version {version} (rolling back from {rollback_from})"))
    return Status("in_progress", _short(f"deploying version {version}"))


def finished(result: DeployResult, rollback_from: str | None = None, reason: str | None = None) -> Status:
    """The final status of a deployment: success only for a deploy (never a rollback) that serves."""
    url = result.environment_url
    if rollback_from is not None:
        if result.ok:
            why = f": {reason}" if reason else ""
            return Status("failure", _short(f"rolled back: version {rollback_from} replaced by version "
                                            f"{result.version}{why}"), url)
        return Status("failure", _short(f"rollback to version {result.version} failed at {result.step}, "
                                        f"version {rollback_from} still serves: {result.reason}"), url)
    if result.ok:
        return Status("success", _short(f"version {result.version} serves"), url)
    return Status("failure", _short(f"failed at {result.step}: {result.reason}"), url)


def replaced(deployments: list[dict[str, Any]], latest_state: dict[int, str | None], current: int) -> list[int]:
    """The deployments of this environment a successful deploy (or rollback) made inactive.

    `deployments` as GitHub lists them (newest first); `latest_state` maps an id to its newest
    status's state. Every earlier deployment whose newest state is `success` was live until now.
    """
    return [d["id"] for d in deployments if d["id"] != current and latest_state.get(d["id"]) == "success"]

"""Record a deploy (or a rollback) through GitHub's Deployments API, when a token is given.

`Recorder.start` creates the deployment and marks it `in_progress` before anything moves: a token
without `deployments: write` fails the command then, with nothing deployed. `Recorder.finish` posts
the final status (core.deployments decides it) and marks the deployment it replaced `inactive`; a
GitHub failure there is a warning, never a change of the outcome (the deploy is also recorded on
the model version). Without a token (a laptop) nothing is recorded and nothing is said.
"""

from __future__ import annotations

import os

from gitops_ml.commands.options import GitHubTarget
from gitops_ml.core import deployments
from gitops_ml.core.deploy import DeployResult
from gitops_ml.errors import GitopsMLError
from gitops_ml.io import gha
from gitops_ml.io.github import GitHub, GitHubError

RECENT = 30  # deployments checked for the one a deploy replaced (GitHub's first page)


def run_url() -> str | None:
    parts = [os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    return f"{parts[0]}/{parts[1]}/actions/runs/{parts[2]}" if all(parts) else None


class Recorder:
    """One GitHub deployment: `start` before the deploy, `finish` with its result."""

    def __init__(self, target: GitHubTarget | None, github: GitHub | None = None):
        self.target = target
        self.github = github or (GitHub(target.token, target.repository) if target and target.usable else None)
        self.id: int | None = None
        self.rollback_from: str | None = None
        self.reason: str | None = None

    @property
    def enabled(self) -> bool:
        return self.github is not None

    def start(self, model: str, version: str, image: str, environment: str, ref: str | None,
              rollback_from: str | None = None, reason: str | None = None) -> None:
        if not self.enabled:
            return
        ref = (self.target.sha if self.target else None) or ref
        if not ref:
            raise GitopsMLError(f"recording the deployment to {environment} needs the commit it ships: set "
                                "GITHUB_SHA (--sha), or tag the version with git_sha")
        self.rollback_from, self.reason = rollback_from, reason
        task = deployments.DEPLOY_TASK if rollback_from is None else deployments.ROLLBACK_TASK
        created = self.github.create_deployment(
            ref, environment, task=task, payload=deployments.payload(model, version, image, rollback_from, reason),
            description=deployments.description(model, version, rollback_from))
        self.id = int(created["id"])
        status = deployments.started(version, rollback_from)
        self.github.create_deployment_status(self.id, status.state, description=status.description,
                                             log_url=run_url())
        gha.log(f"GitHub deployment {self.id} to {environment}: {status.state}")

    def finish(self, result: DeployResult) -> None:
        if not self.enabled or self.id is None:
            return
        status = deployments.finished(result, self.rollback_from, self.reason)
        try:
            self.github.create_deployment_status(self.id, status.state, description=status.description,
                                                 environment_url=status.environment_url, log_url=run_url(),
                                                 auto_inactive=False)
            gha.log(f"GitHub deployment {self.id} to {result.environment}: {status.state}")
            if result.ok:
                self._retire_replaced(result.environment)
        except GitHubError as error:
            gha.warning(f"could not record the outcome of GitHub deployment {self.id} ({status.state}): {error}")

    def _retire_replaced(self, environment: str) -> None:
        recent = self.github.deployments(environment)[:RECENT]
        latest = {}
        for found in recent:
            if found["id"] != self.id:
                statuses = self.github.deployment_statuses(found["id"])
                latest[found["id"]] = statuses[0]["state"] if statuses else None
        for old in deployments.replaced(recent, latest, self.id):
            self.github.create_deployment_status(old, "inactive", description=f"replaced by deployment {self.id}")
            gha.log(f"GitHub deployment {old} to {environment}: inactive (replaced)")

"""`gitops-ml rollback`: put the previous champion back, recording who did it and why.

With `--environment`, the previous champion's image (by the digest recorded on it) is redeployed
there and smoke-tested first; the aliases move only when it serves. The two aliases swap, so the
rolled-back version stays one command away should the rollback itself turn out to be the mistake.
A rollback is reported as a failed deployment of the version rolled back from, never a success.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from gitops_ml.commands import deploy, options, resolve
from gitops_ml.core.contract import Contract
from gitops_ml.core.report import rollback_summary
from gitops_ml.errors import GitopsMLError
from gitops_ml.io import gha
from gitops_ml.io.registry import CHAMPION, PREVIOUS, Registry


class NothingToRollBack(GitopsMLError):
    """There is no previous champion to go back to."""


@dataclass(frozen=True)
class Inputs:
    root: Path
    reason: str
    by: str | None = None
    environment: str | None = None  # redeploy the previous champion's image there first
    github: options.GitHubTarget | None = None  # record the rollback as a GitHub deployment (always failed)


def run(contract: Contract, inputs: Inputs) -> dict:
    reason, environment, root = inputs.reason, inputs.environment, inputs.root
    registry = Registry.for_contract(contract)
    previous = registry.by_alias(PREVIOUS)
    current = registry.by_alias(CHAMPION)
    if previous is None:
        raise NothingToRollBack(
            f"{registry.name} has no '{PREVIOUS}' alias, so there is nothing to roll back to (champion: "
            f"{current.version if current else 'none'}). Promote a known-good version with "
            "`gitops-ml promote --version N --force --reason ...` instead."
        )
    if environment is not None:
        result = deploy.redeploy(contract, previous.version, environment, root, github=inputs.github,
                                 rollback_from=current.version if current else "none", reason=reason)
        deploy.report(result, root / "reports")
        if not result.ok:
            gha.log(f"not rolling back {registry.name}: redeploying version {previous.version} to {environment} "
                    f"failed; no alias was moved")
            return {"version": None, "rolled_back_version": None, "deploy": result.to_dict()}
    now, by = datetime.now(UTC).isoformat(timespec="seconds"), inputs.by or resolve.actor()
    registry.set_tags(previous.version, {"audit.rollback_at": now, "audit.rollback_by": by,
                                         "audit.rollback_reason": reason,
                                         "audit.rollback_from": current.version if current else "none"})
    registry.set_alias(CHAMPION, previous.version)
    if current is not None:
        registry.set_alias(PREVIOUS, current.version)
        registry.set_tags(current.version, {"audit.rolled_back_at": now, "audit.rolled_back_by": by,
                                            "audit.rolled_back_reason": reason})
    else:
        registry.delete_alias(PREVIOUS)
    was = current.version if current else "none"
    gha.log(f"rolled back {registry.name}: {CHAMPION} {was} -> {previous.version} ({reason})")
    gha.set_output("version", previous.version)
    gha.set_output("rolled-back-version", current.version if current else "")
    gha.add_summary(rollback_summary(registry.name, previous.version, was, by, reason))
    return {"version": previous.version, "rolled_back_version": current.version if current else None}


@click.command("rollback")
@options.contract
@options.tracking_uri
@click.option("--reason", envvar="GITOPS_ML_REASON", required=True, help="why (recorded on both versions)")
@click.option("--by", envvar="GITOPS_ML_BY", default=None, help="who [default: GITHUB_ACTOR or the local user]")
@click.option("--environment", envvar="GITOPS_ML_ENVIRONMENT", default=None,
              help="redeploy the previous champion's image there first [default: move the aliases only]")
@options.github
def cli(**given) -> int:
    """Put the previous champion back: redeploy its image (with --environment), then swap the aliases."""
    contract, inputs = options.build(Inputs, given)
    return 0 if run(contract, inputs)["version"] else 1

"""`gitops-ml promote`: move `champion` to an approved version and record who approved what.

The checks come first and move nothing when they fail: the version's compare verdict must be
`promote`, against the champion that is still serving (otherwise the comparison is stale), unless
`--force` with a `--reason`, which is recorded. The audit trail lives on the version as `audit.*`
tags, so `gitops-ml lineage` can print it from the registry alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from gitops_ml.commands import options, resolve
from gitops_ml.core.contract import Contract
from gitops_ml.core.policy import promotion_refusal
from gitops_ml.core.report import promotion_summary
from gitops_ml.errors import GitopsMLError
from gitops_ml.io import gha
from gitops_ml.io.registry import CHAMPION, PREVIOUS, Registry, Version


class PromotionRefused(GitopsMLError):
    """The version is not approved for promotion by its comparison; nothing was moved."""


@dataclass(frozen=True)
class Inputs:
    root: Path
    version: str | None = None
    force: bool = False
    reason: str | None = None
    pr_url: str | None = None
    approvers: str | None = None
    merged_by: str | None = None
    image_digest: str | None = None
    github: options.GitHubTarget = options.GitHubTarget()


def github_facts(target: options.GitHubTarget, pull: bool, reviews: bool) -> dict[str, str]:
    """PR URL and merged-by (`pull`) and approvers (`reviews`) from GitHub, when a token and a PR are given."""
    if not (target.usable and target.pr_number and (pull or reviews)):
        return {}
    from gitops_ml.io.github import GitHub

    github, number, facts = GitHub(target.token, target.repository), int(target.pr_number), {}
    if pull:
        found = github.pull(number)
        facts = {"pr_url": found.get("html_url") or "", "merged_by": (found.get("merged_by") or {}).get("login") or ""}
    if reviews:
        facts["approvers"] = ",".join(github.approvers(number))
    return facts


def audit_trail(inputs: Inputs, target: Version, champion: Version | None, problem: str | None,
                facts: dict[str, str], now: str) -> dict[str, str | None]:
    return {
        "audit.promoted_at": now,
        "audit.promoted_by": resolve.actor(),
        "audit.replaced_version": champion.version if champion else "none",
        "audit.compare_verdict": target.tags.get("compare.verdict", "none"),
        "audit.compared_with": target.tags.get("compare.champion_version", "none"),
        "audit.pr_number": inputs.github.pr_number,
        "audit.pr_url": inputs.pr_url or facts.get("pr_url") or None,
        "audit.approvers": inputs.approvers if inputs.approvers is not None else facts.get("approvers"),
        "audit.merged_by": inputs.merged_by or facts.get("merged_by") or None,
        "audit.image_digest": inputs.image_digest,
        "audit.git_sha": target.tags.get("git_sha"),
        "audit.data_hash": target.tags.get("data_hash"),
        "audit.forced": str(bool(problem and inputs.force)).lower(),
        "audit.force_reason": inputs.reason if problem and inputs.force else None,
    }


def run(contract: Contract, inputs: Inputs) -> dict:
    if inputs.force and not (inputs.reason or "").strip():
        raise PromotionRefused("--force needs --reason: a forced promotion records why it skipped the comparison")
    registry = Registry.for_contract(contract)
    pr_number = inputs.github.pr_number
    target = registry.get(inputs.version or resolve.version_for(registry, inputs.root, pr_number,
                                                                fallback_latest=False))
    champion = registry.by_alias(CHAMPION)
    if champion is not None and champion.version == target.version:
        gha.log(f"{registry.name} version {target.version} is already the champion; nothing to do")
        return {"version": target.version, "previous_version": None, "moved": False}
    problem = promotion_refusal(target.version, target.tags.get("compare.verdict"),
                                target.tags.get("compare.champion_version"), champion.version if champion else None)
    if problem and not inputs.force:
        raise PromotionRefused(
            f"not promoting {registry.name}: {problem}. No alias was moved. Fix the model in a pull request, "
            "or pass --force with --reason to override (the reason is recorded)."
        )
    facts = github_facts(inputs.github, pull=not (inputs.pr_url and inputs.merged_by),
                         reviews=inputs.approvers is None)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    audit = audit_trail(inputs, target, champion, problem, facts, now)
    if problem:
        gha.warning(f"forced promotion of version {target.version}: {problem}; reason: {inputs.reason}")
    registry.set_tags(target.version, audit)
    if champion is not None:
        registry.set_alias(PREVIOUS, champion.version)
    registry.set_alias(CHAMPION, target.version)
    if champion is not None:
        registry.set_tags(champion.version, {"audit.retired_at": now, "audit.retired_by_version": target.version})
    result = {"version": target.version, "previous_version": champion.version if champion else None, "moved": True}
    gha.log(f"promoted {registry.name} version {target.version} to {CHAMPION}"
            f"{f' (was {champion.version}, now {PREVIOUS})' if champion else ' (first champion)'}")
    gha.set_output("version", target.version)
    gha.set_output("previous-version", champion.version if champion else "")
    gha.add_summary(promotion_summary(registry.name, target.version, champion.version if champion else None, audit))
    return result


@click.command("promote")
@options.contract
@options.tracking_uri
@click.option("--version", envvar="GITOPS_ML_VERSION", default=None,
              help="version to promote [default: the newest tagged for --pr-number, else reports/train.json's]")
@click.option("--force", is_flag=True, envvar="GITOPS_ML_FORCE", help="promote even without a promote verdict")
@click.option("--reason", envvar="GITOPS_ML_REASON", default=None, help="why (required with --force; recorded)")
@click.option("--pr-url", envvar="GITOPS_ML_PR_URL", default=None, help="[default: from GitHub]")
@click.option("--approvers", envvar="GITOPS_ML_APPROVERS", default=None,
              help="comma-separated approvers [default: from the PR's reviews]")
@click.option("--merged-by", envvar="GITOPS_ML_MERGED_BY", default=None, help="[default: from GitHub]")
@click.option("--image-digest", envvar="GITOPS_ML_IMAGE_DIGEST", default=None, help="digest of the deployed image")
@options.github
def cli(**given) -> int:
    """Move the champion alias to an approved version (the old champion becomes previous-champion)."""
    contract, inputs = options.build(Inputs, given)
    run(contract, inputs)
    return 0

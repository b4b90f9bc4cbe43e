"""`gitops-ml promote`: move `champion` to a verified version and record who approved what.

The checks come first and move nothing when they fail: the production version must carry the
verdict `gitops-ml verify` recorded (`verify.verdict` = promote, tags only the production identity
can write; `compare.*` tags from pull-request jobs are never read), against the champion that is
still serving (otherwise the verification is stale), unless `--force` with a `--reason`, which is
recorded. Several versions (verify's `versions` output) are promoted in order, each verified
against the one before. The audit trail lives on the version as `audit.*` tags, so
`gitops-ml lineage` can print it from the registry alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import click

from gitops_ml.commands import options, resolve
from gitops_ml.commands.verify import VERIFY_REPORT
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
        "audit.compare_verdict": target.tags.get("verify.verdict", "none"),
        "audit.compared_with": target.tags.get("verify.champion_version", "none"),
        "audit.pr_number": inputs.github.pr_number or target.tags.get("verify.pr_number"),
        "audit.pr_url": inputs.pr_url or facts.get("pr_url") or target.tags.get("audit.pr_url"),
        "audit.approvers": (inputs.approvers if inputs.approvers is not None
                            else facts.get("approvers") or target.tags.get("audit.approvers")),
        "audit.merged_by": inputs.merged_by or facts.get("merged_by") or target.tags.get("audit.merged_by"),
        "audit.image_digest": inputs.image_digest,
        "audit.git_sha": target.tags.get("git_sha"),
        "audit.data_hash": target.tags.get("data_hash"),
        "audit.forced": str(bool(problem and inputs.force)).lower(),
        "audit.force_reason": inputs.reason if problem and inputs.force else None,
    }


def versions_to_promote(registry: Registry, inputs: Inputs) -> list[str]:
    """--version (one, or several in order), else the version verified for --pr-number, else verify's report."""
    if inputs.version:
        return inputs.version.replace(",", " ").split()
    pr_number = inputs.github.pr_number
    if pr_number:
        tagged = [v.version for v in registry.versions() if v.tags.get("verify.pr_number") == str(pr_number)]
        if tagged:
            return tagged[-1:]
    report = inputs.root / VERIFY_REPORT
    if report.is_file():
        found = json.loads(report.read_text(encoding="utf-8")).get("versions") or []
        if found:
            return [str(v) for v in found]
    where = f"verified for PR #{pr_number}, " if pr_number else ""
    raise PromotionRefused(f"no version of {registry.name} to promote: none {where}none in {VERIFY_REPORT}; "
                           "run `gitops-ml verify` first, or pass --version")


def promote_one(registry: Registry, inputs: Inputs, version: str) -> dict:
    target = registry.get(version)
    champion = registry.by_alias(CHAMPION)
    if champion is not None and champion.version == target.version:
        gha.log(f"{registry.name} version {target.version} is already the champion; nothing to do")
        return {"version": target.version, "previous_version": None, "moved": False}
    problem = promotion_refusal(target.version, target.tags.get("verify.verdict"),
                                target.tags.get("verify.champion_version"), champion.version if champion else None)
    if problem and not inputs.force:
        raise PromotionRefused(
            f"not promoting {registry.name}: {problem}. No alias was moved. Fix the model in a pull request, "
            "or pass --force with --reason to override (the reason is recorded)."
        )
    facts = github_facts(inputs.github, pull=not (inputs.pr_url and inputs.merged_by) and not target.tags.get(
        "audit.merged_by"), reviews=inputs.approvers is None and "audit.approvers" not in target.tags)
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
    gha.log(f"promoted {registry.name} version {target.version} to {CHAMPION}"
            f"{f' (was {champion.version}, now {PREVIOUS})' if champion else ' (first champion)'}")
    gha.add_summary(promotion_summary(registry.name, target.version, champion.version if champion else None, audit))
    return {"version": target.version, "previous_version": champion.version if champion else None, "moved": True}


def run(contract: Contract, inputs: Inputs) -> dict:
    if inputs.force and not (inputs.reason or "").strip():
        raise PromotionRefused("--force needs --reason: a forced promotion records why it skipped the comparison")
    registry = Registry.for_contract(contract)
    versions = versions_to_promote(registry, inputs)
    first = None
    for version in versions:  # in order: each was verified against the one before it
        # Only the last one was built and deployed: the image digest is its audit trail, not theirs.
        result = promote_one(registry, inputs if version == versions[-1] else replace(inputs, image_digest=None),
                             version)
        first = first or result
    result = {**result, "previous_version": first["previous_version"], "versions": versions}
    gha.set_output("version", result["version"])
    gha.set_output("previous-version", result["previous_version"] or "")
    return result


@click.command("promote")
@options.contract
@options.tracking_uri
@click.option("--version", envvar="GITOPS_ML_VERSION", default=None,
              help="version(s) to promote, in order [default: the one verified for --pr-number, else "
                   "reports/verify/verify.json's]")
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

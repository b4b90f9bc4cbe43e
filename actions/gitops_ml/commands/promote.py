"""`gitops-ml promote`: move `champion` to an approved version and record who approved what.

The checks come first and move nothing when they fail: the version's compare verdict must be
`promote`, against the champion that is still serving (otherwise the comparison is stale), unless
`--force` with a `--reason`, which is recorded. The audit trail lives on the version as `audit.*`
tags, so `gitops-ml lineage` can print it from the registry alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from gitops_ml.commands import options, resolve
from gitops_ml.errors import GitopsMLError
from gitops_ml.io import gha
from gitops_ml.io.registry import CHAMPION, PREVIOUS, Registry, Version


class PromotionRefused(GitopsMLError):
    """The version is not approved for promotion by its comparison; nothing was moved."""


def refusal(version: Version, champion: Version | None) -> str | None:
    """Why the comparison does not approve `version` against today's champion, or None when it does."""
    verdict = version.tags.get("compare.verdict")
    compared_with = version.tags.get("compare.champion_version")
    current = champion.version if champion else "none"
    if verdict is None:
        return f"version {version.version} has never been compared (no compare.verdict tag); run `gitops-ml compare`"
    if verdict != "promote":
        return f"version {version.version}'s compare verdict is '{verdict}' (against champion {compared_with})"
    if compared_with != current:
        return (f"version {version.version} was compared with champion {compared_with}, but the champion is now "
                f"{current}; run `gitops-ml compare` again")
    return None


def github_facts(token: str | None, repository: str | None, pr_number: str | None, pull: bool,
                 reviews: bool) -> dict[str, str]:
    """PR URL and merged-by (`pull`) and approvers (`reviews`) from GitHub, when a token and a PR are given."""
    if not (token and repository and pr_number and (pull or reviews)):
        return {}
    from gitops_ml.io.github import GitHub

    github, number, facts = GitHub(token, repository), int(pr_number), {}
    if pull:
        found = github.pull(number)
        facts = {"pr_url": found.get("html_url") or "", "merged_by": (found.get("merged_by") or {}).get("login") or ""}
    if reviews:
        facts["approvers"] = ",".join(github.approvers(number))
    return facts


def run(contract, root: Path, version: str | None, force: bool, reason: str | None, pr_number: str | None = None,
        pr_url: str | None = None, approvers: str | None = None, merged_by: str | None = None,
        image_digest: str | None = None, repository: str | None = None, token: str | None = None) -> dict:
    if force and not (reason or "").strip():
        raise PromotionRefused("--force needs --reason: a forced promotion records why it skipped the comparison")
    registry = Registry.for_contract(contract)
    target = registry.get(version or resolve.version_for(registry, root, pr_number, fallback_latest=False))
    champion = registry.by_alias(CHAMPION)
    if champion is not None and champion.version == target.version:
        print(f"{registry.name} version {target.version} is already the champion; nothing to do")
        return {"version": target.version, "previous_version": None, "moved": False}
    problem = refusal(target, champion)
    if problem and not force:
        raise PromotionRefused(
            f"not promoting {registry.name}: {problem}. No alias was moved. Fix the model in a pull request, "
            "or pass --force with --reason to override (the reason is recorded)."
        )
    facts = github_facts(token, repository, pr_number, pull=not (pr_url and merged_by), reviews=approvers is None)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    audit = {
        "audit.promoted_at": now,
        "audit.promoted_by": resolve.actor(),
        "audit.replaced_version": champion.version if champion else "none",
        "audit.compare_verdict": target.tags.get("compare.verdict", "none"),
        "audit.compared_with": target.tags.get("compare.champion_version", "none"),
        "audit.pr_number": pr_number,
        "audit.pr_url": pr_url or facts.get("pr_url") or None,
        "audit.approvers": approvers if approvers is not None else facts.get("approvers"),
        "audit.merged_by": merged_by or facts.get("merged_by") or None,
        "audit.image_digest": image_digest,
        "audit.git_sha": target.tags.get("git_sha"),
        "audit.data_hash": target.tags.get("data_hash"),
        "audit.forced": str(bool(problem and force)).lower(),
        "audit.force_reason": reason if problem and force else None,
    }
    if problem:
        gha.warning(f"forced promotion of version {target.version}: {problem}; reason: {reason}")
    registry.set_tags(target.version, audit)
    if champion is not None:
        registry.set_alias(PREVIOUS, champion.version)
    registry.set_alias(CHAMPION, target.version)
    if champion is not None:
        registry.set_tags(champion.version, {"audit.retired_at": now, "audit.retired_by_version": target.version})
    was = f" (was {champion.version}, now {PREVIOUS})" if champion else " (first champion)"
    print(f"promoted {registry.name} version {target.version} to {CHAMPION}{was}")
    gha.set_output("version", target.version)
    gha.set_output("previous-version", champion.version if champion else "")
    gha.add_summary(f"### Promoted {registry.name} version {target.version} to `{CHAMPION}`{was}\n\n"
                    + "\n".join(f"- {k}: `{v}`" for k, v in audit.items() if v is not None))
    return {"version": target.version, "previous_version": champion.version if champion else None, "moved": True}


@click.command("promote")
@options.contract_option
@click.option("--version", "version", envvar="GITOPS_ML_VERSION", default=None,
              help="version to promote [default: the newest tagged for --pr-number, else reports/train.json's]")
@click.option("--force", is_flag=True, envvar="GITOPS_ML_FORCE", help="promote even without a promote verdict")
@click.option("--reason", envvar="GITOPS_ML_REASON", default=None, help="why (required with --force; recorded)")
@click.option("--pr-number", envvar="GITOPS_ML_PR_NUMBER", default=None, help="pull request that approved it")
@click.option("--pr-url", envvar="GITOPS_ML_PR_URL", default=None, help="[default: from GitHub]")
@click.option("--approvers", envvar="GITOPS_ML_APPROVERS", default=None,
              help="comma-separated approvers [default: from the PR's reviews]")
@click.option("--merged-by", envvar="GITOPS_ML_MERGED_BY", default=None, help="[default: from GitHub]")
@click.option("--image-digest", envvar="GITOPS_ML_IMAGE_DIGEST", default=None, help="digest of the deployed image")
@click.option("--repository", envvar=["GITOPS_ML_REPOSITORY", "GITHUB_REPOSITORY"], default=None, help="owner/repo")
@click.option("--github-token", envvar="GITHUB_TOKEN", default=None, show_default=False,
              help="token to read the PR and its reviews")
def cli(contract_path: Path, version: str | None, force: bool, reason: str | None, pr_number: str | None,
        pr_url: str | None, approvers: str | None, merged_by: str | None, image_digest: str | None,
        repository: str | None, github_token: str | None) -> None:
    """Move the champion alias to an approved version (the old champion becomes previous-champion)."""
    contract, root = options.load(contract_path)
    run(contract, root, version, force, reason, pr_number, pr_url, approvers, merged_by, image_digest,
        repository, github_token)

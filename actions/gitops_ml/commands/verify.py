"""`gitops-ml verify`: the merge decides. Runs in main's reviewed workflow, before anything moves.

For a push to the base branch it reconciles: every commit since the last one it processed (a
registered-model tag of the production model, so merges whose runs a `concurrency` group dropped
are still found), every pull request GitHub says merged them, in merge order. For each:
1. the candidate version (of the candidates model) was trained from the pull request's head SHA as
   GitHub reports it now (the version's and its run's `git_sha`), from a clean tree;
2. that head has an approving review (approvals of older commits do not count; a later
   "changes requested" blocks; the author's own reviews never count);
3. the candidate, downloaded once, is compared again on the protected holdout against the champion
   of now (or the pull request verified just before it in the same push);
4. only then those same files become a new version of the production model, tagged `verify.*` and
   `audit.*` by this (production) identity. `gitops-ml promote` trusts those tags and no others.
A refusal is reported loudly (exit 1) and moves nothing for that pull request. Tags written by
pull-request jobs are never trusted: they are claims checked against GitHub and the registry.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from gitops_ml.commands import options, resolve
from gitops_ml.commands.compare import comparison_of, held_out
from gitops_ml.core.contract import Contract
from gitops_ml.core.dataset import read_typed
from gitops_ml.core.report import verify_markdown
from gitops_ml.core.trust import NO_COMMIT, Candidate, approval_at_head, candidate_for, prs_to_process
from gitops_ml.errors import GitopsMLError
from gitops_ml.io import gha, repo
from gitops_ml.io.model_dir import load_model_dir
from gitops_ml.io.reference import REFERENCE_ARTIFACT
from gitops_ml.io.registry import CHAMPION, Registry, Version

RECONCILED = "gitops-ml.reconciled_sha"  # tag on the production model: the last pushed commit verify processed
VERIFY_REPORT = Path("reports/verify/verify.json")


class VerifyError(GitopsMLError):
    """verify cannot run as asked (no GitHub access, local mode in CI, rewritten history)."""


@dataclass(frozen=True)
class Inputs:
    root: Path
    out: Path
    data: Path | None = None
    before: str | None = None
    base: str = "main"
    candidate: str | None = None
    github: options.GitHubTarget = options.GitHubTarget()


def _candidates(candidates: Registry, number: int | None, head_sha: str) -> list[Candidate]:
    found = []
    for version in candidates.versions():
        if version.tags.get("git_sha") != head_sha and (number is None or version.tags.get("pr_number") != str(number)):
            continue
        run = candidates.run_tags(version.run_id)
        found.append(Candidate(version.version, run.get("git_sha"), version.tags.get("git_sha"),
                               run.get("git_dirty", "false") != "false"))
    return found


def commits_to_check(github, production: Registry, sha: str, before: str | None) -> list[str]:
    """The pushed commits not processed yet, oldest first."""
    last = production.model_tag(RECONCILED)
    start = last or (before if before and before != NO_COMMIT else None)
    if start == sha:
        return []
    if not start:
        return [sha]
    found = github.compare(start, sha)
    if found.get("status") not in ("ahead", "identical"):
        raise VerifyError(f"{sha[:12]} is not ahead of {start[:12]}, the last commit verify processed (GitHub says "
                          f"{found.get('status')!r}): was the history of the branch rewritten? Verify the pull "
                          f"requests by hand (--pr-number), then set the tag {RECONCILED} on the model")
    return [commit["sha"] for commit in found.get("commits") or []]


def check_one(contract: Contract, github, candidates: Registry, production: Registry, number: int,
              against: Version | None, frame, shown: str, holdout_sha: str | None, merge_sha: str | None) -> dict:
    """Verify one merged pull request; adopt its candidate into production when everything holds."""
    pull = github.pull(number)
    head = (pull.get("head") or {}).get("sha") or ""
    outcome: dict = {"pr": number, "head_sha": head, "merge_sha": merge_sha, "version": None}
    approval = approval_at_head(github.reviews(number), head, (pull.get("user") or {}).get("login"))
    candidate, why = candidate_for(_candidates(candidates, number, head), head)
    problem = approval.refusal() or why
    if problem:
        return {**outcome, "refused": f"PR #{number}: {problem}"}
    source = candidates.get(candidate.version)
    outcome["candidate"] = f"{candidates.name}/{candidate.version}"
    with tempfile.TemporaryDirectory(prefix="gitops-ml-verify-") as tmp:
        files = candidates.download(candidate.version, Path(tmp))
        comparison = comparison_of(contract, source, load_model_dir(files).model, against,
                                   production.load_sklearn(against.version) if against else None, frame, shown)
        outcome["verdict"] = comparison.verdict
        if comparison.verdict != "promote":
            failed = "; ".join(f"{r.rule} {r.metric} ({r.detail})" for r in comparison.decision.failed)
            return {**outcome, "refused": f"PR #{number}: the comparison against {comparison.against} on "
                                          f"{shown} says reject: {failed}"}
        ci = comparison.ci
        tags = {
            "verify.verdict": "promote",
            "verify.champion_version": against.version if against else "none",
            "verify.pr_number": str(number),
            "verify.head_sha": head,
            "verify.merge_sha": merge_sha,
            "verify.candidate": outcome["candidate"],
            "verify.holdout_sha256": holdout_sha,
            "verify.primary_delta": None if ci is None else f"{ci.delta:.6f}",
            "verify.at": datetime.now(UTC).isoformat(timespec="seconds"),
            "verify.by": resolve.actor(),
            "audit.pr_number": str(number),
            "audit.pr_url": pull.get("html_url"),
            "audit.approvers": ",".join(approval.approved_by),
            "audit.merged_by": (pull.get("merged_by") or {}).get("login"),
            "pr_number": str(number),
            "git_sha": head,
            "data_hash": source.tags.get("data_hash"),  # informative: recorded by the PR's train job
        }
        adopted = production.adopt(files, tags, artifacts=reference_of(candidates, source, Path(tmp)))
    gha.log(f"PR #{number}: {outcome['candidate']} verified and copied into {production.name} version "
            f"{adopted.version}")
    return {**outcome, "version": adopted.version}


def run(contract: Contract, inputs: Inputs) -> dict:
    production, candidates = Registry.for_contract(contract), Registry.candidates(contract)
    ci_run = os.environ.get("GITHUB_ACTIONS") == "true"
    path, shown = held_out(contract, inputs.root, inputs.data)
    frame = read_typed(path, contract)
    holdout_sha = repo.sha256_of(path) if contract.data.holdout else None
    against = production.by_alias(CHAMPION)
    target = inputs.github
    outcomes: list[dict] = []
    commits: list[str] = []
    if inputs.candidate:
        if ci_run:
            raise VerifyError("--candidate is for local use; in CI verify finds the merged pull requests itself")
        version = resolve.trained_version(inputs.root) if inputs.candidate == "trained" else inputs.candidate
        if not version:
            raise VerifyError(f"--candidate trained: no version in {resolve.TRAIN_REPORT}; run `gitops-ml train`")
        outcomes.append(check_local(contract, candidates, production, version, against, frame, shown, holdout_sha))
    else:
        if not target.usable or not target.sha:
            raise VerifyError("verify needs GitHub: a token (GITHUB_TOKEN), the repository (GITHUB_REPOSITORY) and "
                              "the pushed commit (--sha / GITHUB_SHA); locally pass --candidate VERSION instead")
        from gitops_ml.io.github import GitHub

        github = GitHub(target.token, target.repository)
        if target.pr_number:
            merged = github.pull(int(target.pr_number))
            if not merged.get("merged_at"):
                raise VerifyError(f"PR #{target.pr_number} is not merged: only merged pull requests are verified")
            todo = [(int(target.pr_number), merged.get("merge_commit_sha"))]
        else:
            commits = commits_to_check(github, production, target.sha, inputs.before)
            done = {int(v.tags["verify.pr_number"]) for v in production.versions() if "verify.pr_number" in v.tags}
            pulls = {sha: github.pulls_for_commit(sha) for sha in commits}
            todo = [(p.number, p.merge_sha) for p in prs_to_process(commits, pulls, inputs.base, done)]
        gha.log(f"{len(commits)} new commit(s); pull request(s) to verify: {[n for n, _ in todo] or 'none'}")
        for number, merge_sha in todo:
            with gha.group(f"verify PR #{number}"):
                outcome = check_one(contract, github, candidates, production, number, against, frame, shown,
                                    holdout_sha, merge_sha)
            outcomes.append(outcome)
            if outcome["version"]:
                against = production.get(outcome["version"])  # the next one must beat this one
        if not target.pr_number:
            production.set_model_tag(RECONCILED, target.sha)
    verified = [o["version"] for o in outcomes if o["version"]]
    refused = [o["refused"] for o in outcomes if o.get("refused")]
    for reason in refused:
        gha.error(f"not verified, nothing moved for it: {reason}")
    result = {"model_name": production.name, "commits": commits, "pulls": outcomes, "versions": verified,
              "refused": refused, "holdout": shown}
    gha.publish(inputs.out / "verify.json", result, verify_markdown(result), inputs.out / "verify.md", outputs={
        "versions": " ".join(verified), "version": verified[-1] if verified else "", "refused": len(refused)})
    return result


def reference_of(candidates: Registry, source: Version, tmp: Path) -> dict[str, Path]:
    """The candidate's reference data (its training sample), carried into production for drift checks."""
    local = candidates.run_artifact(source.run_id, REFERENCE_ARTIFACT, tmp / "reference")
    return {REFERENCE_ARTIFACT: local} if local else {}


def check_local(contract: Contract, candidates: Registry, production: Registry, version: str,
                against: Version | None, frame, shown: str, holdout_sha: str | None) -> dict:
    """On a laptop: no pull request, no review; the comparison still decides before the copy."""
    source = candidates.get(version)
    outcome: dict = {"pr": None, "candidate": f"{candidates.name}/{version}", "version": None}
    with tempfile.TemporaryDirectory(prefix="gitops-ml-verify-") as tmp:
        files = candidates.download(version, Path(tmp))
        comparison = comparison_of(contract, source, load_model_dir(files).model, against,
                                   production.load_sklearn(against.version) if against else None, frame, shown)
        outcome["verdict"] = comparison.verdict
        if comparison.verdict != "promote":
            return {**outcome, "refused": f"{outcome['candidate']}: the comparison against {comparison.against} "
                                          "says reject"}
        adopted = production.adopt(files, {
            "verify.verdict": "promote", "verify.champion_version": against.version if against else "none",
            "verify.candidate": outcome["candidate"], "verify.holdout_sha256": holdout_sha, "verify.local": "true",
            "verify.at": datetime.now(UTC).isoformat(timespec="seconds"), "verify.by": resolve.actor(),
            "git_sha": source.tags.get("git_sha"), "data_hash": source.tags.get("data_hash")},
            artifacts=reference_of(candidates, source, Path(tmp)))
    return {**outcome, "version": adopted.version}


@click.command("verify")
@options.contract
@options.tracking_uri
@options.data(None, "held-out CSV [default: the protected holdout data.holdout, else data/split/test.csv]")
@options.out("reports/verify", "report folder")
@click.option("--before", envvar="GITOPS_ML_BEFORE", default=None,
              help="the push's `before` commit (used until verify has processed a commit of its own)")
@click.option("--base", envvar="GITOPS_ML_BASE", default="main", help="the branch pull requests merge into")
@click.option("--candidate", envvar="GITOPS_ML_CANDIDATE", default=None,
              help="local only: verify this candidates-model version ('trained': reports/train.json's) "
                   "without a pull request")
@options.github
def cli(**given) -> int:
    """Verify merged pull requests (approved head, candidate from that head, comparison now), then copy them."""
    contract, inputs = options.build(Inputs, given)
    result = run(contract, inputs)
    return 1 if result["refused"] else 0

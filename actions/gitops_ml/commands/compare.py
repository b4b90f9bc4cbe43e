"""`gitops-ml compare`: the challenger against the champion, on the same held-out rows, under the policy.

Both models are loaded natively from the registry and evaluated here (never trusting metrics a
training run reported); `core.policy.decide` decides. The verdict is written to the challenger's
tags for people and lineage (promotion never trusts tags). With a token it posts one sticky PR
comment and the `gitops-ml/compare` commit status. Exit 1 on reject, after reporting.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from gitops_ml.commands import options, resolve
from gitops_ml.core.bootstrap import Interval, paired_bootstrap
from gitops_ml.core.comparison import Comparison
from gitops_ml.core.contract import Contract
from gitops_ml.core.dataset import read_typed
from gitops_ml.core.evaluation import Evaluation, evaluate
from gitops_ml.core.policy import decide
from gitops_ml.core.report import MARKER, Side, comparison_markdown, model_card
from gitops_ml.errors import GitopsMLError
from gitops_ml.io import gha
from gitops_ml.io.registry import CHAMPION, Registry, Version


@dataclass(frozen=True)
class Inputs:
    root: Path
    data: Path
    out: Path
    challenger: str | None = None
    github: options.GitHubTarget = options.GitHubTarget()


def _run_url() -> str | None:
    parts = [os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    return f"{parts[0]}/{parts[1]}/actions/runs/{parts[2]}" if all(parts) else None


def measure(registry: Registry, challenger: Version, champion: Version | None, frame, contract: Contract
            ) -> tuple[Evaluation, Evaluation | None, Interval | None]:
    """Both models on the same rows, and the paired bootstrap interval of the primary metric."""
    with gha.group(f"evaluate challenger version {challenger.version}"):
        new = evaluate(registry.load_sklearn(challenger.version), frame, contract)
        gha.log(json.dumps(new.metrics, indent=2))
    if champion is None:
        return new, None, None
    with gha.group(f"evaluate champion version {champion.version}"):
        old = evaluate(registry.load_sklearn(champion.version), frame, contract)
        gha.log(json.dumps(old.metrics, indent=2))
    boot = contract.promotion.bootstrap
    with gha.group(f"paired bootstrap of {contract.metrics.primary} ({boot.samples} samples)"):
        ci = paired_bootstrap(contract.metrics.primary, new.predictions, old.predictions,
                              boot.samples, boot.confidence, boot.seed)
        gha.log(f"delta {ci.delta:+.4f}, {ci.confidence:.0%} CI [{ci.low:+.4f}, {ci.high:+.4f}]")
    return new, old, ci


def write_reports(contract: Contract, comparison: Comparison, challenger: Version, champion: Version | None,
                  out: Path, reproduce: str) -> str:
    """compare.json, compare.md (also the job summary and the PR comment) and model-card.md."""
    new_side = Side(comparison.challenger_version, comparison.challenger, challenger.run_id, challenger.tags)
    old_side = None if champion is None else Side(champion.version, comparison.champion, champion.run_id,
                                                  champion.tags)
    markdown = comparison_markdown(contract, comparison.decision, new_side, old_side, comparison.ci,
                                   comparison.data, reproduce)
    gha.publish(out / "compare.json", comparison.to_dict(), markdown, out / "compare.md", outputs={
        "verdict": comparison.verdict, "challenger-version": comparison.challenger_version,
        "champion-version": comparison.champion_version or "", "report": out / "compare.md"})
    gha.write_text(out / "model-card.md", model_card(contract, new_side, comparison.decision, old_side))
    return markdown


def post_to_github(target: options.GitHubTarget, comparison: Comparison, markdown: str) -> None:
    """One sticky comment on the pull request and the gitops-ml/compare status on its head."""
    from gitops_ml.io.github import GitHub

    github = GitHub(target.token, target.repository)
    if target.pr_number:
        with gha.group(f"sticky comment on {target.repository}#{target.pr_number}"):
            comment = github.upsert_comment(int(target.pr_number), markdown, MARKER)
            gha.log(f"comment {comment.get('html_url') or comment.get('id')}")
    if target.sha:
        state = "success" if comparison.verdict == "promote" else "failure"
        github.create_status(target.sha, state, comparison.status_description(), _run_url())
        gha.log(f"status gitops-ml/compare={state} on {target.sha}")


def run(contract: Contract, inputs: Inputs) -> Comparison:
    registry = Registry.for_contract(contract)
    challenger = registry.get(inputs.challenger or resolve.version_for(registry, inputs.root, None,
                                                                       fallback_latest=True))
    champion = registry.by_alias(CHAMPION)
    if not inputs.data.is_file():
        raise GitopsMLError(f"held-out data {inputs.data} not found; run the split stage (`dvc repro split`) "
                            "or pass --data")
    frame = read_typed(inputs.data, contract)
    shown = inputs.data.relative_to(inputs.root) if inputs.data.is_relative_to(inputs.root) else inputs.data
    against = f"champion version {champion.version}" if champion else "no champion (first promotion)"
    gha.log(f"comparing {registry.name} version {challenger.version} with {against} on {shown} ({len(frame)} rows)")

    new, old, ci = measure(registry, challenger, champion, frame, contract)
    comparison = Comparison(
        registry.name, challenger.version, challenger.run_id, new,
        champion.version if champion else None, champion.run_id if champion else None, old, ci,
        decide(new, old, contract, ci), str(shown), datetime.now(UTC).isoformat(timespec="seconds"))

    reproduce = f"gitops-ml compare --challenger {challenger.version} --data {shown}"
    markdown = write_reports(contract, comparison, challenger, champion, inputs.out, reproduce)
    registry.set_tags(challenger.version, comparison.tags(inputs.github.sha, inputs.github.pr_number))
    gha.log(markdown)
    target = inputs.github
    if target.usable and (target.pr_number or target.sha):
        post_to_github(target, comparison, markdown)
    else:
        gha.log("no GitHub token, repository or PR/sha given: not posting a PR comment or commit status")
    gha.log(f"verdict: {comparison.verdict} ({inputs.out / 'compare.md'})")
    return comparison


@click.command("compare")
@options.contract
@options.tracking_uri
@click.option("--challenger", envvar="GITOPS_ML_CHALLENGER", default=None,
              help="model version to compare [default: reports/train.json's version, else the latest]")
@options.data("data/split/test.csv", "held-out CSV both models are evaluated on")
@options.out("reports/compare", "report folder")
@options.github
def cli(**given) -> int:
    """Compare the challenger with the champion on the same held-out data under the promotion policy."""
    contract, inputs = options.build(Inputs, given)
    comparison = run(contract, inputs)
    return 0 if comparison.verdict == "promote" else 1  # the report is out; a reject blocks the merge

"""`gitops-ml compare`: the challenger against the champion, on the same held-out rows, under the policy.

The challenger is a version of the candidates model (what pull requests register), the champion
the production model's `champion`. Both are loaded safely from the registry and evaluated here
(never trusting metrics a training run reported), on the protected holdout when the contract names
one (its sha256 must be the pinned one, and the report shows it); `core.policy.decide` decides.
The verdict is written to the challenger's tags for people and lineage (promotion never trusts
them: `gitops-ml verify` compares again at merge). With a token it posts one sticky PR comment and
the `gitops-ml/compare` commit status. Exit 1 on reject, after reporting.
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
from gitops_ml.core.trust import holdout_refusal
from gitops_ml.errors import GitopsMLError
from gitops_ml.io import gha, repo
from gitops_ml.io.registry import CHAMPION, Registry, Version


@dataclass(frozen=True)
class Inputs:
    root: Path
    data: Path | None
    out: Path
    challenger: str | None = None
    train_result: str = "success"
    github: options.GitHubTarget = options.GitHubTarget()


def _run_url() -> str | None:
    parts = [os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    return f"{parts[0]}/{parts[1]}/actions/runs/{parts[2]}" if all(parts) else None


class HoldoutError(GitopsMLError):
    """The protected holdout is missing or is not the pinned one."""


def held_out(contract: Contract, root: Path, given: Path | None) -> tuple[Path, str]:
    """The rows both models are evaluated on, and how reports show them (with the holdout's hash).

    With `data.holdout` in the contract that file is always used (a different --data is refused), and
    its sha256 must equal `data.holdout_sha256`; else --data, default data/split/test.csv.
    """
    holdout = contract.data.holdout
    path = root / holdout if holdout else (given or root / "data/split/test.csv")
    if holdout and given is not None and given.resolve() != path.resolve():
        raise HoldoutError(f"--data {given} is not the protected holdout {holdout}: comparisons always use it")
    shown = str(path.relative_to(root) if path.is_relative_to(root) else path)
    if holdout:
        digest = repo.sha256_of(path)
        problem = holdout_refusal(holdout, contract.data.holdout_sha256, digest)
        if problem:
            raise HoldoutError(problem)
        return path, f"{shown} (protected holdout, sha256 {digest})"
    if not path.is_file():
        raise GitopsMLError(f"held-out data {path} not found; run the split stage (`dvc repro split`) or pass --data")
    return path, shown


def measure(challenger_model, challenger: Version, champion_model, champion: Version | None, frame,
            contract: Contract) -> tuple[Evaluation, Evaluation | None, Interval | None]:
    """Both models on the same rows, and the paired bootstrap interval of the primary metric."""
    with gha.group(f"evaluate challenger {challenger.name} version {challenger.version}"):
        new = evaluate(challenger_model, frame, contract)
        gha.log(json.dumps(new.metrics, indent=2))
    if champion is None:
        return new, None, None
    with gha.group(f"evaluate champion version {champion.version}"):
        old = evaluate(champion_model, frame, contract)
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


def comparison_of(contract: Contract, challenger: Version, challenger_model, champion: Version | None,
                  champion_model, frame, shown: str) -> Comparison:
    """Evaluate both, bootstrap, decide: the comparison verify re-runs at merge, too."""
    against = f"champion version {champion.version}" if champion else "no champion (first promotion)"
    gha.log(f"comparing {challenger.name} version {challenger.version} with {against} on {shown} ({len(frame)} rows)")
    new, old, ci = measure(challenger_model, challenger, champion_model, champion, frame, contract)
    return Comparison(
        contract.registry.model_name, challenger.version, challenger.run_id, new,
        champion.version if champion else None, champion.run_id if champion else None, old, ci,
        decide(new, old, contract, ci), shown, datetime.now(UTC).isoformat(timespec="seconds"))


def report_failure(target: options.GitHubTarget, reason: str) -> None:
    """No comparison could be made: say so on the pull request and fail its status, never leave it green."""
    gha.error(reason)
    if not target.usable:
        return
    from gitops_ml.io.github import GitHub

    github = GitHub(target.token, target.repository)
    if target.pr_number:
        github.upsert_comment(int(target.pr_number), f"{MARKER}\n## gitops-ml compare: ❌ **no comparison**\n\n"
                              f"{reason}\n", MARKER)
    if target.sha:
        github.create_status(target.sha, "failure", reason, _run_url())


def run(contract: Contract, inputs: Inputs) -> Comparison | None:
    """The comparison, or None when there was nothing honest to compare (reported as a failure)."""
    target = inputs.github
    if inputs.train_result != "success":
        report_failure(target, f"the train job ended with '{inputs.train_result}': no candidate to compare")
        return None
    registry = Registry.for_contract(contract)
    candidates = Registry.candidates(contract)
    challenger = candidates.get(inputs.challenger or resolve.version_for(candidates, inputs.root, None,
                                                                         fallback_latest=True))
    if target.sha and challenger.tags.get("git_sha") != target.sha:
        report_failure(target, f"{candidates.name} version {challenger.version} was trained from "
                               f"{challenger.tags.get('git_sha')}, not from the head {target.sha}")
        return None
    champion = registry.by_alias(CHAMPION)
    path, shown = held_out(contract, inputs.root, inputs.data)
    frame = read_typed(path, contract)
    comparison = comparison_of(contract, challenger, candidates.load_sklearn(challenger.version), champion,
                               registry.load_sklearn(champion.version) if champion else None, frame, shown)

    reproduce = f"gitops-ml compare --challenger {challenger.version}"
    markdown = write_reports(contract, comparison, challenger, champion, inputs.out, reproduce)
    candidates.set_tags(challenger.version, comparison.tags(inputs.github.sha, inputs.github.pr_number))
    gha.log(markdown)
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
              help="candidates model version to compare [default: reports/train.json's version, else the latest]")
@options.data(None, "held-out CSV both models are evaluated on [default: data.holdout, else data/split/test.csv]")
@options.out("reports/compare", "report folder")
@click.option("--train-result", envvar="GITOPS_ML_TRAIN_RESULT", default="success",
              help="result of the job that trained the challenger; anything but success is reported as a failure")
@options.github
def cli(**given) -> int:
    """Compare the challenger with the champion on the same held-out data under the promotion policy."""
    contract, inputs = options.build(Inputs, given)
    comparison = run(contract, inputs)
    return 0 if comparison is not None and comparison.verdict == "promote" else 1  # reported; a reject blocks the merge

"""`gitops-ml compare`: the challenger against the champion, on the same held-out rows, under the policy.

Both models are loaded natively from the registry and evaluated here (never trusting metrics a
training run reported), the decision is `core.policy.decide`, and the verdict is written to the
challenger's tags so `promote` can check it later. On a pull request with a token it posts one
sticky comment and the `gitops-ml/compare` commit status. Exit 1 on reject, after reporting.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import click

from gitops_ml.commands import options, resolve
from gitops_ml.core.bootstrap import paired_bootstrap
from gitops_ml.core.contract import Contract
from gitops_ml.core.dataset import read_typed
from gitops_ml.core.evaluation import evaluate
from gitops_ml.core.policy import decide
from gitops_ml.core.report import MARKER, Side, comparison_markdown, model_card
from gitops_ml.errors import GitopsMLError
from gitops_ml.io import gha
from gitops_ml.io.registry import CHAMPION, Registry


def _run_url() -> str | None:
    parts = [os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    return f"{parts[0]}/{parts[1]}/actions/runs/{parts[2]}" if all(parts) else None


def post_to_github(token: str, repository: str, pr_number: str | None, sha: str | None, verdict: str,
                   body: str, description: str) -> None:
    from gitops_ml.io.github import GitHub

    github = GitHub(token, repository)
    if pr_number:
        with gha.group(f"sticky comment on {repository}#{pr_number}"):
            comment = github.upsert_comment(int(pr_number), body, MARKER)
            print(f"comment {comment.get('html_url') or comment.get('id')}")
    if sha:
        state = "success" if verdict == "promote" else "failure"
        github.create_status(sha, state, description, _run_url())
        print(f"status gitops-ml/compare={state} on {sha}")


def run(contract: Contract, root: Path, challenger_version: str | None, data: Path, out: Path,
        pr_number: str | None = None, repository: str | None = None, sha: str | None = None,
        token: str | None = None) -> dict:
    registry = Registry.for_contract(contract)
    version = challenger_version or resolve.version_for(registry, root, None, fallback_latest=True)
    challenger = registry.get(version)
    champion = registry.by_alias(CHAMPION)
    if not data.is_file():
        raise GitopsMLError(f"held-out data {data} not found; run the split stage (`dvc repro split`) or pass --data")
    frame = read_typed(data, contract)
    against = f"champion version {champion.version}" if champion else "no champion (first promotion)"
    print(f"comparing {registry.name} version {version} with {against} on {data} ({len(frame)} rows)", flush=True)

    with gha.group(f"evaluate challenger version {version}"):
        new = evaluate(registry.load_sklearn(version), frame, contract)
        print(json.dumps(new.metrics, indent=2))
    old = ci = None
    if champion is not None:
        with gha.group(f"evaluate champion version {champion.version}"):
            old = evaluate(registry.load_sklearn(champion.version), frame, contract)
            print(json.dumps(old.metrics, indent=2))
        boot = contract.promotion.bootstrap
        with gha.group(f"paired bootstrap of {contract.metrics.primary} ({boot.samples} samples)"):
            ci = paired_bootstrap(contract.metrics.primary, new.predictions, old.predictions,
                                  boot.samples, boot.confidence, boot.seed)
            print(f"delta {ci.delta:+.4f}, {ci.confidence:.0%} CI [{ci.low:+.4f}, {ci.high:+.4f}]")
    decision = decide(new, old, contract, ci)

    new_side = Side(version, new, challenger.run_id, challenger.tags)
    old_side = Side(champion.version, old, champion.run_id, champion.tags) if champion else None
    shown_data = data.relative_to(root) if data.is_relative_to(root) else data
    reproduce = f"gitops-ml compare --challenger {version} --data {shown_data}"
    markdown = comparison_markdown(contract, decision, new_side, old_side, ci, str(shown_data), reproduce)
    result = {
        "model_name": registry.name,
        "verdict": decision.verdict,
        "challenger": {"version": version, "run_id": challenger.run_id, **new.to_dict()},
        "champion": {"version": champion.version, "run_id": champion.run_id, **old.to_dict()} if champion else None,
        "ci": None if ci is None else {"delta": ci.delta, "low": ci.low, "high": ci.high,
                                       "confidence": ci.confidence, "samples": ci.samples},
        "decision": decision.to_dict(),
        "data": str(shown_data),
        "compared_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    gha.write_text(out / "compare.json", json.dumps(result, indent=2, default=str) + "\n")
    gha.write_text(out / "compare.md", markdown)
    gha.write_text(out / "model-card.md", model_card(contract, new_side, decision, old_side))
    registry.set_tags(version, {
        "compare.verdict": decision.verdict,
        "compare.champion_version": champion.version if champion else "none",
        "compare.primary_metric": decision.primary,
        "compare.primary_delta": None if ci is None else f"{ci.delta:.6f}",
        "compare.ci": None if ci is None else f"[{ci.low:.6f}, {ci.high:.6f}]",
        "compare.sha": sha,
        "compare.pr_number": pr_number,
        "compare.at": result["compared_at"],
    })
    for name, value in (("verdict", decision.verdict), ("challenger-version", version),
                        ("champion-version", champion.version if champion else ""), ("report", out / "compare.md")):
        gha.set_output(name, value)
    gha.add_summary(markdown)
    print(markdown)

    failed = ", ".join(f"{r.rule} {r.metric}" for r in decision.failed)
    description = f"{decision.verdict}: version {version} vs {against}" + (f" (failed: {failed})" if failed else "")
    if token and repository and (pr_number or sha):
        post_to_github(token, repository, pr_number, sha, decision.verdict, markdown, description)
    else:
        print("no GitHub token, repository or PR/sha given: not posting a PR comment or commit status")
    print(f"verdict: {decision.verdict} ({out / 'compare.md'})")
    return result


@click.command("compare")
@options.contract_option
@click.option("--challenger", envvar="GITOPS_ML_CHALLENGER", default=None,
              help="model version to compare [default: reports/train.json's version, else the latest]")
@click.option("--data", type=click.Path(path_type=Path), envvar="GITOPS_ML_DATA", default=Path("data/split/test.csv"),
              help="held-out CSV")
@click.option("--out", type=click.Path(path_type=Path), envvar="GITOPS_ML_OUT", default=Path("reports/compare"),
              help="report folder")
@click.option("--pr-number", envvar="GITOPS_ML_PR_NUMBER", default=None, help="pull request to comment on")
@click.option("--repository", envvar=["GITOPS_ML_REPOSITORY", "GITHUB_REPOSITORY"], default=None,
              help="owner/repo on GitHub")
@click.option("--sha", envvar=["GITOPS_ML_SHA", "GITHUB_SHA"], default=None,
              help="commit to set the gitops-ml/compare status on (the PR head)")
@click.option("--github-token", envvar="GITHUB_TOKEN", default=None, show_default=False,
              help="token to comment and set the status; without it nothing is posted")
def cli(contract_path: Path, challenger: str | None, data: Path, out: Path, pr_number: str | None,
        repository: str | None, sha: str | None, github_token: str | None) -> None:
    """Compare the challenger with the champion on the same held-out data under the promotion policy."""
    contract, root = options.load(contract_path)
    result = run(contract, root, challenger, data if data.is_absolute() else root / data,
                 out if out.is_absolute() else root / out, pr_number, repository, sha, github_token)
    if result["verdict"] != "promote":
        click.get_current_context().exit(1)  # the report is out; the job fails so the check blocks the merge

"""`gitops-ml retrain-pr`: open or update the model's one retraining pull request when drift says so.

Reads the report of `gitops-ml drift` (`--report`, default reports/drift). When retraining is due
(drift, or live performance dropped or below the floor) and labelled current data exists, the
labelled rows go into the training data on the branch `gitops-ml/retrain/<model>` through DVC
(pushed to the DVC remote), the pointer is committed and pushed, and a pull request into `--base`
is opened (or updated in place) with the drift summary table in its body and the `retrain` label.
Its checks then train and compare the model like any pull request's. See `core.retrain` for the
bot's rules (one PR, same data changes nothing, a declined PR stays declined until the data changes,
people's commits are kept).

Live performance below the contract's floor opens (or updates) one issue labelled `--alert-label`;
when performance is judged again and has recovered, the issue gets a comment and is closed.

The token: a pull request opened with the workflow's own GITHUB_TOKEN starts no workflow, so its
checks would never run. Use a GitHub App token (actions/create-github-app-token) or a fine-grained
personal access token with contents, pull requests and issues write (docs/drift.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click

from gitops_ml.commands import options
from gitops_ml.core import retrain as rules
from gitops_ml.core.contract import Contract
from gitops_ml.core.drift import PERF_DROP, PERF_FLOOR, PERF_OK, drift_markdown
from gitops_ml.errors import GitopsMLError
from gitops_ml.io import gha


class RetrainError(GitopsMLError):
    """retrain-pr cannot run as asked; the message says what to fix."""


@dataclass(frozen=True)
class Inputs:
    root: Path
    report: Path
    out: Path
    github: options.GitHubTarget
    base: str = "main"
    remote: str = "origin"
    label: str = "retrain"
    alert_label: str = "model-alert"
    branch_prefix: str = "gitops-ml/retrain"


def _alert(contract: Contract, inputs: Inputs, api, result: dict, summary: str) -> dict:
    model = contract.registry.model_name
    performance = result.get("performance") or {}
    judged = performance.get("status") in (PERF_OK, PERF_DROP, PERF_FLOOR)
    action, issue = rules.plan_alert(model, bool(result.get("alert")), judged, api.issues(inputs.alert_label))
    body = rules.alert_body(model, performance, summary) if result.get("alert") else None
    if action == rules.OPEN_ALERT:
        issue = api.create_issue(f"Live performance of {model} is below the floor", body, [inputs.alert_label])
    elif action == rules.UPDATE_ALERT and issue.get("body") != body:
        issue = api.update_issue(issue["number"], body=body)
    elif action == rules.CLOSE_ALERT:
        api.comment(issue["number"], f"Live performance of **{model}** has recovered:\n\n{summary.strip()}\n\n"
                                     "Closing this alert.")
        api.close_issue(issue["number"])
    return {"action": action, "issue": issue.get("number") if issue else None}


def run(contract: Contract, inputs: Inputs) -> dict:
    path = inputs.report / "result.json"
    if not path.is_file():
        raise RetrainError(f"{path}: no drift result; run `gitops-ml drift` first (or pass --report)")
    result = json.loads(path.read_text())
    if result.get("model") != contract.registry.model_name:
        raise RetrainError(f"{path} is the drift result of {result.get('model')!r}, not of "
                           f"{contract.registry.model_name!r}; pass the right --report")
    if not inputs.github.usable:
        raise RetrainError("retrain-pr needs a GitHub token and repository (--github-token / GITHUB_TOKEN, "
                           "--repository / GITHUB_REPOSITORY); see docs/drift.md for which token")
    from gitops_ml.io.github import GitHub

    model = contract.registry.model_name
    branch = rules.branch_name(model, inputs.branch_prefix)
    owner = inputs.github.repository.split("/")[0]
    summary = drift_markdown(result)
    report: dict = {"model": model, "branch": branch, "status": result["status"], "pull": None}
    with GitHub(inputs.github.token, inputs.github.repository) as api:
        report["alert"] = _alert(contract, inputs, api, result, summary)
        plan = rules.plan_pull(bool(result.get("retrain")), result.get("data_hash"),
                               api.pulls("all", head=f"{owner}:{branch}"))
        report.update(action=plan.action, reason=plan.reason)
        if plan.action == rules.DECLINED:
            report["pull"] = plan.pull["number"]
        if plan.action in (rules.CREATE, rules.UPDATE):
            from gitops_ml.io.retrain_branch import update_branch

            labeled = inputs.report / result["labeled"]["file"]
            with gha.group(f"branch {branch}: {result['labeled']['rows']} labelled row(s) into {contract.data.train}"):
                pushed = update_branch(
                    inputs.root, remote=inputs.remote, base=inputs.base, branch=branch,
                    data_path=contract.data.train, labeled=labeled, token=inputs.github.token,
                    message=f"Retrain {model}: add {result['labeled']['rows']} labelled production row(s) "
                            f"(data {result['data_hash']})")
            report.update(changed=pushed.changed, head=pushed.sha, kept_commits=pushed.kept_commits,
                          new_rows=pushed.new_rows)
            title = rules.pull_title(model, result)
            body = rules.pull_body(model, result["data_hash"], pushed.new_rows, contract.data.train, summary,
                                   plan.declined)
            if plan.action == rules.CREATE:
                pull = api.create_pull(title, branch, inputs.base, body)
                report["action"] = "opened"
            else:
                pull = plan.pull
                if pull.get("body") != body or pull.get("title") != title:
                    pull = api.update_pull(pull["number"], title=title, body=body)
                    report["action"] = "updated"
                else:
                    report["action"] = "updated" if pushed.changed else "unchanged"
            if inputs.label not in {label["name"] for label in pull.get("labels") or []}:
                api.add_labels(pull["number"], [inputs.label])
            report.update(pull=pull["number"], url=pull.get("html_url"))
    lines = [f"### Retraining pull request: {report['action']}", "", report["reason"]]
    if report.get("url"):
        lines.append(f"\n{report['url']} (branch `{branch}`)")
    if report["alert"]["action"] != rules.KEEP_ALERT:
        lines.append(f"\nLive performance alert: {report['alert']['action']} issue #{report['alert']['issue']}")
    gha.publish(inputs.out / "retrain-pr.json", report, "\n".join(lines) + "\n", inputs.out / "retrain-pr.md",
                outputs={"action": report["action"], "pull-number": report["pull"] or "",
                         "pull-url": report.get("url") or "", "branch": branch,
                         "alert-issue": report["alert"]["issue"] or ""})
    gha.log(f"retrain-pr: {report['action']}: {report['reason']}")
    return report


@click.command("retrain-pr")
@options.contract
@options.github
@options.path_option("--report", envvar="GITOPS_ML_REPORT", default=Path("reports/drift"),
                     help="the report folder of `gitops-ml drift` (result.json, labeled.csv)")
@click.option("--base", envvar="GITOPS_ML_BASE", default="main", help="the branch the pull request goes into")
@click.option("--remote", envvar="GITOPS_ML_REMOTE", default="origin", help="the git remote to push the branch to")
@click.option("--label", envvar="GITOPS_ML_LABEL", default="retrain", help="label of the retraining pull request")
@click.option("--alert-label", envvar="GITOPS_ML_ALERT_LABEL", default="model-alert",
              help="label of the live performance alert issue")
@click.option("--branch-prefix", envvar="GITOPS_ML_BRANCH_PREFIX", default="gitops-ml/retrain",
              help="the branch is <prefix>/<model>")
@options.out("reports/drift", "folder for retrain-pr.json and retrain-pr.md")
def cli(**given) -> int:
    """Open or update the model's retraining pull request (and the live performance alert issue) from the
    result of `gitops-ml drift`."""
    contract, inputs = options.build(Inputs, given)
    run(contract, inputs)
    return 0

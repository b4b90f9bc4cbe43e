"""The generated pull-request workflow, run by act on this machine against real services.

Real: the generated repo with a real git remote and a DVC remote, every gitops-ml action (mapped
from this checkout with --local-repository), MLflow, DVC. Replaced: GitHub's REST API (the local
fake) and the three GitHub-hosted third-party actions (tests/act_stubs/).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, bake, run
from tests.github_fake import TOKEN

pytestmark = pytest.mark.slow

STUBS = ROOT / "tests" / "act_stubs"
PR_NUMBER = 7


def git(*args: str, cwd: Path) -> str:
    return run(["git", "-c", "user.name=dev", "-c", "user.email=dev@example.com", *args], cwd=cwd).stdout.strip()


def action_mappings(workflow: Path, checkout: Path) -> list[str]:
    """--local-repository flags: the gitops-ml actions (pinned by SHA) to this checkout, each pinned
    third-party action to its stand-in."""
    mappings: dict[str, Path] = {}
    for job in yaml.safe_load(workflow.read_text())["jobs"].values():
        for step in job["steps"]:
            uses = step.get("uses", "")
            if uses.startswith("acme/gitops-ml/"):
                mappings[f"acme/gitops-ml@{uses.split('@')[1]}"] = checkout
            elif uses:
                mappings[uses] = STUBS / uses.split("@")[0].split("/")[1]
    return [flag for action, folder in mappings.items() for flag in ("--local-repository", f"{action}={folder}")]


@pytest.fixture(scope="module")
def pull_request(tmp_path_factory):
    """A generated repo pushed to a bare git remote, its data in a shared DVC remote, and a PR branch."""
    root = tmp_path_factory.mktemp("act")
    project = bake(root, project="act-model")
    dvc = [str(Path(sys.executable).parent / "dvc")]
    # A team's setup: a DVC remote everybody reaches, committed (the generated local one is per machine).
    run([*dvc, "remote", "add", "-d", "shared", str(root / "dvc-shared")], cwd=project)
    run([*dvc, "push", "-q", "-r", "shared"], cwd=project)
    git("commit", "-qam", "Use the team's DVC remote", cwd=project)
    run(["git", "init", "-q", "--bare", str(root / "origin.git")], cwd=root)
    # act names the repository after origin's URL; pushes go to the local bare repository.
    git("remote", "add", "origin", "https://github.com/acme/act-model.git", cwd=project)
    git("remote", "set-url", "--push", "origin", str(root / "origin.git"), cwd=project)
    git("push", "-q", "origin", "main", cwd=project)
    git("checkout", "-q", "-b", "more-regularisation", cwd=project)
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("C: 1.0", "C: 0.5"))
    git("commit", "-qam", "Regularise a little more", cwd=project)
    git("push", "-q", "origin", "more-regularisation", cwd=project)
    head = git("rev-parse", "HEAD", cwd=project)
    event = {
        "action": "opened",
        "number": PR_NUMBER,
        "pull_request": {
            "number": PR_NUMBER,
            "html_url": f"https://github.com/acme/act-model/pull/{PR_NUMBER}",
            "head": {"sha": head, "ref": "more-regularisation"},
            "base": {"ref": "main"},
            "merged": False,
        },
        "repository": {"full_name": "acme/act-model", "name": "act-model", "owner": {"login": "acme"}},
    }
    return project, head, root, event


@pytest.fixture(scope="session")
def actions_checkout(tmp_path_factory) -> Path:
    """This checkout as GitHub would fetch it for `uses:`: its files only. act copies the mapped folder
    for every step that uses an action, so mapping the working tree (with .venv) costs minutes."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    copy = tmp_path_factory.mktemp("gitops-ml-checkout")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    return copy


def act(event: dict, workflow: Path, project: Path, root: Path, mlflow_server: str, github_url: str,
        checkout: Path) -> str:
    """Run one workflow with act on the host, as GitHub would for `event`; returns the log."""
    artifacts = root / "artifacts"
    (root / "event.json").write_text(json.dumps(event))
    env = {**os.environ, "ACT_ARTIFACTS": str(artifacts)}
    for leaked in ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI", "GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
        env.pop(leaked, None)
    log_path = root / f"act-{workflow.stem}.log"  # streamed, so a slow run can be watched
    with log_path.open("w") as log_file:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "act"), "pull_request", "-e", str(root / "event.json"),
             "-W", str(workflow), "-P", "ubuntu-latest=-self-hosted", "--action-offline-mode",
             *action_mappings(workflow, checkout),
             "--env", f"GITHUB_API_URL={github_url}", "--env", f"ACT_ARTIFACTS={artifacts}",
             "-s", f"GITHUB_TOKEN={TOKEN}", "-s", f"MLFLOW_TRACKING_URI={mlflow_server}"],
            cwd=project, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True, timeout=1500)
    log = log_path.read_text()
    assert result.returncode == 0, f"act failed on {workflow.name}:\n{log[-8000:]}"
    assert TOKEN not in log, "the token was printed"
    return log


def test_pull_request_then_merge_promotes_exactly_what_was_reviewed(pull_request, mlflow_server, github_fake,
                                                                   actions_checkout):
    from mlflow import MlflowClient

    project, head, root, event = pull_request
    workflows = project / ".github" / "workflows"
    client = MlflowClient(mlflow_server)

    # The pull request: data check, train, compare; one sticky comment and a success status.
    act(event, workflows / "pull-request.yml", project, root, mlflow_server, github_fake.url, actions_checkout)
    comments = github_fake.comments[PR_NUMBER]
    assert len(comments) == 1 and "<!-- gitops-ml:compare -->" in comments[0]["body"]
    assert "promote" in comments[0]["body"].lower()
    statuses = [s for s in github_fake.statuses if s["sha"] == head]
    assert [s["state"] for s in statuses] == ["success"]
    assert statuses[0]["context"] == "gitops-ml/compare"
    versions = client.search_model_versions("name='act-model'")
    assert len(versions) == 1
    reviewed = versions[0]
    assert reviewed.tags["pr_number"] == str(PR_NUMBER) and reviewed.tags["compare.verdict"] == "promote"
    assert "champion" not in (reviewed.aliases or [])  # a pull request never moves the champion
    kept = {p.relative_to(root / "artifacts").as_posix() for p in (root / "artifacts").rglob("*") if p.is_file()}
    for report in ("data-check/summary.md", "compare/compare.md", "compare/model-card.md"):
        assert f"reports/reports/{report}" in kept, sorted(kept)

    # The merge: that same version (no retraining) becomes the champion, with the audit trail.
    github_fake.pulls[PR_NUMBER] = {"number": PR_NUMBER, "html_url": event["pull_request"]["html_url"],
                                    "merged_by": {"login": "mia"}}
    github_fake.reviews[PR_NUMBER] = [{"user": {"login": "ana"}, "state": "APPROVED"}]
    merged = {**event, "action": "closed",
              "pull_request": {**event["pull_request"], "merged": True, "merged_by": {"login": "mia"}}}
    act(merged, workflows / "merge.yml", project, root, mlflow_server, github_fake.url, actions_checkout)
    assert len(client.search_model_versions("name='act-model'")) == 1  # nothing was retrained
    champion = client.get_model_version_by_alias("act-model", "champion")
    assert champion.version == reviewed.version
    audit = champion.tags
    assert audit["audit.pr_number"] == str(PR_NUMBER) and audit["audit.merged_by"] == "mia"
    assert "ana" in audit["audit.approvers"] and audit["audit.pr_url"] == event["pull_request"]["html_url"]
    assert audit["audit.git_sha"] == reviewed.tags["git_sha"] and audit["audit.compare_verdict"] == "promote"

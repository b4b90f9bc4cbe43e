"""The generated drift workflow, run by act as a `schedule` event on drifted data: both jobs run, one
retraining pull request is opened from the branch the run pushed, with the new data on the DVC remote.

Real: the generated repo with a real bare git remote and a shared DVC remote, every gitops-ml action
(mapped from this checkout), MLflow, DVC, git. Replaced: GitHub's REST API (the local fake) and the
GitHub-hosted third-party actions (tests/act_stubs/).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests import drift_project
from tests.conftest import bake, run
from tests.e2e.test_workflows_act import (
    act_environment,
    action_mappings,
    actions_checkout,  # noqa: F401 - a fixture
    git,
)
from tests.github_fake import TOKEN

pytestmark = pytest.mark.slow

MODEL = "drift-act-model"
REPO = f"acme/{MODEL}"
BRANCH = f"gitops-ml/retrain/{MODEL}"


def act(event_name: str, event: dict, workflow: Path, project: Path, root: Path, mlflow_server: str,
        github_url: str, checkout: Path, secrets: dict[str, str], must_succeed: bool = True) -> tuple[str, int]:
    """Run one workflow with act on the host; its log and exit code."""
    artifacts = root / "artifacts"
    (root / "event.json").write_text(json.dumps(event))
    env = act_environment(artifacts)
    log_path = root / f"act-{workflow.stem}.log"
    flags = [flag for name, value in {"MLFLOW_TRACKING_URI": mlflow_server, **secrets}.items()
             for flag in ("-s", f"{name}={value}")]
    with log_path.open("w") as log_file:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "act"), event_name, "-e", str(root / "event.json"),
             "-W", str(workflow), "-P", "ubuntu-latest=-self-hosted", "--action-offline-mode",
             *action_mappings(workflow, checkout),
             "--env", f"GITHUB_API_URL={github_url}", "--env", f"ACT_ARTIFACTS={artifacts}",
             # act derives the repository from origin's URL after git's insteadOf (the bare remote here)
             "--env", f"GITOPS_ML_REPOSITORY={REPO}",
             "--env", f"ACT_CHECKOUT_SOURCE={root / 'origin.git'}",  # where checkout stand-ins fetch from
             *flags],
            cwd=project, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True, timeout=2400)
    log = log_path.read_text()
    assert result.returncode == 0 or not must_succeed, f"act failed on {workflow.name}:\n{log[-8000:]}"
    assert TOKEN not in log, "the token was printed"
    return log, result.returncode


@pytest.fixture(scope="module")
def drifted(tmp_path_factory, mlflow_server):
    """A generated repo on a bare remote (fetches and pushes go there), a shared DVC remote, a champion in MLflow,
    and drifted production data from the repo's own simulator committed as data.current."""
    root = tmp_path_factory.mktemp("drift-act")
    project = bake(root, project=MODEL)
    dvc = [str(Path(sys.executable).parent / "dvc")]
    run([*dvc, "remote", "add", "-d", "shared", str(root / "dvc-shared")], cwd=project)
    run([*dvc, "push", "-q", "-r", "shared"], cwd=project)
    current = project / "data/production/current.csv"
    current.parent.mkdir(parents=True)
    drift_project.simulate(project, 1200, seed=51, drift=1.0).to_csv(current, index=False)
    git("add", "-A", cwd=project)
    git("add", "-f", str(current), cwd=project)  # data/production/ is ignored by default; act copies tracked files
    git("commit", "-qm", "Use the team's DVC remote; this week's production data", cwd=project)
    bare = root / "origin.git"
    run(["git", "init", "-q", "--bare", str(bare)], cwd=root)
    url = f"https://github.com/{REPO}.git"  # act names the repository after it
    git("remote", "add", "origin", url, cwd=project)
    git("config", f"url.{bare}.insteadOf", url, cwd=project)  # ... while git fetches from and pushes to `bare`
    git("push", "-q", "origin", "main", cwd=project)
    drift_project.register_champion(project, mlflow_server)
    return project, root, bare


def test_scheduled_drift_on_drifted_data_opens_one_retraining_pr(
        drifted, mlflow_server, github_fake, actions_checkout):  # noqa: F811 - the fixture
    project, root, bare = drifted
    github_fake.git_dir = bare
    workflows = project / ".github" / "workflows"
    log, _ = act("schedule", {"schedule": "17 5 * * *", "repository": {"full_name": REPO}}, workflows / "drift.yml",
                 project, root, mlflow_server, github_fake.url, actions_checkout,
                 {"GITOPS_ML_BOT_TOKEN": TOKEN})
    assert "drift: drifted" in log, log[-6000:]
    assert len(github_fake.pulls) == 1
    number, pull = next(iter(github_fake.pulls.items()))
    assert pull["head"]["ref"] == BRANCH and [label["name"] for label in pull["labels"]] == ["retrain"]
    assert "| age | ks |" in pull["body"]
    head = git("rev-parse", f"refs/heads/{BRANCH}", cwd=bare)
    assert (root / "artifacts" / "drift").is_dir()

    assert git("log", "-1", "--format=%ae", head, cwd=bare).startswith("41898282+github-actions")

    # The retraining pull request's checks, as for any pull request: pull-request.yml on the pushed
    # branch retrains on the new data (the PR's code, candidate credentials: this server has no auth,
    # the names only have to be set) and compares the retrained model with the champion.
    base = git("rev-parse", "refs/heads/main", cwd=bare)
    event = {"action": "opened", "number": number, "repository": {"full_name": REPO},
             "pull_request": {"number": number, "html_url": pull["html_url"], "merged": False,
                              "head": {"sha": head, "ref": BRANCH}, "base": {"ref": "main", "sha": base}}}
    client = MlflowClient(mlflow_server)
    champion = client.get_model_version_by_alias(MODEL, "champion")
    log, code = act("pull_request", event, workflows / "pull-request.yml", project, root, mlflow_server,
                    github_fake.url, actions_checkout,
                    {"GITHUB_TOKEN": TOKEN, "MLFLOW_CANDIDATE_USERNAME": "candidate",
                     "MLFLOW_CANDIDATE_PASSWORD": "unused"},
                    must_succeed=False)  # the check fails when the comparison says reject
    retrained = client.search_model_versions(f"name='{MODEL}-candidates'")
    assert len(retrained) == 1 and retrained[0].tags["git_sha"] == head, log[-6000:]
    assert retrained[0].tags["pr_number"] == str(number)
    pointer = yaml.safe_load(git("show", f"{head}:data/raw/customers.csv.dvc", cwd=bare))
    assert retrained[0].tags["data_hash"] == pointer["outs"][0]["md5"]  # trained on the branch's new data
    [comment] = github_fake.comments[number]
    assert "<!-- gitops-ml:compare -->" in comment["body"] and f"champion version {champion.version}" in comment["body"]
    assert retrained[0].tags["compare.verdict"] in comment["body"]
    [status] = [s for s in github_fake.statuses if s["sha"] == head]
    assert status["context"] == "gitops-ml/compare"
    verdict = retrained[0].tags["compare.verdict"]
    assert status["state"] == ("success" if verdict == "promote" else "failure")
    assert (code == 0) == (verdict == "promote"), log[-6000:]
    # Nothing of a pull request's run moves production: the champion is where it was.
    assert client.get_model_version_by_alias(MODEL, "champion").version == champion.version

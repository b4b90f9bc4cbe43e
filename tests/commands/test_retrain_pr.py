"""`gitops-ml retrain-pr` after `gitops-ml drift`: a baked project (real git, real DVC with its local remote), a
real bare git remote, a real MLflow server with a champion, and the GitHub fake; production data from the
generated repo's own simulator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from gitops_ml.cli import main
from gitops_ml.core.contract import load_contract
from gitops_ml.core.retrain import data_hash_of

from tests import drift_project
from tests.conftest import bake

MODEL = "retrain-model"
REPO = f"acme/{MODEL}"
BRANCH = f"gitops-ml/retrain/{MODEL}"


def git(*args, cwd) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def project(tmp_path_factory, mlflow_server):
    base = tmp_path_factory.mktemp("retrain")
    root = bake(base, project=MODEL, task="classification")
    remote = base / "remote.git"
    git("clone", "--quiet", "--bare", str(root), str(remote), cwd=base)
    git("remote", "add", "origin", str(remote), cwd=root)
    git("fetch", "--quiet", "origin", cwd=root)
    subprocess.run([sys.executable, "-m", "dvc", "push", "-q"], cwd=root, check=True)  # the sample data, on the remote
    model, _ = drift_project.register_champion(root, mlflow_server)
    return {"root": root, "remote": remote, "model": model}


@pytest.fixture
def bot(project, tracking, github_fake, monkeypatch, tmp_path):
    root = project["root"]
    github_fake.git_dir = project["remote"]
    for name in ("GITHUB_ACTIONS", "PREDICTION_LOG_DIR", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "output"))
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_TOKEN", github_fake.token)
    monkeypatch.chdir(root)
    out = tmp_path / "reports"

    def run(frame) -> dict:
        path = root / "data/production/current.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        if frame is None:
            path.unlink(missing_ok=True)
        else:
            frame.to_csv(path, index=False)
        assert main(["drift", "--out", str(out), "--no-history"]) == 0
        assert main(["retrain-pr", "--report", str(out), "--out", str(out)]) == 0
        return json.loads((out / "retrain-pr.json").read_text())

    run.fake = github_fake
    return run


def _remote_head(project) -> str | None:
    found = git("ls-remote", "--heads", str(project["remote"]), BRANCH, cwd=project["root"]).split()
    return found[0] if found else None


def _pointer_md5(project, ref: str) -> str:
    text = git("show", f"{ref}:data/raw/customers.csv.dvc", cwd=project["remote"])
    return yaml.safe_load(text)["outs"][0]["md5"]


def _on_dvc_remote(project, md5: str) -> bool:
    config = subprocess.run([sys.executable, "-m", "dvc", "remote", "list"], cwd=project["root"],
                            capture_output=True, text=True).stdout
    folder = config.split()[1]
    return (Path(folder) / "files" / "md5" / md5[:2] / md5[2:]).is_file()


def test_stable_data_and_too_little_data_open_nothing(project, bot):
    root = project["root"]
    report = bot(drift_project.simulate(root, 1200, seed=21, drift=0.0))
    assert report["status"] == "stable" and report["action"] == "nothing"
    report = bot(drift_project.simulate(root, 40, seed=22, drift=1.0))
    assert report["status"] == "insufficient data" and report["action"] == "nothing"
    assert bot.fake.pulls == {} and bot.fake.calls_to("create_pull") == 0
    assert _remote_head(project) is None


def test_the_retraining_pull_request_lifecycle(project, bot):
    root = project["root"]
    contract = load_contract(root)
    main_md5 = _pointer_md5(project, "main")

    # 1. injected drift: exactly one PR, with the drift table, the label and a pushed branch with the new data
    report = bot(drift_project.simulate(root, 1200, seed=31, drift=1.0))
    assert report["action"] == "opened" and report["changed"]
    assert list(bot.fake.pulls) == [report["pull"]]
    pull = bot.fake.pulls[report["pull"]]
    assert pull["head"]["ref"] == BRANCH and pull["base"]["ref"] == "main"
    assert [label["name"] for label in pull["labels"]] == ["retrain"]
    assert "| age | ks |" in pull["body"] and "closing this pull request without merging declines it" in pull["body"]
    first_hash = data_hash_of(pull["body"])
    head = _remote_head(project)
    assert head == report["head"]
    assert git("log", "-1", "--format=%ae", head, cwd=project["remote"]).startswith("41898282+github-actions")
    new_md5 = _pointer_md5(project, head)
    assert new_md5 != main_md5 and _on_dvc_remote(project, new_md5)
    assert report["new_rows"] == 1200

    # 2. the same data again: nothing changes, on git or on GitHub
    calls = len(bot.fake.calls)
    report = bot(drift_project.simulate(root, 1200, seed=31, drift=1.0))
    assert report["action"] == "unchanged" and not report["changed"]
    assert _remote_head(project) == head
    assert bot.fake.calls_to("update_pull") == 0 and bot.fake.calls_to("create_pull") == 1
    assert len(bot.fake.calls) - calls <= 4  # reads only

    # 3. new drifted data: the same PR, updated in place, a new commit
    report = bot(drift_project.simulate(root, 1200, seed=32, drift=0.9))
    assert report["action"] == "updated" and report["pull"] == pull["number"] and len(bot.fake.pulls) == 1
    second_hash = data_hash_of(bot.fake.pulls[pull["number"]]["body"])
    assert second_hash != first_hash and _remote_head(project) != head

    # 4. a person pushes a commit to the branch; the next run builds on top of it, nothing is forced
    clone = root.parent / "person"
    git("clone", "--quiet", "--branch", BRANCH, str(project["remote"]), str(clone), cwd=root.parent)
    (clone / "NOTES.md").write_text("why this retraining matters\n")
    git("add", "NOTES.md", cwd=clone)
    git("-c", "user.name=Ada", "-c", "user.email=ada@example.com", "commit", "-q", "-m", "notes", cwd=clone)
    git("push", "--quiet", "origin", BRANCH, cwd=clone)
    person = git("rev-parse", "HEAD", cwd=clone)
    report = bot(drift_project.simulate(root, 1200, seed=33, drift=0.8))
    assert report["action"] == "updated" and report["kept_commits"] == 1
    head = _remote_head(project)
    subprocess.run(["git", "merge-base", "--is-ancestor", person, head], cwd=project["remote"], check=True)
    assert git("log", "-1", "--format=%ae", head, cwd=project["remote"]) != "ada@example.com"

    # 5. closed without merge = declined: the same data does not reopen it, nor open another
    bot.fake.pulls[pull["number"]].update(state="closed")
    report = bot(drift_project.simulate(root, 1200, seed=33, drift=0.8))
    assert report["action"] == "declined" and report["pull"] == pull["number"]
    assert len(bot.fake.pulls) == 1 and bot.fake.pulls[pull["number"]]["state"] == "closed"

    # 6. new data (a new hash): a new PR, whose body names the declined one
    report = bot(drift_project.simulate(root, 1200, seed=34, drift=1.0))
    assert report["action"] == "opened" and report["pull"] != pull["number"] and len(bot.fake.pulls) == 2
    assert f"#{pull['number']}, was closed without merging" in bot.fake.pulls[report["pull"]]["body"]
    assert contract.data.train in bot.fake.pulls[report["pull"]]["body"]


def test_live_performance_below_the_floor_opens_one_issue_closed_on_recovery(project, bot):
    root = project["root"]
    contract = load_contract(root)
    target = contract.data.target
    bad = drift_project.simulate(root, 1200, seed=41, drift=0.0)
    bad[target] = 1 - bad[target]  # the world turned: the champion is now wrong
    report = bot(bad)
    assert report["alert"]["action"] == "open"
    issue = bot.fake.issues[report["alert"]["issue"]]
    assert issue["state"] == "open" and [label["name"] for label in issue["labels"]] == ["model-alert"]
    assert "below the floor" in issue["body"]
    report = bot(bad)  # still bad: the same issue, not a second one
    assert report["alert"]["action"] == "update" and len(bot.fake.issues) == 1
    report = bot(drift_project.simulate(root, 1200, seed=42, drift=0.0))  # recovered
    assert report["alert"]["action"] == "close"
    assert bot.fake.issues[issue["number"]]["state"] == "closed"
    assert "has recovered" in bot.fake.comments[issue["number"]][-1]["body"]

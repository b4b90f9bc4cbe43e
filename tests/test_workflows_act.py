"""The generated pull-request workflow, run by act on this machine against real services.

Real: the generated repo with a real git remote and a DVC remote, every gitops-ml action (mapped
from this checkout with --local-repository), MLflow, DVC. Replaced: GitHub's REST API (the local
fake) and the three GitHub-hosted third-party actions (tests/act_stubs/).
"""

from __future__ import annotations

import json
import os
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


def third_party_stubs(workflow: Path) -> list[str]:
    """--local-repository flags mapping each pinned third-party action to its stand-in."""
    flags = []
    for job in yaml.safe_load(workflow.read_text())["jobs"].values():
        for step in job["steps"]:
            uses = step.get("uses", "")
            if uses and not uses.startswith("acme/gitops-ml/"):
                name = uses.split("@")[0].split("/")[1]
                flags += ["--local-repository", f"{uses}={STUBS / name}"]
    return flags


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
    (root / "event.json").write_text(json.dumps(event))
    return project, head, root


def test_pull_request_workflow_checks_trains_compares_and_reports(pull_request, mlflow_server, github_fake):
    project, head, root = pull_request
    workflow = project / ".github" / "workflows" / "pull-request.yml"
    artifacts = root / "artifacts"
    env = {**os.environ, "ACT_ARTIFACTS": str(artifacts)}
    for leaked in ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI", "GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
        env.pop(leaked, None)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "act"), "pull_request", "-e", str(root / "event.json"),
         "-W", str(workflow), "-P", "ubuntu-latest=-self-hosted", "--action-offline-mode",
         "--local-repository", f"acme/gitops-ml@v1={ROOT}", *third_party_stubs(workflow),
         "--env", f"GITHUB_API_URL={github_fake.url}", "--env", f"ACT_ARTIFACTS={artifacts}",
         "-s", f"GITHUB_TOKEN={TOKEN}", "-s", f"MLFLOW_TRACKING_URI={mlflow_server}"],
        cwd=project, env=env, capture_output=True, text=True, timeout=1500)
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"act failed:\n{log[-8000:]}"
    assert TOKEN not in log, "the token was printed"

    # One sticky comment with the verdict, and a success status on the PR's head commit.
    comments = github_fake.comments[PR_NUMBER]
    assert len(comments) == 1 and "<!-- gitops-ml:compare -->" in comments[0]["body"]
    assert "promote" in comments[0]["body"].lower()
    statuses = [s for s in github_fake.statuses if s["sha"] == head]
    assert [s["state"] for s in statuses] == ["success"]
    assert statuses[0]["context"] == "gitops-ml/compare"

    # The challenger is registered with the PR's provenance, and compared (but not promoted).
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    versions = client.search_model_versions("name='act-model'")
    assert len(versions) == 1
    tags = versions[0].tags
    assert tags["pr_number"] == str(PR_NUMBER) and tags["compare.verdict"] == "promote"
    assert "champion" not in (versions[0].aliases or [])

    # The reports were kept as an artifact: data checks, comparison and model card.
    kept = {p.relative_to(artifacts).as_posix() for p in artifacts.rglob("*") if p.is_file()}
    for report in ("reports/data-check/summary.md", "reports/compare/compare.md", "reports/compare/model-card.md"):
        assert f"reports/{report}" in kept, sorted(kept)

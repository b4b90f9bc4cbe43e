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

import httpx
import pytest
import yaml

from tests.conftest import ROOT, bake, run, start_haproxy, stop
from tests.github_fake import TOKEN, review

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
def environments(tmp_path_factory, docker_client):
    """Where merges ship: a real HAProxy in front of `staging` and one in front of `production` (the
    config file generated repos ship). Afterwards the proxies stop and the deployed containers go."""
    folder = tmp_path_factory.mktemp("act-proxies")
    proxies = {name: start_haproxy(folder) for name in ("staging", "production")}
    yield proxies
    for proxy in proxies.values():
        stop(proxy.process)
    for container in docker_client.containers.list(all=True, filters={"label": "io.github.gitops-ml.model=act-model"}):
        container.remove(force=True)


def ship_to(project: Path, registry: str, proxies: dict) -> None:
    """The team's shipping settings in gitops-ml.yaml: images to the local OCI registry, one
    environment per proxy (timeouts for a busy test machine)."""
    contract = project / "gitops-ml.yaml"
    raw = yaml.safe_load(contract.read_text())
    raw["registry"]["image"] = f"{registry}/act-model"
    raw["deploy"].update({"smoke_timeout_s": 120, "drain_timeout_s": 5, "smoke_rows": 20})
    raw["deploy"]["environments"] = {name: {"url": proxy.url, "proxy": {"admin": proxy.admin}}
                                     for name, proxy in proxies.items()}
    contract.write_text(yaml.safe_dump(raw, sort_keys=False))


@pytest.fixture(scope="module")
def pull_request(tmp_path_factory, mlflow_auth_server, oci_registry, environments):
    """A generated repo pushed to a bare git remote, its data in a shared DVC remote, shipping to the
    local registry and two proxied environments, and a PR branch."""
    root = tmp_path_factory.mktemp("act")
    project = bake(root, project="act-model")
    mlflow_auth_server.grant_model("act-model")
    ship_to(project, oci_registry, environments)
    dvc = [str(Path(sys.executable).parent / "dvc")]
    # A team's setup: a DVC remote everybody reaches, committed (the generated local one is per machine).
    run([*dvc, "remote", "add", "-d", "shared", str(root / "dvc-shared")], cwd=project)
    run([*dvc, "push", "-q", "-r", "shared"], cwd=project)
    git("commit", "-qam", "Use the team's DVC remote, image registry and environments", cwd=project)
    run(["git", "init", "-q", "--bare", str(root / "origin.git")], cwd=root)
    # act names the repository after origin's URL; pushes go to the local bare repository.
    git("remote", "add", "origin", "https://github.com/acme/act-model.git", cwd=project)
    git("remote", "set-url", "--push", "origin", str(root / "origin.git"), cwd=project)
    git("push", "-q", "origin", "main", cwd=project)
    base = git("rev-parse", "HEAD", cwd=project)
    git("checkout", "-q", "-b", "more-regularisation", cwd=project)
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("C: 1.0", "C: 0.5"))
    git("commit", "-qam", "Regularise a little more", cwd=project)
    git("push", "-q", "origin", "more-regularisation", cwd=project)
    head = git("rev-parse", "HEAD", cwd=project)
    # act sets GITHUB_SHA to the local HEAD: on main, it is not the head, as on GitHub (its merge commit).
    git("checkout", "-q", "main", cwd=project)
    return project, head, base, root, pr_event(PR_NUMBER, head, "more-regularisation", base)


def pr_event(number: int, head: str, branch: str, base: str) -> dict:
    return {
        "action": "opened",
        "number": number,
        "pull_request": {
            "number": number,
            "html_url": f"https://github.com/acme/act-model/pull/{number}",
            "head": {"sha": head, "ref": branch},
            "base": {"ref": "main", "sha": base},
            "merged": False,
        },
        "repository": REPOSITORY,
    }


REPOSITORY = {"full_name": "acme/act-model", "name": "act-model", "owner": {"login": "acme"},
              "default_branch": "main"}


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


def act_environment(artifacts: Path) -> dict[str, str]:
    """act's own environment: nothing of this process's MLflow, GitHub, venv or prediction-log
    settings reaches the workflow, only what act is given on its command line."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MLFLOW_", "GITHUB_")) and key not in ("VIRTUAL_ENV", "PREDICTION_LOG_DIR")}
    return {**env, "ACT_ARTIFACTS": str(artifacts)}


def act(event_name: str, event: dict, workflow: Path, project: Path, root: Path, secrets: dict[str, str],
        github_url: str, checkout: Path, succeed: bool = True, extra_env: dict[str, str] | None = None,
        variables: dict[str, str] | None = None) -> str:
    """Run one workflow with act on the host, as GitHub would for `event`; returns the log. Repository
    variables: `variables`, else GITOPS_ML_DEPLOY=false (a merge promotes without building or deploying)."""
    artifacts = root / "artifacts"
    (root / "event.json").write_text(json.dumps(event))
    env = act_environment(artifacts)
    extra = [flag for key, value in (extra_env or {}).items() for flag in ("--env", f"{key}={value}")]
    log_path = root / f"act-{workflow.stem}-{event_name}-{len(list(root.glob('act-*.log')))}.log"  # streamed
    with log_path.open("w") as log_file:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "act"), event_name, "-e", str(root / "event.json"),
             "-W", str(workflow), "-P", "ubuntu-latest=-self-hosted", "--action-offline-mode",
             *action_mappings(workflow, checkout),
             "--env", f"GITHUB_API_URL={github_url}", "--env", f"ACT_ARTIFACTS={artifacts}",
             "--env", f"ACT_CHECKOUT_SOURCE={project}", *extra,
             *(flag for k, v in (variables or {"GITOPS_ML_DEPLOY": "false"}).items() for flag in ("--var", f"{k}={v}")),
             "-s", f"GITHUB_TOKEN={TOKEN}", *(flag for k, v in secrets.items() for flag in ("-s", f"{k}={v}"))],
            cwd=project, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True, timeout=1500)
    log = log_path.read_text()
    if succeed:
        assert result.returncode == 0, f"act failed on {workflow.name}:\n{log[-8000:]}"
    else:
        assert result.returncode != 0, f"act succeeded on {workflow.name}, expected a failure:\n{log[-8000:]}"
    assert TOKEN not in log, "the token was printed"
    for name, value in secrets.items():
        assert not name.endswith("PASSWORD") or value not in log, f"the secret {name} was printed"
    return log


def all_secrets(auth) -> dict[str, str]:
    """What a repository configures: candidate secrets for PRs, production ones in the `production`
    environment. act ignores `environment:`, so every job could ask for any of them: only what each
    workflow maps into its jobs' env reaches them."""
    candidate, production = auth.env("candidate"), auth.env("production")
    return {"MLFLOW_TRACKING_URI": auth.url,
            "MLFLOW_CANDIDATE_USERNAME": candidate["MLFLOW_TRACKING_USERNAME"],
            "MLFLOW_CANDIDATE_PASSWORD": candidate["MLFLOW_TRACKING_PASSWORD"],
            "MLFLOW_TRACKING_USERNAME": production["MLFLOW_TRACKING_USERNAME"],
            "MLFLOW_TRACKING_PASSWORD": production["MLFLOW_TRACKING_PASSWORD"]}


def merge(project: Path, github_fake, number: int, branch: str, head: str, approved_at: str | None) -> str:
    """Merge the branch into main (a merge commit), as GitHub would, and record the PR in the fake."""
    git("checkout", "-q", "main", cwd=project)
    git("merge", "-q", "--no-ff", branch, "-m", f"Merge pull request #{number} from acme/{branch}", cwd=project)
    sha = git("rev-parse", "HEAD", cwd=project)
    git("push", "-q", "origin", "main", cwd=project)
    github_fake.pulls[number] = {
        "number": number, "state": "closed", "merged_at": "2026-12-02T12:00:00Z", "merge_commit_sha": sha,
        "head": {"sha": head, "ref": branch}, "base": {"ref": "main"}, "user": {"login": "dev"},
        "merged_by": {"login": "mia"}, "html_url": f"https://github.com/acme/act-model/pull/{number}"}
    github_fake.reviews[number] = [review("ana", "APPROVED", approved_at, number)] if approved_at else []
    return sha


def push_event(before: str, after: str) -> dict:
    return {"ref": "refs/heads/main", "before": before, "after": after, "repository": REPOSITORY,
            "pusher": {"name": "mia"}, "commits": []}


HOSTILE = '''"""A hostile pull request's code: everything it tries is recorded, so the test sees none worked."""
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

where = sys.argv[1]
out = Path(os.environ["HOSTILE_OUT"])
out.mkdir(parents=True, exist_ok=True)
environment = "\\n".join(f"{key}={value}" for key, value in sorted(os.environ.items()))
(out / f"env-{where}.txt").write_text(environment)
print(environment)  # print the environment into the log
tried = {}
from mlflow import MlflowClient  # noqa: E402

client = MlflowClient()
for name, attempt in (
        ("alias", lambda: client.set_registered_model_alias("act-model", "champion", "1")),
        ("verify_tag", lambda: client.set_model_version_tag("act-model", "1", "verify.verdict", "promote")),
        ("compare_tag", lambda: client.set_model_version_tag("act-model", "1", "compare.verdict", "promote"))):
    try:
        attempt()
        tried[name] = "done"
    except Exception as error:  # noqa: BLE001
        tried[name] = str(error)[:300]
head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
token = os.environ.get("GITHUB_TOKEN") or os.environ.get("ACTIONS_RUNTIME_TOKEN") or ""
request = urllib.request.Request(
    f"{os.environ['GITHUB_API_URL']}/repos/acme/act-model/statuses/{head}", method="POST",
    data=json.dumps({"state": "success", "context": "gitops-ml/compare", "description": "trust me"}).encode(),
    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
try:
    tried["status"] = urllib.request.urlopen(request, timeout=10).status
except urllib.error.HTTPError as error:
    tried["status"] = error.code
(out / f"tried-{where}.json").write_text(json.dumps(tried))
'''


def make_hostile(project: Path) -> None:
    """The PR's Makefile (make setup) and training code run hostile.py; its training shuffles the labels."""
    (project / "hostile.py").write_text(HOSTILE)
    makefile = project / "Makefile"
    makefile.write_text(makefile.read_text().replace(
        "\t@$(MAKE) --no-print-directory gitops-ml\n",
        "\t@$(MAKE) --no-print-directory gitops-ml\n\t-$(BIN)/python hostile.py make-setup\n", 1))
    train = project / "src" / "act_model" / "train.py"
    source = train.read_text()
    anchor = "        frame = read_typed(args.data, contract)\n"
    assert anchor in source
    train.write_text(source.replace(anchor, anchor + (
        "        import subprocess\n"
        "        subprocess.run([sys.executable, 'hostile.py', 'train'], check=False)\n"
        "        target = contract.data.target\n"
        "        frame[target] = frame[target].sample(frac=1.0, random_state=0).to_numpy()\n"
    ), 1))


@pytest.mark.timeout(3600)  # four workflow runs: two pull requests, two merges
def test_the_pull_request_shows_and_the_merge_decides(pull_request, mlflow_auth_server, github_fake,
                                                      actions_checkout, monkeypatch, oci_registry, environments,
                                                      base_image):
    from mlflow import MlflowClient

    project, head, base, root, event = pull_request
    workflows = project / ".github" / "workflows"
    secrets = all_secrets(mlflow_auth_server)
    github_fake.git_dir = project
    for key, value in mlflow_auth_server.env("admin").items():
        monkeypatch.setenv(key, value)  # this test's own reads; act gets only the secrets
    client = MlflowClient(mlflow_auth_server.url)

    def versions(name: str) -> list:
        return sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))

    # The pull request: train (its code, candidate credentials), then report (reviewed code only).
    log = act("pull_request", event, workflows / "pull-request.yml", project, root, secrets, github_fake.url,
              actions_checkout)
    comments = github_fake.comments[PR_NUMBER]
    assert len(comments) == 1 and "<!-- gitops-ml:compare -->" in comments[0]["body"], log[-8000:]
    assert "promote" in comments[0]["body"].lower() and "protected holdout, sha256 " in comments[0]["body"]
    statuses = [s for s in github_fake.statuses if s["sha"] == head]
    assert [s["state"] for s in statuses] == ["success"] and statuses[0]["context"] == "gitops-ml/compare"
    candidates = versions("act-model-candidates")
    assert len(candidates) == 1 and candidates[0].tags["git_sha"] == head, log[-8000:]
    assert candidates[0].tags["pr_number"] == str(PR_NUMBER) and candidates[0].tags["compare.verdict"] == "promote"
    assert versions("act-model") == []  # a pull request never writes the production model
    kept = {p.relative_to(root / "artifacts").as_posix() for p in (root / "artifacts").rglob("*") if p.is_file()}
    for report in ("train-reports/reports/data-check/summary.md", "reports/reports/compare/compare.md",
                   "reports/reports/compare/model-card.md"):
        assert report in kept, sorted(kept)

    # The merge: verify (approved head, bound candidate, comparison now), copy into production; ship
    # (build and push the image, deploy it by digest to staging, then production, each behind its
    # proxy and smoke-tested); only then promote. Never retrained.
    merged = merge(project, github_fake, PR_NUMBER, "more-regularisation", head, approved_at=head)
    log = act("push", push_event(base, merged), workflows / "merge.yml", project, root, secrets, github_fake.url,
              actions_checkout, variables={"GITOPS_ML_BASE_IMAGE": base_image})
    assert len(versions("act-model-candidates")) == 1, log[-8000:]
    champion = client.get_model_version_by_alias("act-model", "champion")
    audit = champion.tags
    assert audit["verify.head_sha"] == head and audit["verify.candidate"] == "act-model-candidates/1"
    assert audit["audit.pr_number"] == str(PR_NUMBER) and audit["audit.merged_by"] == "mia"
    assert audit["audit.approvers"] == "ana" and audit["audit.pr_url"].endswith(f"/pull/{PR_NUMBER}")
    assert audit["git_sha"] == head and audit["audit.compare_verdict"] == "promote"
    digest = audit["audit.image_digest"]  # what serves is in the audit trail
    assert digest.startswith("sha256:"), log[-8000:]
    manifest = httpx.get(f"http://{oci_registry}/v2/act-model/manifests/{digest}", timeout=10, headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"})
    assert manifest.status_code == 200, f"{digest} is not in the registry"
    for name, proxy in environments.items():
        served = httpx.get(f"{proxy.url}/metadata", timeout=10).json()  # through the environment's stable entry
        assert (served["name"], served["version"], served["image_digest"]) == ("act-model", champion.version,
                                                                              digest), (name, served)
    statuses = github_fake.deployment_statuses
    recorded = [(d["environment"], d["payload"]["version"], [s["state"] for s in statuses[d["id"]]])
                for d in github_fake.deployments]
    assert recorded == [("staging", champion.version, ["in_progress", "success"]),
                        ("production", champion.version, ["in_progress", "success"])], recorded

    # A hostile pull request: its Makefile and training code print the environment, try to move the
    # champion, write verdict tags and post a success status; its model is worse (shuffled labels).
    git("checkout", "-q", "-b", "sneaky", "main", cwd=project)
    make_hostile(project)
    git("add", "-A", cwd=project)
    git("commit", "-qm", "Faster training", cwd=project)
    git("push", "-q", "origin", "sneaky", cwd=project)
    sneaky = git("rev-parse", "HEAD", cwd=project)
    git("checkout", "-q", "main", cwd=project)
    hostile_out = root / "hostile"
    act("pull_request", pr_event(8, sneaky, "sneaky", merged), workflows / "pull-request.yml", project, root,
        secrets, github_fake.url, actions_checkout, succeed=False, extra_env={"HOSTILE_OUT": str(hostile_out)})
    tried = {where: json.loads((hostile_out / f"tried-{where}.json").read_text()) for where in ("make-setup", "train")}
    for where, attempts in tried.items():
        for name in ("alias", "verify_tag", "compare_tag"):
            assert "403" in attempts[name] or "PERMISSION_DENIED" in attempts[name], (where, name, attempts[name])
        assert attempts["status"] == 401, (where, attempts)  # no token in the job's environment
    for dump in hostile_out.glob("env-*.txt"):
        text = dump.read_text()
        assert secrets["MLFLOW_TRACKING_PASSWORD"] not in text and TOKEN not in text, dump.name
    assert [s["state"] for s in github_fake.statuses if s["sha"] == sneaky] == ["failure"]  # honest, from report
    assert "reject" in github_fake.comments[8][0]["body"]
    assert client.get_model_version_by_alias("act-model", "champion").version == champion.version
    assert "compare.verdict" not in client.get_model_version("act-model", champion.version).tags

    # Merged anyway (its reviewer was fooled): verify compares again on the holdout and refuses it.
    second = merge(project, github_fake, 8, "sneaky", sneaky, approved_at=sneaky)
    log = act("push", push_event(merged, second), workflows / "merge.yml", project, root, secrets, github_fake.url,
              actions_checkout, succeed=False)
    assert "PR #8" in log and "says reject" in log
    assert len(versions("act-model")) == 1
    assert client.get_model_version_by_alias("act-model", "champion").version == champion.version

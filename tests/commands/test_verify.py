"""The merge decides: verify and promote against a real basic-auth MLflow server, real git and the GitHub fake.

Two real MLflow identities: `candidate` (what pull-request jobs hold: MANAGE on the candidates
model, READ on the production model) and `production` (the merge job's: MANAGE on the production
model, READ on the candidates). Candidate versions are registered the way the PR's train job does,
with the candidate identity; verify and promote run with the production identity.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess

import mlflow
import numpy as np
import pytest
import yaml
from gitops_ml.cli import main
from gitops_ml.core.contract import load_contract
from gitops_ml.core.dataset import read_typed, target_array, to_matrix
from gitops_ml.io.model_dir import log_model
from gitops_ml.io.reference import REFERENCE_ARTIFACT
from gitops_ml.io.registry import CHAMPION, PREVIOUS, Registry, RegistryError
from gitops_ml.io.repo import sha256_of

from tests.conftest import bake, mlflow_pointed_at
from tests.github_fake import review

MODEL = "trust-model"
CANDIDATES = f"{MODEL}-candidates"
REPO = "acme/trust-model"


def git(project, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=dev", "-c", "user.email=dev@example.com", *args], cwd=project,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


class Repo:
    """The generated repository, its contract and feature code, and a way to train candidates."""

    def __init__(self, root, auth):
        self.root, self.auth = root, auth
        self.contract = load_contract(root)
        frame = read_typed(root / self.contract.data.train, self.contract)
        self.train = frame
        spec = importlib.util.spec_from_file_location("trust_features", root / "src/trust_model/features.py")
        self.features = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.features)
        self.params = yaml.safe_load((root / "params.yaml").read_text())["train"]

    def candidate(self, head: str, pr: int, rows: int | None = None, shuffled: bool = False,
                  extra_tags: dict | None = None) -> str:
        """Register a candidate as the PR's train job does: candidate identity, tagged with the head SHA."""
        frame = self.train if rows is None else self.train.sample(rows, random_state=pr)
        labels = target_array(frame, self.contract)
        if shuffled:
            labels = np.random.default_rng(0).permutation(labels)
        model = self.features.build_pipeline(self.contract, self.params).fit(
            to_matrix(frame, self.contract.data.features), labels)
        with mlflow_pointed_at(**self.auth.env("candidate")):
            mlflow.set_experiment(CANDIDATES)
            tags = {"git_sha": head, "git_dirty": "false", "pr_number": str(pr)}
            with mlflow.start_run(run_name=f"pr-{pr}", tags=tags):
                info = log_model(model, self.contract, CANDIDATES)
                mlflow.log_text(frame.to_csv(index=False), REFERENCE_ARTIFACT)  # as train logs it
            version = str(info.registered_model_version)
            Registry(self.auth.url, CANDIDATES).set_tags(version, {**tags, **(extra_tags or {})})
        return version

    def branch(self, name: str, change: str) -> str:
        """A pull request's branch off main with one commit; returns its head SHA."""
        git(self.root, "checkout", "-q", "-b", name, "main")
        (self.root / f"{name}.md").write_text(change + "\n")
        git(self.root, "add", f"{name}.md")
        git(self.root, "commit", "-qm", change)
        head = git(self.root, "rev-parse", "HEAD")
        git(self.root, "checkout", "-q", "main")
        return head

    def merge(self, fake, number: int, branch: str, head: str, author: str = "mia") -> str:
        """Merge the branch into main (a merge commit) and tell the GitHub fake about the pull request."""
        git(self.root, "merge", "-q", "--no-ff", branch, "-m", f"Merge pull request #{number}")
        merge = git(self.root, "rev-parse", "HEAD")
        fake.pulls[number] = {
            "number": number, "state": "closed", "merged_at": "2026-12-02T12:00:00Z", "merge_commit_sha": merge,
            "head": {"sha": head, "ref": branch}, "base": {"ref": "main"}, "user": {"login": author},
            "merged_by": {"login": "lead"}, "html_url": f"https://github.test/{REPO}/pull/{number}"}
        return merge


@pytest.fixture(scope="module")
def repo(tmp_path_factory, mlflow_auth_server):
    root = bake(tmp_path_factory.mktemp("trust"), project=MODEL, task="classification")
    mlflow_auth_server.grant_model(MODEL)
    return Repo(root, mlflow_auth_server)


@pytest.fixture
def as_identity(repo, github_fake, monkeypatch, tmp_path):
    """Run `gitops-ml` in-process in the repo as the merge job would, as the given MLflow identity."""
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_SHA", "GITHUB_RUN_ID", "GITOPS_ML_IDENTITY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "output"))
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_TOKEN", github_fake.token)
    monkeypatch.chdir(repo.root)
    github_fake.git_dir = repo.root
    admin = repo.auth.env("admin")
    for key, value in admin.items():  # the test's own reads of the registry
        monkeypatch.setenv(key, value)

    def run(identity: str, *args: str) -> int:
        try:
            for key, value in repo.auth.env(identity).items():
                monkeypatch.setenv(key, value)
            return main(list(args))
        finally:
            for key, value in admin.items():
                monkeypatch.setenv(key, value)

    run.fake = github_fake
    return run


def production() -> Registry:
    import os

    return Registry(os.environ["MLFLOW_TRACKING_URI"], MODEL)


def aliases() -> dict[str, str | None]:
    return {alias: getattr(production().by_alias(alias), "version", None) for alias in (CHAMPION, PREVIOUS)}


def verify_report(repo) -> dict:
    return json.loads((repo.root / "reports/verify/verify.json").read_text())


def test_the_candidate_identity_cannot_touch_production(repo, as_identity):
    head = git(repo.root, "rev-parse", "HEAD")
    version = repo.candidate(head, 90, rows=400)
    with mlflow_pointed_at(**repo.auth.env("production")):
        prod = Registry(repo.auth.url, MODEL)
        adopted = prod.adopt(prod.sibling(CANDIDATES).download(version, repo.root / "build" / "probe"),
                             {"probe": "yes"})
    with mlflow_pointed_at(**repo.auth.env("candidate")):
        as_candidate = Registry(repo.auth.url, MODEL)
        assert as_candidate.get(adopted.version).tags["probe"] == "yes"  # it may read production
        for attempt in (lambda: as_candidate.set_alias(CHAMPION, adopted.version),
                        lambda: as_candidate.set_tags(adopted.version, {"verify.verdict": "promote"})):
            with pytest.raises(RegistryError) as refused:
                attempt()
            assert "403" in str(refused.value) or "PERMISSION_DENIED" in str(refused.value)
            assert repo.auth.passwords["candidate"] not in str(refused.value)
    assert "verify.verdict" not in production().get(adopted.version).tags
    assert production().by_alias(CHAMPION) is None
    # That probe was never verified: promote refuses it and moves nothing.
    assert as_identity("production", "promote", "--version", adopted.version) == 2
    assert production().by_alias(CHAMPION) is None


def test_three_merges_in_a_row_are_all_verified_and_promoted_in_order(repo, as_identity):
    fake = as_identity.fake
    start = git(repo.root, "rev-parse", "main")
    # The first run of the merge workflow on this repository: nothing merged yet.
    assert as_identity("production", "verify", "--sha", start) == 0
    assert production().model_tag("gitops-ml.reconciled_sha") == start

    heads, merges = {}, {}
    for number, rows in ((1, 400), (2, None), (3, None)):
        heads[number] = repo.branch(f"pr-{number}", f"change {number}")
        forged = {"verify.verdict": "promote", "audit.approvers": "mallory"} if number == 1 else None
        repo.candidate(heads[number], number, rows=rows, extra_tags=forged)
        fake.reviews[number] = [review("ana", "APPROVED", heads[number], number)]
        merges[number] = repo.merge(fake, number, f"pr-{number}", heads[number])
    # The concurrency group dropped the runs of merges 1 and 2: the run for merge 3 sees before=merge 2.
    assert as_identity("production", "verify", "--sha", merges[3], "--before", merges[2]) == 0
    report = verify_report(repo)
    assert [p["pr"] for p in report["pulls"]] == [1, 2, 3] and report["refused"] == []
    versions = report["versions"]
    assert len(versions) == 3 and "sha256 " + sha256_of(repo.root / repo.contract.data.holdout) in report["holdout"]
    tags = {v: production().get(v).tags for v in versions}
    assert [tags[v]["verify.champion_version"] for v in versions] == ["none", versions[0], versions[1]]
    assert [tags[v]["verify.head_sha"] for v in versions] == [heads[1], heads[2], heads[3]]
    assert tags[versions[0]]["audit.approvers"] == "ana"  # the candidate's forged tags were not carried over
    assert tags[versions[0]]["audit.merged_by"] == "lead" and tags[versions[0]]["verify.merge_sha"] == merges[1]
    # Drift checks against the champion need its reference data: it is carried into production.
    for version in versions:
        copied = production().run_artifact(production().get(version).run_id, REFERENCE_ARTIFACT,
                                           repo.root / "reports" / "reference-check" / version)
        assert copied is not None and repo.contract.data.target in copied.read_text().splitlines()[0].split(",")

    digest = "sha256:" + "ab" * 32  # the one image the merge run built: the newest version's
    assert as_identity("production", "promote", "--version", " ".join(versions), "--image-digest", digest) == 0
    assert aliases() == {CHAMPION: versions[2], PREVIOUS: versions[1]}
    assert [production().get(v).tags.get("audit.image_digest") for v in versions] == [None, None, digest]
    assert production().get(versions[1]).tags["audit.retired_by_version"] == versions[2]
    # Run again (a re-run, or the next push with nothing new): nothing is processed twice.
    assert as_identity("production", "verify", "--sha", merges[3]) == 0
    assert verify_report(repo)["pulls"] == []


def test_verification_refuses_stale_blocked_unbound_and_worse_and_moves_nothing(repo, as_identity, capsys):
    fake = as_identity.fake
    before = aliases()
    count = len(production().versions())
    last = git(repo.root, "rev-parse", "main")
    if production().model_tag("gitops-ml.reconciled_sha") != last:  # run alone: the first run of the workflow
        assert as_identity("production", "verify", "--sha", last) == 0
    cases = {}
    # 4: approved, then a push after the approval (the approval is of the older commit).
    first = repo.branch("pr-4", "change 4")
    git(repo.root, "checkout", "-q", "pr-4")
    (repo.root / "pr-4.md").write_text("change 4, pushed after the approval\n")
    git(repo.root, "commit", "-qam", "after approval")
    cases[4] = git(repo.root, "rev-parse", "HEAD")
    git(repo.root, "checkout", "-q", "main")
    repo.candidate(cases[4], 4)
    fake.reviews[4] = [review("ana", "APPROVED", first, 4)]
    # 5: approved, then changes requested.
    cases[5] = repo.branch("pr-5", "change 5")
    repo.candidate(cases[5], 5)
    fake.reviews[5] = [review("ana", "APPROVED", cases[5], 5), review("bo", "CHANGES_REQUESTED", cases[5], 5)]
    # 6: approved, but no candidate was trained from its head (only one claiming the PR number).
    cases[6] = repo.branch("pr-6", "change 6")
    repo.candidate("f" * 40, 6)
    fake.reviews[6] = [review("ana", "APPROVED", cases[6], 6)]
    # 7: approved and bound, but a worse model (shuffled labels): the comparison now rejects it.
    cases[7] = repo.branch("pr-7", "change 7")
    repo.candidate(cases[7], 7, shuffled=True)
    fake.reviews[7] = [review("ana", "APPROVED", cases[7], 7)]
    for number, head in cases.items():
        merge = repo.merge(fake, number, f"pr-{number}", head)

    capsys.readouterr()
    assert as_identity("production", "verify", "--sha", merge) == 1
    err = capsys.readouterr().err
    refused = verify_report(repo)["refused"]
    assert len(refused) == 4, refused
    assert "PR #4" in refused[0] and "approvals of older commits do not count: ana" in refused[0]
    assert "PR #5" in refused[1] and "changes were requested by bo" in refused[1]
    assert "PR #6" in refused[2] and "no candidate version was trained from head" in refused[2]
    assert "PR #7" in refused[3] and "says reject" in refused[3]
    assert "not verified" in err
    assert len(production().versions()) == count and aliases() == before  # nothing moved
    assert production().model_tag("gitops-ml.reconciled_sha") == merge  # and they are not retried forever


def test_in_ci_a_missing_secret_fails_naming_it(repo, as_identity, monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITOPS_ML_IDENTITY", "production")
    for key, value in repo.auth.env("production").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "")
    monkeypatch.setenv("GITHUB_OUTPUT", "/dev/null")
    capsys.readouterr()
    assert main(["verify", "--sha", "a" * 40]) == 2
    err = capsys.readouterr().err
    assert "MLFLOW_TRACKING_PASSWORD" in err and "Environment `production`" in err
    monkeypatch.setenv("GITOPS_ML_IDENTITY", "candidate")
    assert main(["compare"]) == 2
    assert "MLFLOW_CANDIDATE_PASSWORD" in capsys.readouterr().err


def test_a_changed_holdout_is_refused_naming_the_file(repo, as_identity, capsys):
    holdout = repo.root / repo.contract.data.holdout
    saved = holdout.read_bytes()
    try:
        holdout.write_bytes(saved.replace(b"\n", b"\n", 1) + saved.splitlines(keepends=True)[1])
        capsys.readouterr()
        assert as_identity("candidate", "compare") == 2
        err = capsys.readouterr().err
        assert "data/holdout/holdout.csv" in err and "holdout_sha256" in err
        assert as_identity("candidate", "compare", "--data", "data/split/test.csv") == 2
        assert "is not the protected holdout" in capsys.readouterr().err
    finally:
        holdout.write_bytes(saved)

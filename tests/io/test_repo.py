"""The model repository on disk: git facts, DVC hashes, params and metrics, running DVC."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from gitops_ml.io import repo


def git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_git_sha_and_dirty(tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert repo.git_sha(tmp_path) is None and repo.git_dirty(tmp_path) is False
    git("init", "-q", cwd=tmp_path)
    (tmp_path / "f").write_text("1")
    git("add", "f", cwd=tmp_path)
    git("commit", "-qm", "x", cwd=tmp_path)
    sha = repo.git_sha(tmp_path)
    assert len(sha) == 40 and not repo.git_dirty(tmp_path)
    (tmp_path / "f").write_text("2")
    assert repo.git_dirty(tmp_path)
    # In a pull_request workflow GITHUB_SHA is GitHub's merge commit; what was built is the checkout.
    monkeypatch.setenv("GITHUB_SHA", "a" * 40)
    assert repo.git_sha(tmp_path) == sha


def test_git_sha_outside_a_checkout_is_the_workflow_commit(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_SHA", "a" * 40)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # no repository above tmp_path either
    assert repo.git_sha(tmp_path) == "a" * 40
    monkeypatch.delenv("GITHUB_SHA")
    assert repo.git_sha(tmp_path) is None


def test_data_hash_from_dvc_lock_first_then_the_dvc_file(tmp_path):
    (tmp_path / "data.csv.dvc").write_text(yaml.safe_dump({"outs": [{"md5": "fromdvcfile", "path": "data.csv"}]}))
    assert repo.data_hash("data.csv", tmp_path) == "fromdvcfile"
    lock = {"stages": {"split": {"deps": [{"path": "data.csv", "md5": "fromlock"}], "outs": []}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    assert repo.data_hash("data.csv", tmp_path) == "fromlock"
    assert repo.data_hash("other.csv", tmp_path) is None


def test_params_flatten_and_metrics_keep_numbers(tmp_path):
    (tmp_path / "params.yaml").write_text("train:\n  estimator: rf\n  rf: {n: 5, depth: 3}\n")
    assert repo.flat_params(tmp_path / "params.yaml") == {"train.estimator": "rf", "train.rf.n": 5,
                                                          "train.rf.depth": 3}
    assert repo.flat_params(tmp_path / "none.yaml") == {}
    (tmp_path / "metrics.json").write_text('{"auc": 0.8, "n": 3, "note": "x"}')
    assert repo.read_metrics(tmp_path / "metrics.json") == {"auc": 0.8, "n": 3.0}
    with pytest.raises(repo.RepoError, match="evaluate stage"):
        repo.read_metrics(tmp_path / "missing.json")


def test_a_failing_dvc_command_is_a_repo_error(tmp_path):
    with pytest.raises(repo.RepoError, match=r"`dvc status` failed"):
        repo.run_dvc(["status"], cwd=tmp_path)  # not a DVC repository

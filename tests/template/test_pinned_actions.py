"""The generated workflows pin the gitops-ml actions by full commit SHA (local_extensions.PinnedActions)."""

from __future__ import annotations

import subprocess

import pytest
from jinja2.exceptions import TemplateRuntimeError

from local_extensions import actions_sha, gitops_ml_action
from tests.conftest import ROOT

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_the_template_checkout_commit_is_the_pin():
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    answers = {"actions_repo": "acme/gitops-ml", "actions_ref": "v1", "_repo_dir": str(ROOT)}
    assert actions_sha(answers) == head.stdout.strip()
    assert gitops_ml_action(answers, "setup") == f"acme/gitops-ml/actions/setup@{head.stdout.strip()}  # v1"


def test_an_answer_that_is_a_full_sha_is_used_as_is(tmp_path):
    assert actions_sha({"actions_ref": SHA, "_repo_dir": str(tmp_path)}) == SHA


def test_a_template_outside_git_asks_for_a_sha(tmp_path):
    with pytest.raises(TemplateRuntimeError, match="40-character commit SHA"):
        actions_sha({"actions_ref": "v1", "_repo_dir": str(tmp_path)})


def test_under_cruft_the_rendered_commit_is_the_pin(tmp_path):
    """cruft (create, update, diff) sets _commit to the template commit it renders, and no _repo_dir."""
    other = "89abcdef0123456789abcdef0123456789abcdef"
    assert actions_sha({"actions_ref": "v1", "_commit": other}) == other
    assert actions_sha({"actions_ref": SHA, "_commit": other}) == SHA  # an answered SHA still wins


def test_neither_cruft_nor_cookiecutter_context_asks_for_a_newer_cruft_or_a_sha():
    with pytest.raises(TemplateRuntimeError, match="cruft 2.16 or later"):
        actions_sha({"actions_ref": "v1"})

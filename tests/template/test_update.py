"""A repo generated with `cruft create` takes later template changes with `cruft update`, keeping its own edits.

The template is a real git repository made from this working tree; the generated repo is a real git
repo with the DVC state the post-generation hook made. cruft re-renders the template at the old and the
new commit and applies the difference between those renders as a three-way merge.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from local_extensions import cruft_rerender
from tests.conftest import ROOT, VENV_BIN, run

pytestmark = pytest.mark.slow

TEMPLATE_PATHS = ["cookiecutter.json", "local_extensions.py", "hooks", "{{cookiecutter.project}}"]
GIT_USER = ["-c", "user.name=Template Tester", "-c", "user.email=tester@localhost"]
PIN = re.compile(r"/actions/[\w-]+@([0-9a-f]{40})  # ")


def git(cwd: Path, *args: str) -> str:
    return run(["git", *GIT_USER, *args], cwd=cwd).stdout.rstrip("\n")


def cruft(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "cruft"), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture
def template(tmp_path) -> Path:
    """A git repository holding the template as this working tree has it (one commit)."""
    repo = tmp_path / "gitops-ml"
    tracked = run(["git", "ls-files", "-co", "--exclude-standard", "-z", "--", *TEMPLATE_PATHS], cwd=ROOT).stdout
    for name in filter(None, tracked.split("\0")):
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "template v1")
    return repo


@pytest.fixture
def generated(template, tmp_path, monkeypatch) -> Path:
    """`cruft create` from the template, then `.cruft.json` committed, as the docs tell users to do."""
    monkeypatch.setenv("GITOPS_ML_DVC_REMOTE_ROOT", str(tmp_path / "dvc-remotes"))
    monkeypatch.setenv("PATH", f"{VENV_BIN}:{os.environ['PATH']}")  # dvc for the hook
    created = cruft(tmp_path, "create", "--no-input", str(template), "--output-dir", str(tmp_path / "out"))
    assert created.returncode == 0, created.stdout + created.stderr
    project = tmp_path / "out" / "churn-model"
    git(project, "add", ".cruft.json")
    git(project, "commit", "-q", "-m", "Record the template commit (cruft)")
    return project


def template_change(template: Path, path: str, old: str, new: str, everywhere: bool = False) -> str:
    """Change one line (or every `old`) of a template file in a new commit; the commit's SHA."""
    file = template / "{{cookiecutter.project}}" / path
    text = file.read_text()
    assert text.count(old) == 1 or (everywhere and old in text), f"{old!r} is not one line of {path}"
    file.write_text(text.replace(old, new))
    git(template, "commit", "-q", "-am", f"template: {path}")
    return git(template, "rev-parse", "HEAD")


def user_edit(project: Path, path: str, old: str, new: str) -> None:
    file = project / path
    file.write_text(file.read_text().replace(old, new, 1))
    git(project, "commit", "-q", "-am", f"my edit of {path}")


def pins(project: Path) -> set[str]:
    """Every commit the gitops-ml actions and `make setup` are pinned to."""
    found = set()
    for path in project.glob(".github/workflows/*.yml"):
        found |= set(PIN.findall(path.read_text()))
    makefile = (project / "Makefile").read_text()
    found |= set(re.findall(r"^GITOPS_ML_SHA \?= .*,([0-9a-f]{40})\)$", makefile, re.MULTILINE))
    return found


def test_cruft_update_brings_the_template_change_and_keeps_the_users_edit(template, generated):
    first = git(template, "rev-parse", "HEAD")
    assert pins(generated) == {first}
    assert (generated / ".dvc").is_dir() and (generated / "data/raw/customers.csv.dvc").is_file()
    users_data = {p: (generated / p).read_text() for p in ("data/raw/customers.csv", "data/raw/customers.csv.dvc",
                                                           ".dvc/config")}
    user_edit(generated, "Makefile", "PORT ?= 8000", "PORT ?= 9000")
    second = template_change(template, "Makefile", "lint:  ## ruff\n", "lint:  ## ruff over the model code\n")
    template_change(template, "data/raw/customers-classification.csv", "month-to-month", "monthly", everywhere=True)
    third = git(template, "rev-parse", "HEAD")
    assert second != third

    updated = cruft(generated, "update", "-y")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "has been updated" in updated.stdout

    makefile = (generated / "Makefile").read_text()
    assert "lint:  ## ruff over the model code" in makefile  # the template's change arrived
    assert "PORT ?= 9000" in makefile  # the user's edit survived
    assert pins(generated) == {third}  # every gitops-ml pin moved to the new template commit
    # the data is the user's (a new template sample never replaces it), and so is the DVC state
    assert {p: (generated / p).read_text() for p in users_data} == users_data
    status = git(generated, "status", "--porcelain")
    assert not [line for line in status.splitlines() if line[:2] in ("UU", "AA", "??")], status
    assert not list(generated.rglob("*.rej"))
    assert json.loads((generated / ".cruft.json").read_text())["commit"] == third

    git(generated, "commit", "-q", "-am", "Update from the template (cruft update)")
    checked = cruft(generated, "check")
    assert checked.returncode == 0 and "up to date" in checked.stdout, checked.stdout + checked.stderr
    assert git(generated, "status", "--porcelain") == ""
    # What now sets the repo apart from the template at its new commit: the user's edit, nothing else.
    diff = cruft(generated, "diff", "--exit-code")
    assert diff.returncode == 1 and diff.stdout.count("diff --git") == 1, diff.stdout + diff.stderr
    assert "-PORT ?= 9000\n+PORT ?= 8000" in diff.stdout


def test_a_conflicting_edit_is_left_as_a_merge_conflict_to_resolve(template, generated):
    user_edit(generated, "Makefile", "PORT ?= 8000", "PORT ?= 9000")
    template_change(template, "Makefile", "PORT ?= 8000", "PORT ?= 8080")

    updated = cruft(generated, "update", "-y")
    assert updated.returncode == 0, updated.stdout + updated.stderr

    makefile = (generated / "Makefile").read_text()
    assert "<<<<<<< ours\nPORT ?= 9000\n=======\nPORT ?= 8080\n>>>>>>> theirs" in makefile
    assert "UU Makefile" in git(generated, "status", "--porcelain")
    assert pins(generated) == {git(template, "rev-parse", "HEAD")}  # the rest applied


def test_the_renders_hold_only_template_files_even_without_the_skip_list(template, generated):
    """The post-generation hook leaves git and DVC out of cruft's re-renders (the skip list is the second guard)."""
    pyproject = generated / "pyproject.toml"
    text = pyproject.read_text()
    start = text.index("[tool.cruft]")
    pyproject.write_text(text[:start] + text[text.index("[tool.setuptools", start):])
    git(generated, "commit", "-q", "-am", "no skip list")
    template_change(template, "Makefile", "lint:  ## ruff\n", "lint:  ## ruff over the model code\n")

    updated = cruft(generated, "update", "-y")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "ChangesetUnicodeError" not in updated.stdout + updated.stderr
    assert "lint:  ## ruff over the model code" in (generated / "Makefile").read_text()
    changed = set(git(generated, "diff", "HEAD", "--name-only").splitlines())
    # The template change, and the files whose gitops-ml pins moved (workflows; the contract's $schema URL).
    assert changed == {".cruft.json", "Makefile", ".github/workflows/merge.yml", ".github/workflows/pull-request.yml",
                       ".github/workflows/drift.yml", "gitops-ml.yaml"}


def test_hooks_see_crufts_throwaway_renders(tmp_path):
    """cruft update renders beside <tmp>/current_template or new_template, cruft diff beside remote and local."""
    for siblings, expected in ((["current_template"], True), (["current_template", "new_template"], True),
                               (["remote", "local"], True), (["remote"], False), ([], False)):
        base = tmp_path / "-".join(siblings or ["none"])
        (base / "repo").mkdir(parents=True)
        for name in siblings:
            (base / name).mkdir()
        assert cruft_rerender(base / "repo") is expected, siblings
    (tmp_path / "elsewhere" / "gitops-ml").mkdir(parents=True)
    (tmp_path / "elsewhere" / "current_template").mkdir()
    assert cruft_rerender(tmp_path / "elsewhere" / "gitops-ml") is False

"""`make dvc-init` after a bake without dvc (as `uvx cookiecutter` bakes): the data is git-tracked then.

Defect 5: it used to fail with "already tracked by SCM", leave a half-made .dvc/ and fail again on a
rerun. Now it untracks the file from git before `dvc add`, is safe to rerun, and undoes itself on failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, VENV_BIN, run

DATA = "data/raw/customers.csv"


def bake_without_dvc(tmp_path: Path) -> Path:
    """Bake in a subprocess whose post-gen hook finds no dvc: not on PATH, and `import dvc` fails."""
    blocker = tmp_path / "no-dvc"
    blocker.mkdir()
    (blocker / "dvc.py").write_text("raise ImportError('dvc is not installed here')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker), "PATH": "/usr/bin:/bin",
           "GITOPS_ML_DVC_REMOTE_ROOT": str(tmp_path / "remotes")}
    script = ("import sys; from cookiecutter.main import cookiecutter; "
              f"print(cookiecutter({str(ROOT)!r}, no_input=True, output_dir=sys.argv[1]))")
    result = run([sys.executable, "-c", script, str(tmp_path / "out")], cwd=tmp_path, env=env)
    assert "make dvc-init" in result.stdout  # the hook says what to run later
    return Path(result.stdout.strip().splitlines()[-1])


def make(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
           "GITOPS_ML_DVC_REMOTE_ROOT": str(project.parent.parent / "remotes")}
    if check:
        return run(["make", "dvc-init", *args], cwd=project, env=env)
    return subprocess.run(["make", "dvc-init", *args], cwd=project, env=env, capture_output=True, text=True)


def git(project: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=True).stdout


def test_dvc_init_after_a_bake_without_dvc_tracks_the_data_and_is_safe_to_rerun(tmp_path):
    project = bake_without_dvc(tmp_path)
    assert not (project / ".dvc").exists() and DATA in git(project, "ls-files")

    failed = make(project, "DATA=data/raw/absent.csv", check=False)
    assert failed.returncode != 0 and "nothing was left half-made" in failed.stderr
    assert not (project / ".dvc").exists() and git(project, "status", "--porcelain") == ""

    make(project)
    tracked = yaml.safe_load((project / f"{DATA}.dvc").read_text())["outs"][0]
    assert tracked["path"] == "customers.csv" and (project / ".dvc/config").is_file()
    staged = git(project, "diff", "--cached", "--name-status")
    assert f"D\t{DATA}" in staged and f"A\t{DATA}.dvc" in staged and "A\t.dvc/config" in staged
    remote = tmp_path / "remotes" / project.name
    assert any(remote.rglob(tracked["md5"][2:]))  # pushed to the local remote

    again = make(project)  # a rerun changes nothing
    assert "DVC tracks" in again.stdout and git(project, "diff", "--cached", "--name-status") == staged
    git(project, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "Track the data with DVC")
    status = run([str(VENV_BIN / "dvc"), "status", f"{DATA}.dvc"], cwd=project)  # the pipeline is yet to run
    assert "up to date" in status.stdout
    assert DATA not in git(project, "ls-files").split() and git(project, "status", "--porcelain") == ""


@pytest.mark.parametrize("leftover", ["empty .dvc folder", "dvc init only"])
def test_dvc_init_recovers_a_half_made_dvc_folder_from_older_versions(tmp_path, leftover):
    project = bake_without_dvc(tmp_path)
    if leftover == "empty .dvc folder":
        (project / ".dvc").mkdir()
    else:
        run([str(VENV_BIN / "dvc"), "init", "-q"], cwd=project)
    make(project)
    assert (project / f"{DATA}.dvc").is_file()
    assert f"D\t{DATA}" in git(project, "diff", "--cached", "--name-status")

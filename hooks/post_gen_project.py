"""Finish the generated repository: pick the sample data, git init, dvc init, local DVC remote, commit.

Small functions, each doing one step, so tests can call them. A missing tool (dvc) is reported
with the command to run later; it never leaves a half-made repository behind silently.
"""

import csv
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

# Answers arrive through tojson (and were validated by the pre-generation hook).
TASK = {{ cookiecutter.task | tojson }}
DEPLOY_TARGET = {{ cookiecutter.deploy_target | tojson }}
PROJECT = {{ cookiecutter.project | tojson }}
AUTHOR = {{ cookiecutter.author | tojson }}
CRUFT_RERENDER = {{ cruft_rerender() }}  # True or False: local_extensions.cruft_rerender, as this file renders
DATA = Path("data/raw")
HOLDOUT = Path("data/holdout/holdout.csv")
HOLDOUT_EVERY = 5  # one row in five of the sample becomes the protected holdout
PIN = "HOLDOUT_SHA256_PINNED_BY_THE_HOOK"  # gitops-ml.yaml's placeholder for the holdout's hash


def select_sample_data(root: Path, task: str) -> Path:
    """Keep the sample CSV for this task as data/raw/customers.csv; drop the other task's."""
    keep = root / DATA / "customers.csv"
    (root / DATA / f"customers-{task}.csv").rename(keep)
    for other in (root / DATA).glob("customers-*.csv"):
        other.unlink()
    return keep


def carve_holdout(root: Path, data: Path, every: int = HOLDOUT_EVERY) -> str:
    """Move every `every`-th row of the sample into the protected holdout and pin its sha256 in the contract.

    Deterministic (the same sample gives the same holdout and hash, so cruft's re-renders match);
    the rows leave the training data, so the holdout is never trained on.
    """
    with data.open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    holdout = root / HOLDOUT
    holdout.parent.mkdir(parents=True, exist_ok=True)
    for path, keep in ((holdout, lambda i: i % every == 0), (data, lambda i: i % every != 0)):
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(row for i, row in enumerate(rows) if keep(i))
    digest = hashlib.sha256(holdout.read_bytes()).hexdigest()
    contract = root / "gitops-ml.yaml"
    contract.write_text(contract.read_text(encoding="utf-8").replace(PIN, digest), encoding="utf-8")
    return digest


def drop_unused_deploy_files(root: Path, target: str) -> None:
    """Keep only the deploy target's folder: deploy/docker (the proxy) or deploy/kubernetes."""
    for other in ("docker", "kubernetes"):
        if other != target:
            shutil.rmtree(root / "deploy" / other, ignore_errors=True)
    if (root / "deploy").is_dir() and not any((root / "deploy").iterdir()):
        (root / "deploy").rmdir()


def dvc_command() -> list:
    """dvc from PATH, or from this interpreter; [] when neither has it."""
    if shutil.which("dvc"):
        return ["dvc"]
    try:
        import dvc  # noqa: F401

        return [sys.executable, "-m", "dvc"]
    except ImportError:
        return []


def default_remote(project: str) -> Path:
    base = os.environ.get("GITOPS_ML_DVC_REMOTE_ROOT") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gitops-ml", "dvc-remote"
    )
    return Path(base) / project


def run(args: list, root: Path) -> None:
    subprocess.run(args, cwd=root, check=True, stdout=subprocess.DEVNULL)


def git_init(root: Path) -> None:
    run(["git", "init", "-q", "-b", "main"], root)


def dvc_init(root: Path, dvc: list, remote: Path) -> None:
    """dvc init, a local remote (in .dvc/config.local: machine-specific, not committed), track the data."""
    run([*dvc, "init", "-q"], root)
    remote.mkdir(parents=True, exist_ok=True)
    run([*dvc, "remote", "add", "--local", "-d", "-f", "local", str(remote)], root)
    run([*dvc, "add", "-q", str(DATA / "customers.csv"), str(HOLDOUT)], root)
    run([*dvc, "push", "-q"], root)


def first_commit(root: Path, author: str) -> None:
    identity = []
    for key, fallback in (("user.name", author or "gitops-ml"), ("user.email", "gitops-ml@localhost")):
        if subprocess.run(["git", "config", key], cwd=root, capture_output=True).returncode != 0:
            identity += ["-c", f"{key}={fallback}"]
    run(["git", "add", "-A"], root)
    run(["git", *identity, "commit", "-q", "-m", "Initial commit from the gitops-ml template"], root)


def only_template_files() -> bool:
    """True in the throwaway renders of `cruft update` and `cruft diff`, which diff two renders (or a render
    and the project) and apply that diff to the user's repo: there the render must hold exactly the
    template's files. A .git folder or DVC state would enter that diff (binary, machine-specific, and the
    user's repo has its own), so git and DVC initialisation are left out; the file choices above stay, so
    both renders match what the user's repo was made of. (pyproject.toml's [tool.cruft] skip keeps the
    same paths out of updates should cruft ever render elsewhere.)"""
    return CRUFT_RERENDER


def main() -> int:
    root = Path.cwd()
    carve_holdout(root, select_sample_data(root, TASK))
    drop_unused_deploy_files(root, DEPLOY_TARGET)
    if only_template_files():
        return 0
    if not shutil.which("git"):
        print("WARNING: git not found: run `git init` and `dvc init` yourself (see README).", file=sys.stderr)
        return 0
    git_init(root)
    dvc = dvc_command()
    if dvc:
        dvc_init(root, dvc, default_remote(PROJECT))
    else:
        print("NOTE: dvc not found; after `make setup`, run `make dvc-init` to track the data with DVC.")
    first_commit(root, AUTHOR)
    return 0


if __name__ == "__main__":
    sys.exit(main())

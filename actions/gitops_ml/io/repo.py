"""The model repository on disk: git revision, DVC data hashes, params, metrics, running DVC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from gitops_ml.errors import GitopsMLError


class RepoError(GitopsMLError):
    """A git or DVC step failed; the message says which command and why."""


def _git(*args: str, cwd: Path) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RepoError(f"git {' '.join(args)} failed in {cwd}: {result.stderr.strip()}")
    return result.stdout.strip()


def git_sha(cwd: Path = Path(".")) -> str | None:
    """The commit being built: the checkout's HEAD, else GITHUB_SHA; None outside a git repository.

    HEAD first: in a `pull_request` workflow GITHUB_SHA is GitHub's test merge commit, while the
    train job checks out (and so builds, and is bound to) the pull request's head."""
    try:
        return _git("rev-parse", "HEAD", cwd=cwd)
    except (RepoError, FileNotFoundError):
        return os.environ.get("GITHUB_SHA") or None


def origin_url(cwd: Path = Path(".")) -> str | None:
    """Where the source lives: the Actions repository URL, else git's `origin` (credentials and all:
    pass it through `core.image.public_url` before publishing it)."""
    server, repository = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_REPOSITORY")
    if server and repository:
        return f"{server}/{repository}"
    try:
        return _git("config", "--get", "remote.origin.url", cwd=cwd) or None
    except (RepoError, FileNotFoundError):
        return None


def git_dirty(cwd: Path = Path(".")) -> bool:
    try:
        return bool(_git("status", "--porcelain", "--untracked-files=no", cwd=cwd))
    except (RepoError, FileNotFoundError):
        return False


def data_hash(path: str, cwd: Path = Path(".")) -> str | None:
    """The DVC md5 of `path`, from dvc.lock (a stage that depends on it) or from its .dvc file."""
    lock = cwd / "dvc.lock"
    if lock.is_file():
        stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
        for stage in stages.values():
            for entry in [*stage.get("deps", []), *stage.get("outs", [])]:
                if entry.get("path") == path and entry.get("md5"):
                    return entry["md5"]
    dvc_file = cwd / f"{path}.dvc"
    if dvc_file.is_file():
        outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs", [])
        if outs and outs[0].get("md5"):
            return outs[0]["md5"]
    return None


def sha256_of(path: Path) -> str | None:
    """The file's sha256 (hex), or None when it does not exist."""
    import hashlib

    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def flat_params(path: Path) -> dict[str, object]:
    """params.yaml flattened to dotted keys, as MLflow params."""
    if not path.is_file():
        return {}

    def walk(prefix: str, value: object, out: dict[str, object]) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner, out)
        else:
            out[prefix] = value

    flat: dict[str, object] = {}
    walk("", yaml.safe_load(path.read_text()) or {}, flat)
    return flat


def read_metrics(path: Path) -> dict[str, float]:
    if not path.is_file():
        raise RepoError(f"{path} not found: the pipeline's evaluate stage writes it (run `dvc repro`)")
    return {k: float(v) for k, v in json.loads(path.read_text()).items() if isinstance(v, int | float)}


def run_dvc(args: list[str], cwd: Path = Path(".")) -> None:
    """Run DVC with this interpreter's environment first on PATH, streaming its output."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    command = [sys.executable, "-m", "dvc", *args]
    print(f"$ dvc {' '.join(args)}", flush=True)
    result = subprocess.run(command, cwd=cwd, env=env)
    if result.returncode != 0:
        raise RepoError(f"`dvc {' '.join(args)}` failed (exit {result.returncode}); its output is above")

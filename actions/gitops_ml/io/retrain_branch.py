"""The retraining branch: new labelled rows added to the training data through DVC, committed and pushed.

Works in a temporary git worktree, so the checkout it runs in is never touched. The training data
of the base branch (fetched from the DVC remote, or the local cache) plus the labelled rows it does
not already hold becomes the new training data: the same base and the same labelled data always give
the same file, the same DVC hash and so no commit. `dvc push` puts the data on the DVC remote before
the pointer is pushed, so the PR's checks can `dvc pull` it.

The branch is rebuilt from the base when only the bot has committed to it (pushed with a lease on
what was there); when a person added commits, the bot's commit goes on top and nothing is forced.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from gitops_ml.errors import GitopsMLError

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"


class BranchError(GitopsMLError):
    """A git or DVC step of the retraining branch failed; the message names the command."""


@dataclass(frozen=True)
class Pushed:
    changed: bool  # a commit was made and pushed
    sha: str  # the branch head after the run
    kept_commits: int  # commits by people the branch kept (built on top of them)
    new_rows: int  # labelled rows that were not in the training data yet
    data_md5: str | None


class Git:
    def __init__(self, cwd: Path, token: str | None = None):
        self.cwd, self._token = cwd, token

    def env(self, remote_url: str | None = None) -> dict:
        """The environment of a git call: the token as an HTTP header for the GitHub host only, given through
        GIT_CONFIG_* (never on a command line, never in .git/config)."""
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        if self._token and remote_url and urlparse(remote_url).netloc == urlparse(server).netloc \
                and urlparse(remote_url).scheme == "https":
            basic = base64.b64encode(f"x-access-token:{self._token}".encode()).decode()
            env.update({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"http.{server.rstrip('/')}/.extraheader",
                        "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}"})
        return env

    def __call__(self, *args: str, remote_url: str | None = None, check: bool = True) -> str:
        done = subprocess.run(["git", *args], cwd=self.cwd, capture_output=True, text=True,
                              env=self.env(remote_url))
        if check and done.returncode != 0:
            said = done.stderr.strip().replace(self._token or "\0", "***")
            raise BranchError(f"git {' '.join(args[:3])} failed in {self.cwd}: {said}")
        return done.stdout.strip()


def _dvc(args: list[str], cwd: Path) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BranchError(f"`dvc {' '.join(args)}` failed in {cwd}: {(done.stderr or done.stdout).strip()[-1500:]}")


def merge_rows(train: Path, labeled: Path, out: Path) -> int:
    """`train` plus the rows of `labeled` it does not hold yet (aligned to train's columns, as text); the count
    of rows added. The existing rows are kept byte for byte as pandas writes text back."""
    import pandas as pd

    base = pd.read_csv(train, dtype=str, keep_default_na=False)
    new = pd.read_csv(labeled, dtype=str, keep_default_na=False)
    new = new.reindex(columns=base.columns, fill_value="")
    seen = set(map(tuple, base.itertuples(index=False, name=None)))
    fresh = new[[tuple(row) not in seen for row in new.itertuples(index=False, name=None)]].drop_duplicates()
    if len(fresh):
        pd.concat([base, fresh], ignore_index=True).to_csv(out, index=False)
    elif train != out:
        shutil.copyfile(train, out)
    return len(fresh)


def update_branch(root: Path, *, remote: str, base: str, branch: str, data_path: str, labeled: Path,
                  message: str, token: str | None = None, bot_email: str = BOT_EMAIL,
                  bot_name: str = BOT_NAME) -> Pushed:
    """Bring `branch` on `remote` to: the base's training data + the labelled rows, committed by the bot."""
    git = Git(root, token)
    url = git("remote", "get-url", remote)
    git("fetch", "--quiet", remote, f"+refs/heads/{base}:refs/remotes/{remote}/{base}", remote_url=url)
    remote_head = git("ls-remote", "--heads", remote, f"refs/heads/{branch}", remote_url=url).split()
    remote_sha = remote_head[0] if remote_head else None
    people = 0
    if remote_sha:
        git("fetch", "--quiet", remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}", remote_url=url)
        authors = git("log", "--format=%ae", f"{remote}/{base}..{remote}/{branch}").split()
        people = sum(1 for a in authors if a != bot_email)
    with tempfile.TemporaryDirectory(prefix="gitops-ml-retrain-") as tmp:
        work = Path(tmp) / "work"
        git("worktree", "add", "--quiet", "--detach", str(work), f"{remote}/{base}")
        try:
            return _in_worktree(root, work, git, url, remote=remote, base=base, branch=branch, data_path=data_path,
                                labeled=labeled, message=message, remote_sha=remote_sha, people=people,
                                bot=(bot_name, bot_email))
        finally:
            git("worktree", "remove", "--force", str(work), check=False)


def _in_worktree(root: Path, work: Path, git: Git, url: str, *, remote: str, base: str, branch: str, data_path: str,
                 labeled: Path, message: str, remote_sha: str | None, people: int, bot: tuple[str, str]) -> Pushed:
    wgit = Git(work, git._token)
    for name in ("config.local",):  # the machine's DVC remote and credentials stay out of git
        if (root / ".dvc" / name).is_file():
            shutil.copyfile(root / ".dvc" / name, work / ".dvc" / name)
    if (root / ".dvc" / "cache").is_dir():
        _dvc(["cache", "dir", "--local", str((root / ".dvc" / "cache").resolve())], work)
    _dvc(["pull", "--quiet", data_path], work)  # the base's training data
    data = work / data_path
    merged = Path(str(data) + ".new")
    new_rows = merge_rows(data, labeled, merged)
    if people:  # a person's commits are on the branch: continue from it, never force
        wgit("checkout", "--quiet", "--detach", f"{remote}/{branch}")
    os.replace(merged, data)
    _dvc(["add", "--quiet", data_path], work)
    pointer = f"{data_path}.dvc"
    wgit("add", pointer, *[p for p in (str(Path(data_path).parent / ".gitignore"),) if (work / p).is_file()])
    md5 = _md5_of(work / pointer)
    if remote_sha and wgit("write-tree") == wgit("rev-parse", f"{remote_sha}^{{tree}}"):
        return Pushed(False, remote_sha, people, new_rows, md5)  # the same data on the same base: nothing to do
    _dvc(["push", "--quiet", data_path], work)  # data first: the pointer must never name missing data
    wgit("-c", f"user.name={bot[0]}", "-c", f"user.email={bot[1]}", "commit", "--quiet", "--allow-empty",
         "-m", message)
    sha = wgit("rev-parse", "HEAD")
    push = ["push", "--quiet", remote, f"HEAD:refs/heads/{branch}"]
    if remote_sha and not people:
        push.insert(1, f"--force-with-lease=refs/heads/{branch}:{remote_sha}")  # only the bot's own commits
    wgit(*push, remote_url=url)
    return Pushed(True, sha, people, new_rows, md5)


def _md5_of(pointer: Path) -> str | None:
    import yaml

    outs = (yaml.safe_load(pointer.read_text()) or {}).get("outs") or []
    return outs[0].get("md5") if outs else None

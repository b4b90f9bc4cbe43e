"""Release gitops-ml: the changelog entry, the tags, the GitHub release. Standard library only.

    python3 scripts/release.py prepare 1.2.0     # a maintainer, on a branch: Unreleased -> v1.2.0 in CHANGELOG.md
    python3 scripts/release.py publish v1.2.0    # the release workflow, on the pushed tag v1.2.0

`prepare` moves the changelog's "Unreleased" section under the new version, so the tagged commit
carries its own entry. `publish` checks the tag (vX.Y.Z, on main, with that changelog entry), moves the
major tag (v1) to the release commit when it is the newest release of that major version, and creates
(or updates) the GitHub release with notes that say what a generated repository must do to update.
The docs are docs/releasing.md. Every refusal is one line naming what is wrong and what to do, exit 2.

Environment for `publish`: GITHUB_REPOSITORY (owner/name), GITHUB_TOKEN (contents: write),
GITHUB_API_URL and GITHUB_SERVER_URL (GitHub's, or an Enterprise server's), GITHUB_STEP_SUMMARY (optional).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

CHANGELOG = "CHANGELOG.md"
MAIN = "main"
TEMPLATE_WORKFLOWS = "{{cookiecutter.project}}/.github/workflows"
TAG = re.compile(r"v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")  # whole string: fullmatch
HEADING = re.compile(r"^## +(Unreleased|v\S+)(?: +- +\S+)? *$", re.MULTILINE)
UPDATE_STEPS = "### Updating generated repos"  # the changelog subsection the notes lift into "How to update"
SECRET = re.compile(r"\bsecrets\.([A-Za-z_][A-Za-z0-9_]*)")
VARIABLE = re.compile(r"\bvars\.([A-Za-z_][A-Za-z0-9_]*)")


class ReleaseError(Exception):
    """A refusal a maintainer can act on."""


class Version(NamedTuple):
    major: int
    minor: int
    patch: int

    @property
    def tag(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"

    @property
    def major_tag(self) -> str:
        return f"v{self.major}"


def parse_tag(text: str) -> Version:
    """`v1.2.0` (or `1.2.0`) as a Version; anything else is refused."""
    tag = text if text.startswith("v") else f"v{text}"
    found = TAG.fullmatch(tag)
    if not found:
        raise ReleaseError(f"{text!r} is not a release version: use vMAJOR.MINOR.PATCH, e.g. v1.2.0 (no leading zeros, "
                           "no suffix)")
    return Version(*map(int, found.groups()))


def release_versions(tags: list[str]) -> list[Version]:
    """The release versions among `tags` (others, such as v1, ignored), oldest first."""
    return sorted(parse_tag(tag) for tag in tags if TAG.fullmatch(tag))


# -- the changelog (pure) -------------------------------------------------------------------------

def sections(text: str) -> list[tuple[str, int, int]]:
    """Each `## ` section as (name, start of its body, end of its body)."""
    found = list(HEADING.finditer(text))
    return [(match.group(1), match.end(), found[i + 1].start() if i + 1 < len(found) else len(text))
            for i, match in enumerate(found)]


def cut_release(text: str, version: Version, date: str) -> str:
    """CHANGELOG.md with the Unreleased section's entries moved under `## vX.Y.Z - date`, Unreleased left empty."""
    found = sections(text)
    names = [name for name, _, _ in found]
    if "Unreleased" not in names:
        raise ReleaseError(f"{CHANGELOG} has no '## Unreleased' section: add one above the newest release, with the "
                           "changes of this release under it")
    if version.tag in names:
        raise ReleaseError(f"{CHANGELOG} already has a {version.tag} section: choose the next version")
    released = release_versions([name for name in names if name != "Unreleased"])
    if released and version <= released[-1]:
        raise ReleaseError(f"{version.tag} is not newer than {released[-1].tag}, the newest release in {CHANGELOG}")
    _, start, end = found[names.index("Unreleased")]
    entries = text[start:end].strip()
    if not entries:
        raise ReleaseError(f"the Unreleased section of {CHANGELOG} is empty: list what this release changes first")
    return f"{text[:start]}\n\n## {version.tag} - {date}\n\n{entries}\n\n{text[end:].lstrip()}".rstrip() + "\n"


def release_entry(text: str, version: Version) -> str:
    """The changelog entries of `version` (refused when the tagged changelog has none)."""
    for name, start, end in sections(text):
        if name == version.tag and text[start:end].strip():
            return text[start:end].strip()
    raise ReleaseError(f"the {CHANGELOG} of the tagged commit has no entries under '## {version.tag}': run "
                       f"`python3 scripts/release.py prepare {version.tag}` on a branch, merge it, and tag that commit")


def split_update_steps(entry: str) -> tuple[str, str]:
    """(the '### Updating generated repos' subsection's text, the rest of the entry)."""
    parts = re.split(r"^(?=### )", entry, flags=re.MULTILINE)
    steps = [p for p in parts if p.strip().lower().startswith(UPDATE_STEPS.lower())]
    rest = "".join(p for p in parts if p not in steps).strip()
    return "\n".join(s.strip()[len(UPDATE_STEPS):].strip() for s in steps).strip(), rest


# -- what a generated repo must set (pure) ----------------------------------------------------------

def names_used(workflows: list[str]) -> tuple[set[str], set[str]]:
    """The secrets and the variables the workflows read (GITHUB_TOKEN is GitHub's own)."""
    secrets = {name for text in workflows for name in SECRET.findall(text)} - {"GITHUB_TOKEN"}
    variables = {name for text in workflows for name in VARIABLE.findall(text)}
    return secrets, variables


@dataclass(frozen=True)
class NewSettings:
    secrets: tuple[str, ...] = ()
    variables: tuple[str, ...] = ()


def new_settings(before: list[str], after: list[str]) -> NewSettings:
    old_secrets, old_variables = names_used(before)
    secrets, variables = names_used(after)
    return NewSettings(tuple(sorted(secrets - old_secrets)), tuple(sorted(variables - old_variables)))


# -- the notes (pure) -------------------------------------------------------------------------------

def release_notes(version: Version, sha: str, entry: str, previous: Version | None, settings: NewSettings,
                  compare_url: str | None) -> str:
    steps, changes = split_update_steps(entry)
    todo = [line for line in steps.splitlines() if line.strip()]
    todo += [f"- New secret read by the workflows: `{name}` (Settings → Secrets and variables → Actions, or the "
             "secrets of the GitHub Environment the job uses)." for name in settings.secrets]
    todo += [f"- New variable read by the workflows: `{name}` (Settings → Secrets and variables → Actions → "
             "Variables)." for name in settings.variables]
    lines = [
        "## How to update a generated repository",
        "",
        "In the generated repository, with a clean working tree (`.cruft.json` committed):",
        "",
        "```bash",
        f"cruft update --checkout {version.tag} -y   "
        f"# --checkout {version.major_tag}: the newest {version.major_tag}.x",
        "git status   # conflicts: files with <<<<<<< markers (or *.rej files): resolve, then git add",
        f'git add -A && git commit -m "Update from gitops-ml {version.tag}"',
        "```",
        "",
        f"This moves every gitops-ml pin (the workflows' `uses:` and `make setup`) to `{sha}`, the commit of "
        f"{version.tag}. A Dependabot pull request that bumps the gitops-ml actions to that commit moves the pins "
        "alone; `cruft update` brings the rest of the release.",
        "",
    ]
    if previous is not None and version.major > previous.major:
        lines += [f"**A new major version.** `--checkout {version.major_tag}` follows it from now on; "
                  f"`{previous.major_tag}` stays on the last {previous.major_tag}.x release. Read the changes below "
                  "before updating.", ""]
    lines += ["Also to do in the generated repository:", "", *todo, ""] if todo else [
        "Nothing else to do: no new secrets, variables or settings.", ""]
    lines += ["## What changed", "", changes or "(no other changes listed)", ""]
    if compare_url:
        lines += [f"**Full diff**: {compare_url}", ""]
    return "\n".join(lines)


def moves_major_tag(version: Version, tags: list[str]) -> bool:
    """Whether vMAJOR should point at this release: it is the newest release of its major version."""
    same_major = [v for v in release_versions(tags) if v.major == version.major]
    return not same_major or version >= same_major[-1]


def is_latest(version: Version, tags: list[str]) -> bool:
    released = release_versions(tags)
    return not released or version >= released[-1]


# -- git (I/O) --------------------------------------------------------------------------------------

class Git:
    """git in one checkout; `auth_env` carries the token for fetch and push (never on a command line, never printed)."""

    def __init__(self, repo: Path, auth_env: dict[str, str] | None = None):
        self.repo, self.auth_env = repo, auth_env or {}

    def __call__(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(["git", "-C", str(self.repo), *args], capture_output=True, text=True,
                              env={**os.environ, **(env or {})})
        if check and done.returncode != 0:
            raise ReleaseError(f"git {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout.strip()

    def commit_of(self, ref: str) -> str | None:
        found = self("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        return found or None

    def tags(self) -> list[str]:
        return self("tag", "--list").splitlines()

    def show(self, commit: str, path: str) -> str | None:
        done = subprocess.run(["git", "-C", str(self.repo), "show", f"{commit}:{path}"], capture_output=True, text=True)
        return done.stdout if done.returncode == 0 else None

    def workflows(self, commit: str) -> list[str]:
        names = self("ls-tree", "-r", "--name-only", commit, "--", TEMPLATE_WORKFLOWS).splitlines()
        return [self.show(commit, name) or "" for name in names if name.endswith((".yml", ".yaml"))]

    def push_tag(self, remote: str, tag: str, commit: str) -> None:
        """Point `tag` at `commit` locally and on `remote` (forced: a major tag moves)."""
        self("tag", "--force", tag, commit)
        self("push", "--force", remote, f"refs/tags/{tag}:refs/tags/{tag}", env=self.auth_env)

    def fetch_branch(self, remote: str, branch: str) -> str:
        """The remote's branch as it is now (refs/remotes/<remote>/<branch>)."""
        self("fetch", "--quiet", remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}", env=self.auth_env)
        return f"refs/remotes/{remote}/{branch}"

    def is_ancestor(self, commit: str, ref: str) -> bool:
        return subprocess.run(["git", "-C", str(self.repo), "merge-base", "--is-ancestor", commit, ref]).returncode == 0


def token_env(server_url: str, token: str) -> dict[str, str]:
    """git configuration, through the environment, that authenticates fetches and pushes to `server_url` with `token`
    (the checkout keeps no credentials: persist-credentials: false)."""
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"http.{server_url.rstrip('/')}/.extraheader",
            "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}", "GIT_TERMINAL_PROMPT": "0"}


# -- GitHub (I/O) -----------------------------------------------------------------------------------

class GitHub:
    """The two release endpoints, over urllib (the workflow runs this script without installing anything)."""

    def __init__(self, api_url: str, repository: str, token: str):
        self.base = f"{api_url.rstrip('/')}/repos/{repository}"
        self.token = token

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json",
            "User-Agent": "gitops-ml-release"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            try:
                detail = json.loads(error.read() or b"{}")
            except ValueError:
                detail = {}
            return error.code, detail
        except (urllib.error.URLError, TimeoutError) as error:
            raise ReleaseError(f"cannot reach the GitHub API at {self.base}: {error}") from None

    def publish(self, tag: str, name: str, notes: str, latest: bool) -> dict:
        """Create the release of `tag`, or update it when it exists (a re-run of the workflow)."""
        release = {"tag_name": tag, "name": name, "body": notes, "draft": False, "prerelease": False,
                   "make_latest": "true" if latest else "false"}
        status, found = self.request("GET", f"/releases/tags/{tag}")
        if status == 200:
            status, answer = self.request("PATCH", f"/releases/{found['id']}", release)
        elif status == 404:
            status, answer = self.request("POST", "/releases", release)
        else:
            answer = found
        if status not in (200, 201):
            raise ReleaseError(f"GitHub refused the release of {tag} (HTTP {status}: {answer.get('message', '')}): "
                               "the job needs `permissions: contents: write` and GITHUB_TOKEN")
        return answer


# -- the two verbs ----------------------------------------------------------------------------------

def prepare(changelog: Path, version: Version, today: datetime.date) -> None:
    changelog.write_text(cut_release(changelog.read_text(encoding="utf-8"), version, today.isoformat()),
                         encoding="utf-8")


@dataclass(frozen=True)
class Published:
    version: Version
    sha: str
    notes: str
    major_moved: bool
    release: dict


def publish(tag: str, git: Git, github: GitHub, remote: str = "origin", server_url: str = "https://github.com",
            repository: str = "") -> Published:
    version = parse_tag(tag)
    sha = git.commit_of(f"refs/tags/{version.tag}")
    if sha is None:
        raise ReleaseError(f"there is no tag {version.tag} in this checkout: push the tag first "
                           f"(git tag {version.tag} && git push origin {version.tag})")
    if not git.is_ancestor(sha, git.fetch_branch(remote, MAIN)):
        raise ReleaseError(f"{version.tag} points at {sha}, which is not on {MAIN}: release only reviewed commits; "
                           f"delete the tag (git push --delete origin {version.tag}) and tag a commit of {MAIN}")
    entry = release_entry(git.show(sha, CHANGELOG) or "", version)
    others = [t for t in git.tags() if t != version.tag]
    earlier = [v for v in release_versions(others) if v < version]
    previous = earlier[-1] if earlier else None
    settings = new_settings(git.workflows(previous.tag) if previous else [], git.workflows(sha))
    compare = f"{server_url.rstrip('/')}/{repository}/compare/{previous.tag}...{version.tag}" if previous else None
    notes = release_notes(version, sha, entry, previous, settings, compare)

    major_moved = moves_major_tag(version, others)
    if major_moved:
        git.push_tag(remote, version.major_tag, sha)
    release = github.publish(version.tag, f"gitops-ml {version.tag}", notes, is_latest(version, others))
    return Published(version, sha, notes, major_moved, release)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="release.py", description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    prep = verbs.add_parser("prepare", help="move the Unreleased changelog entries under VERSION")
    prep.add_argument("version")
    prep.add_argument("--changelog", type=Path, default=Path(__file__).resolve().parents[1] / CHANGELOG)
    pub = verbs.add_parser("publish", help="on the pushed tag: check it, move the major tag, create the release")
    pub.add_argument("tag")
    pub.add_argument("--repo-dir", type=Path, default=Path.cwd())
    pub.add_argument("--remote", default="origin")
    args = parser.parse_args(argv)
    try:
        if args.verb == "prepare":
            version = parse_tag(args.version)
            prepare(args.changelog, version, datetime.date.today())
            print(f"{args.changelog.name}: Unreleased moved under {version.tag}. Next: commit it on a branch, merge "
                  f"the pull request, then tag the merged commit: git tag {version.tag} <commit> && "
                  f"git push origin {version.tag}")
            return 0
        return publish_from_environment(args.tag, args.repo_dir, args.remote)
    except ReleaseError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 2


def publish_from_environment(tag: str, repo_dir: Path, remote: str) -> int:
    missing = [name for name in ("GITHUB_REPOSITORY", "GITHUB_TOKEN") if not os.environ.get(name)]
    if missing:
        raise ReleaseError(f"{' and '.join(missing)} not set: publish runs in the release workflow "
                           "(.github/workflows/release.yml), which sets them")
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
    token = os.environ["GITHUB_TOKEN"]
    git = Git(repo_dir, token_env(server, token))
    github = GitHub(os.environ.get("GITHUB_API_URL", "https://api.github.com"), os.environ["GITHUB_REPOSITORY"], token)
    done = publish(tag, git, github, remote, server, os.environ["GITHUB_REPOSITORY"])
    moved = f"{done.version.major_tag} moved to it" if done.major_moved else (
        f"{done.version.major_tag} left on a newer release")
    print(f"released {done.version.tag} at {done.sha}; {moved}; {done.release.get('html_url', '')}")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as out:
            out.write(f"# gitops-ml {done.version.tag}\n\n{done.notes}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

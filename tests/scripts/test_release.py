"""scripts/release.py: the changelog entry, the major tag on a real remote, the release on the GitHub fake."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

import pytest
import yaml

from scripts import release  # the script, imported from the repo root (pytest's pythonpath)
from tests.conftest import ROOT
from tests.github_fake import TOKEN

ReleaseError, Version = release.ReleaseError, release.Version
WORKFLOW = "{{cookiecutter.project}}/.github/workflows/merge.yml"
IDENTITY = ["-c", "user.name=Release Tester", "-c", "user.email=release@localhost"]

CHANGELOG = """# Changelog

Kept by hand.

## Unreleased

### Updating generated repos
- Create the GitHub Environment `production`, limited to main.

### Added
- The merge workflow deploys.

## v1.0.0 - 2026-01-05

### Added
- The first release.
"""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *IDENTITY, "-C", str(repo), *args], capture_output=True, text=True)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


# -- pure parts -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["v1.2.3", "1.2.3", "v0.1.0", "v10.0.12"])
def test_release_versions_parse(text):
    assert release.parse_tag(text).tag == ("v" + text.removeprefix("v"))


@pytest.mark.parametrize("text", ["v1", "v1.2", "v1.2.3-rc1", "v01.2.3", "1.2.3.4", "v1.2.3\n", "release-1", ""])
def test_other_tags_are_refused_with_the_form_expected(text):
    with pytest.raises(ReleaseError, match="vMAJOR.MINOR.PATCH"):
        release.parse_tag(text)


def test_prepare_moves_unreleased_under_the_version_and_leaves_it_empty():
    cut = release.cut_release(CHANGELOG, Version(1, 1, 0), "2026-02-01")
    assert cut.index("## Unreleased") < cut.index("## v1.1.0 - 2026-02-01") < cut.index("## v1.0.0")
    unreleased = cut[cut.index("## Unreleased") + len("## Unreleased"):cut.index("## v1.1.0")]
    assert unreleased.strip() == ""
    entry = release.release_entry(cut, Version(1, 1, 0))
    assert entry.startswith("### Updating generated repos") and "The merge workflow deploys." in entry
    assert release.release_entry(cut, Version(1, 0, 0)) == "### Added\n- The first release."
    with pytest.raises(ReleaseError, match="Unreleased section of CHANGELOG.md is empty"):
        release.cut_release(cut, Version(1, 2, 0), "2026-02-02")


@pytest.mark.parametrize(("text", "version", "message"), [
    (CHANGELOG.replace("## Unreleased", "## Next"), Version(1, 1, 0), "no '## Unreleased' section"),
    (CHANGELOG, Version(1, 0, 0), "already has a v1.0.0 section"),
    (CHANGELOG, Version(0, 9, 0), "not newer than v1.0.0"),
])
def test_prepare_refuses(text, version, message):
    with pytest.raises(ReleaseError, match=message):
        release.cut_release(text, version, "2026-02-01")


def test_new_secrets_and_variables_are_found_in_the_template_workflows():
    before = ["env:\n  A: ${{ secrets.MLFLOW_TRACKING_URI }}\n  T: ${{ secrets.GITHUB_TOKEN }}\n"]
    after = [before[0] + "  B: ${{ secrets.REGISTRY_PASSWORD }}\nruns-on: ${{ vars.RUNNER || 'x' }}\n",
             "  C: ${{ secrets.MLFLOW_TRACKING_URI }}\n"]
    assert release.new_settings(before, after) == release.NewSettings(("REGISTRY_PASSWORD",), ("RUNNER",))
    assert release.new_settings(after, after) == release.NewSettings()


@pytest.mark.parametrize(("version", "tags", "moves", "latest"), [
    (Version(1, 0, 0), [], True, True),
    (Version(1, 3, 0), ["v1", "v1.0.0", "v1.2.0"], True, True),
    (Version(1, 2, 1), ["v1", "v1.2.0", "v1.3.0"], False, False),  # a fix of an older line: v1 stays newest
    (Version(1, 4, 1), ["v1", "v1.4.0", "v2", "v2.0.0"], True, False),  # newest v1.x, not the newest release
    (Version(2, 0, 0), ["v1", "v1.9.0"], True, True),
])
def test_the_major_tag_and_latest_follow_the_newest_release(version, tags, moves, latest):
    assert release.moves_major_tag(version, tags) is moves
    assert release.is_latest(version, tags) is latest


def test_the_notes_say_how_to_update_and_what_to_set():
    entry = release.release_entry(release.cut_release(CHANGELOG, Version(1, 1, 0), "2026-02-01"), Version(1, 1, 0))
    notes = release.release_notes(Version(1, 1, 0), "a" * 40, entry, Version(1, 0, 0),
                                  release.NewSettings(("REGISTRY_PASSWORD",), ("GITOPS_ML_DEPLOY_RUNNER",)),
                                  "https://github.com/acme/gitops-ml/compare/v1.0.0...v1.1.0")
    assert "cruft update --checkout v1.1.0 -y" in notes and "--checkout v1: the newest v1.x" in notes
    assert f"to `{'a' * 40}`, the commit of v1.1.0" in notes
    how, changed = notes.split("## What changed")
    assert "Create the GitHub Environment `production`" in how  # lifted out of the entry
    assert "`REGISTRY_PASSWORD`" in how and "`GITOPS_ML_DEPLOY_RUNNER`" in how
    assert "The merge workflow deploys." in changed and "Updating generated repos" not in changed
    assert "**Full diff**: https://github.com/acme/gitops-ml/compare/v1.0.0...v1.1.0" in changed
    plain = release.release_notes(Version(2, 0, 0), "b" * 40, "### Fixed\n- x", Version(1, 1, 0),
                                  release.NewSettings(), None)
    assert "Nothing else to do" in plain and "**A new major version.**" in plain and "`v1` stays" in plain


# -- against a real remote and the GitHub fake ----------------------------------------------------

class Repos:
    """A bare `origin`, a maintainer's clone, and the release workflow's checkout of the pushed tag."""

    def __init__(self, root: Path):
        self.origin, self.work, self.ci = root / "origin.git", root / "work", root / "ci"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.origin)], check=True)
        subprocess.run(["git", "clone", "-q", str(self.origin), str(self.work)], check=True, capture_output=True)
        git(self.work, "checkout", "-q", "-b", "main")

    def commit(self, files: dict[str, str], message: str) -> str:
        for name, text in files.items():
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            (self.work / name).write_text(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        return git(self.work, "rev-parse", "HEAD")

    def note(self, entries: str) -> str:
        """Add changelog entries under Unreleased (as a pull request would), committed."""
        changelog = self.work / "CHANGELOG.md"
        text = changelog.read_text().replace("## Unreleased\n", f"## Unreleased\n\n{entries.strip()}\n", 1)
        return self.commit({"CHANGELOG.md": text}, "changelog")

    def prepare(self, version: str) -> str:
        code = release.main(["prepare", version, "--changelog", str(self.work / "CHANGELOG.md")])
        assert code == 0
        return self.commit({}, f"Release {version}")

    def tag_and_push(self, tag: str, commit: str = "HEAD", branch: str = "main") -> None:
        git(self.work, "tag", "-a", "-m", tag, tag, commit)
        git(self.work, "push", "-q", "origin", branch, tag)

    def checkout(self) -> release.Git:
        """What actions/checkout with fetch-depth: 0 leaves: every branch and tag."""
        if not self.ci.exists():
            subprocess.run(["git", "clone", "-q", str(self.origin), str(self.ci)], check=True, capture_output=True)
        git(self.ci, "fetch", "-q", "--tags", "--force", "origin")
        return release.Git(self.ci)

    def remote_tag(self, tag: str) -> str:
        return git(self.origin, "rev-parse", f"refs/tags/{tag}^{{commit}}")


@pytest.fixture
def repos(tmp_path) -> Repos:
    made = Repos(tmp_path)
    made.commit({"CHANGELOG.md": CHANGELOG.split("## v1.0.0")[0].replace(
                    "### Updating generated repos\n- Create the GitHub Environment `production`, limited to main.\n\n",
                    "").replace("The merge workflow deploys.", "The template and its actions."),
                 WORKFLOW: "env:\n  URI: ${{ secrets.MLFLOW_TRACKING_URI }}\n"}, "gitops-ml")
    return made


@pytest.fixture
def github(github_fake, repos) -> release.GitHub:
    """The release endpoints of the fake, whose repository is `origin` (tags resolve there)."""
    github_fake.git_dir = repos.origin
    return release.GitHub(github_fake.url, "acme/gitops-ml", TOKEN)


def test_publish_moves_the_major_tag_and_creates_the_release(repos, github_fake, github):
    first = repos.prepare("1.0.0")
    repos.tag_and_push("v1.0.0")
    done = release.publish("v1.0.0", repos.checkout(), github, repository="acme/gitops-ml")
    assert done.sha == first and done.major_moved
    assert repos.remote_tag("v1") == first
    [made] = github_fake.releases
    assert made["tag_name"] == "v1.0.0" and made["name"] == "gitops-ml v1.0.0" and made["tag_sha"] == first
    assert github_fake.latest_release == made["id"]
    assert "cruft update --checkout v1.0.0" in made["body"] and "The template and its actions." in made["body"]
    assert "Full diff" not in made["body"]  # the first release has nothing to compare with

    # The next release adds a secret to the generated workflows and an update step in the changelog.
    repos.commit({WORKFLOW: "env:\n  URI: ${{ secrets.MLFLOW_TRACKING_URI }}\n  P: ${{ secrets.REGISTRY_PASSWORD }}\n"},
                 "push images")
    repos.note("### Updating generated repos\n- Set `REGISTRY_PASSWORD`.\n\n### Added\n- Image pushes.")
    second = repos.prepare("1.1.0")
    repos.tag_and_push("v1.1.0")
    done = release.publish("v1.1.0", repos.checkout(), github, repository="acme/gitops-ml")
    assert repos.remote_tag("v1") == second != first
    latest = github_fake.releases[-1]
    assert github_fake.latest_release == latest["id"] and latest["tag_sha"] == second
    assert "- Set `REGISTRY_PASSWORD`." in latest["body"]
    assert "New secret read by the workflows: `REGISTRY_PASSWORD`" in latest["body"]
    assert "compare/v1.0.0...v1.1.0" in latest["body"] and "- Image pushes." in latest["body"]
    assert "MLFLOW_TRACKING_URI" not in latest["body"]  # not new

    # A fix of the older line, tagged on an older main commit: released, but v1 and "Latest" stay.
    git(repos.work, "checkout", "-q", "-b", "fix", first)
    repos.note("### Fixed\n- A fix for v1.0.x users.")
    fix = repos.prepare("1.0.1")
    git(repos.work, "checkout", "-q", "main")
    git(repos.work, "merge", "-q", "--no-ff", "-m", "merge the fix", "fix", "-X", "ours")
    repos.tag_and_push("v1.0.1", fix)
    done = release.publish("v1.0.1", repos.checkout(), github, repository="acme/gitops-ml")
    assert not done.major_moved and repos.remote_tag("v1") == second
    assert github_fake.latest_release == latest["id"] and len(github_fake.releases) == 3


def test_a_rerun_updates_the_release_instead_of_failing(repos, github_fake, github):
    repos.prepare("1.0.0")
    repos.tag_and_push("v1.0.0")
    for _ in range(2):
        release.publish("v1.0.0", repos.checkout(), github, repository="acme/gitops-ml")
    assert len(github_fake.releases) == 1
    assert github_fake.calls_to("create_release") == 1 and github_fake.calls_to("update_release") == 1


def test_a_tag_off_main_is_refused_and_nothing_moves(repos, github_fake, github):
    main = repos.prepare("1.0.0")
    repos.tag_and_push("v1.0.0")
    release.publish("v1.0.0", repos.checkout(), github, repository="acme/gitops-ml")
    git(repos.work, "checkout", "-q", "-b", "unreviewed")
    repos.note("### Added\n- Something nobody reviewed.")
    repos.prepare("1.1.0")
    repos.tag_and_push("v1.1.0", branch="unreviewed")
    with pytest.raises(ReleaseError, match="not on main: release only reviewed commits"):
        release.publish("v1.1.0", repos.checkout(), github, repository="acme/gitops-ml")
    assert repos.remote_tag("v1") == main
    assert len(github_fake.releases) == 1


def test_a_tag_without_its_changelog_entry_is_refused(repos, github_fake, github):
    repos.tag_and_push("v1.0.0")  # tagged without `prepare`
    with pytest.raises(ReleaseError, match=r"no entries under '## v1.0.0': run `python3 scripts/release.py prepare"):
        release.publish("v1.0.0", repos.checkout(), github, repository="acme/gitops-ml")
    assert not github_fake.releases
    assert git(repos.origin, "tag", "--list") == "v1.0.0"  # no v1


def test_the_cli_publishes_from_the_workflow_environment(repos, github_fake, github, monkeypatch, tmp_path, capsys):
    sha = repos.prepare("1.0.0")
    repos.tag_and_push("v1.0.0")
    checkout = repos.checkout()
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/gitops-ml")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.test")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert release.main(["publish", "v1.0.0", "--repo-dir", str(checkout.repo)]) == 0
    assert f"released v1.0.0 at {sha}; v1 moved to it" in capsys.readouterr().out
    assert summary.read_text().startswith("# gitops-ml v1.0.0\n\n## How to update a generated repository")
    assert all(r.authorized for r in github_fake.requests)

    github_fake.fail["update_release"] = 403
    assert release.main(["publish", "v1.0.0", "--repo-dir", str(checkout.repo)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("ERROR: GitHub refused the release of v1.0.0 (HTTP 403") and "contents: write" in error
    assert TOKEN not in error

    monkeypatch.delenv("GITHUB_TOKEN")
    assert release.main(["publish", "v1.0.0", "--repo-dir", str(checkout.repo)]) == 2
    assert "GITHUB_TOKEN not set" in capsys.readouterr().err


def test_the_cli_refuses_a_bad_version_without_a_traceback(capsys, tmp_path):
    changelog = tmp_path / "CHANGELOG.md"
    changelog.write_text(CHANGELOG)
    assert release.main(["prepare", "1.1", "--changelog", str(changelog)]) == 2
    assert "vMAJOR.MINOR.PATCH" in capsys.readouterr().err
    assert changelog.read_text() == CHANGELOG
    assert release.main(["prepare", "v1.1.0", "--changelog", str(changelog)]) == 0
    assert f"## v1.1.0 - {datetime.date.today().isoformat()}" in changelog.read_text()


def test_the_token_reaches_git_through_the_environment_only():
    env = release.token_env("https://github.com/", "secret-token")
    assert env["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraheader"
    assert "secret-token" not in env["GIT_CONFIG_VALUE_0"]  # base64, as git's basic auth header
    assert env["GIT_TERMINAL_PROMPT"] == "0"


def test_the_release_workflow_runs_ci_first_and_only_its_release_job_can_write():
    workflow = yaml.safe_load((ROOT / ".github/workflows/release.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert triggers == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yml" and jobs["ci"]["permissions"] == {"contents": "read"}
    assert jobs["release"]["needs"] == "ci" and jobs["release"]["permissions"] == {"contents": "write"}
    checkout, publish = jobs["release"]["steps"]
    assert checkout["with"] == {"fetch-depth": 0, "persist-credentials": False}
    assert publish["run"] == 'python3 scripts/release.py publish "$TAG"'
    assert publish["env"]["TAG"] == "${{ github.ref_name }}"
    ci = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    assert "workflow_call" in ci[True]

"""Who may move production: the decisions the merge job takes before anything moves.

Pure functions of what GitHub and the registry said: which merged pull requests a push brings
(reconcile), whether the pull request's head was approved (stale approvals do not count), whether a
candidate version was trained from that head, whether the protected holdout is the pinned one, and
whether a job holds the credentials its identity needs. Tags written by pull-request jobs never
decide anything here except as a claim that is checked against GitHub's own answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

NO_COMMIT = "0" * 40  # `before` of a push that created the branch

# The secrets behind each identity's MLflow environment, named in errors (see the generated README).
IDENTITY_SECRETS = {
    "candidate": {"MLFLOW_TRACKING_URI": "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME": "MLFLOW_CANDIDATE_USERNAME",
                  "MLFLOW_TRACKING_PASSWORD": "MLFLOW_CANDIDATE_PASSWORD"},
    "production": {"MLFLOW_TRACKING_URI": "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME": "MLFLOW_TRACKING_USERNAME",
                   "MLFLOW_TRACKING_PASSWORD": "MLFLOW_TRACKING_PASSWORD"},
}
WHERE = {"candidate": "a repository secret (Settings > Secrets and variables > Actions)",
         "production": "a secret of the GitHub Environment `production`"}


def missing_credentials(env: Mapping[str, str], ci: bool, identity: str | None) -> str | None:
    """Why this job may not talk to the registry, or None.

    Outside CI nothing is required (the contract's local SQLite registry is used). In CI the tracking
    URI must be set, so a check never runs green against a throwaway registry in the runner; a job
    that declares its identity (GITOPS_ML_IDENTITY) needs that identity's username and password too.
    """
    if not ci:
        return None
    names = IDENTITY_SECRETS.get(identity or "", {})
    required = list(names) if names else ["MLFLOW_TRACKING_URI"]
    empty = [variable for variable in required if not (env.get(variable) or "").strip()]
    if not empty:
        return None
    secrets = ", ".join(names.get(variable, variable) for variable in empty)
    where = WHERE.get(identity or "", "a repository secret")
    return (f"no registry credentials: {', '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty in this job. "
            f"Set the secret(s) {secrets} ({where}); without them this check would run against an empty "
            "registry inside the runner and prove nothing.")


@dataclass(frozen=True)
class Approval:
    head_sha: str
    approved_by: tuple[str, ...]   # latest review APPROVED, on head_sha
    stale: tuple[str, ...]         # latest review APPROVED, but on an older commit
    blocked_by: tuple[str, ...]    # latest review CHANGES_REQUESTED

    @property
    def ok(self) -> bool:
        return bool(self.approved_by) and not self.blocked_by

    def refusal(self) -> str | None:
        if self.blocked_by:
            return f"changes were requested by {', '.join(self.blocked_by)} (their latest review)"
        if not self.approved_by:
            stale = f" (approvals of older commits do not count: {', '.join(self.stale)})" if self.stale else ""
            return f"head {self.head_sha[:12]} has no approving review{stale}"
        return None


def approval_at_head(reviews: Iterable[Mapping], head_sha: str, author: str | None = None) -> Approval:
    """Each reviewer's latest decisive review (COMMENTED and PENDING are not decisive) decides for them.

    An approval counts only if it was given on `head_sha`, so a push after the approval voids it; a
    DISMISSED review counts as none; a later CHANGES_REQUESTED blocks. The author's own reviews never count.
    """
    latest: dict[str, Mapping] = {}
    for review in reviews:
        login = (review.get("user") or {}).get("login")
        if not login or login == author or review.get("state") in ("COMMENTED", "PENDING"):
            continue
        latest[login] = review
    approved = sorted(u for u, r in latest.items() if r.get("state") == "APPROVED" and r.get("commit_id") == head_sha)
    stale = sorted(u for u, r in latest.items() if r.get("state") == "APPROVED" and r.get("commit_id") != head_sha)
    blocked = sorted(u for u, r in latest.items() if r.get("state") == "CHANGES_REQUESTED")
    return Approval(head_sha, tuple(approved), tuple(stale), tuple(blocked))


@dataclass(frozen=True)
class Candidate:
    """A version of the candidates model, with what its training run recorded."""

    version: str
    run_git_sha: str | None     # the run's `git_sha` tag
    version_git_sha: str | None  # the version's `git_sha` tag
    dirty: bool                 # the run's `git_dirty` tag said the tree had uncommitted changes


def candidate_for(candidates: Sequence[Candidate], head_sha: str) -> tuple[Candidate | None, str | None]:
    """The newest candidate trained from `head_sha` (run and version agree, clean tree), or why none is."""
    bound = [c for c in candidates if c.run_git_sha == head_sha and c.version_git_sha == head_sha and not c.dirty]
    if bound:
        return max(bound, key=lambda c: int(c.version)), None
    claimed = [c.version for c in candidates if head_sha in (c.run_git_sha, c.version_git_sha)]
    if claimed:
        return None, (f"candidate version(s) {', '.join(claimed)} claim head {head_sha[:12]}, but their training run "
                      "and version disagree or the tree was dirty; re-run the pull request's train job")
    return None, (f"no candidate version was trained from head {head_sha[:12]}; the pull request's train job "
                  "must have run on its latest commit (re-run it, then re-run this workflow)")


@dataclass(frozen=True)
class MergedPull:
    number: int
    head_sha: str
    merge_sha: str


def prs_to_process(commits: Sequence[str], pulls_by_commit: Mapping[str, Sequence[Mapping]], base: str,
                   done: Iterable[int] = ()) -> list[MergedPull]:
    """The pull requests merged into `base` by `commits` (oldest first), each once, in merge order.

    A pull request counts when GitHub lists it for a commit, it was merged into `base`, and its merge
    commit is one of `commits`; those in `done` (already verified) are skipped, so a re-run or an
    overlapping push never processes a pull request twice.
    """
    order = {sha: i for i, sha in enumerate(commits)}
    found: dict[int, MergedPull] = {}
    skip = set(done)
    for sha in commits:
        for pull in pulls_by_commit.get(sha, ()):
            number, merge_sha = pull.get("number"), pull.get("merge_commit_sha")
            if (number is None or number in skip or number in found or not pull.get("merged_at")
                    or (pull.get("base") or {}).get("ref") != base or merge_sha not in order):
                continue
            found[int(number)] = MergedPull(int(number), (pull.get("head") or {}).get("sha") or "", merge_sha)
    return sorted(found.values(), key=lambda p: order[p.merge_sha])


def holdout_refusal(path: str, pinned: str | None, actual: str | None) -> str | None:
    """Why the holdout may not be used: its content hash must be the one pinned in the contract."""
    if not pinned:
        return None
    if actual is None:
        return f"the protected holdout {path} is missing; run `dvc pull {path}`"
    if actual != pinned:
        return (f"the protected holdout {path} has sha256 {actual[:16]}…, but data.holdout_sha256 pins "
                f"{pinned[:16]}…: the holdout changed without the pin (which CODEOWNERS review) changing")
    return None

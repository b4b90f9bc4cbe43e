"""Jinja extensions for this cookiecutter template (cookiecutter loads them from `_extensions`).

`Sandbox`: cookiecutter renders every answer as a Jinja template before any hook can validate it,
in an environment that is not sandboxed: an answer such as `{{ lipsum.__globals__.os.popen(...) }}`
would run code on the machine generating the project. `Sandbox` turns that environment into
Jinja's sandboxed one before anything is rendered, so such an answer fails with a SecurityError
and nothing runs, while ordinary template features keep working.

`PinnedActions`: the generated workflows call the gitops-ml actions pinned by full commit SHA (a
tag can be moved; a SHA cannot), with the chosen ref as a comment, the way third-party actions are
pinned. The SHA is the commit of the template being rendered (cruft's `_commit`, or the HEAD of
cookiecutter's checkout), unless the `actions_ref` answer is itself a full SHA.

`CruftRerender`: `cruft update` and `cruft diff` render the template again, into throwaway folders,
and diff those renders against each other or the project. The post-generation hook asks
`cruft_rerender()` so that there it only shapes the files (sample data, deploy folder) and leaves out
git and DVC initialisation: that state is binary, machine-specific, and already in the user's repo.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from jinja2.exceptions import TemplateRuntimeError
from jinja2.ext import Extension
from jinja2.sandbox import SandboxedEnvironment

FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


class Sandbox(Extension):
    def __init__(self, environment):
        super().__init__(environment)
        environment.__class__ = type(f"Sandboxed{type(environment).__name__}",
                                     (SandboxedEnvironment, type(environment)), {})
        # What SandboxedEnvironment.__init__ would have set: the operator tables it checks.
        environment.binop_table = dict(SandboxedEnvironment.default_binop_table)
        environment.unop_table = dict(SandboxedEnvironment.default_unop_table)


def template_commit(repo_dir: str) -> str:
    """The commit the template checkout at `repo_dir` is at."""
    found = subprocess.run(["git", "-C", repo_dir, "rev-parse", "HEAD"], capture_output=True, text=True)
    sha = found.stdout.strip()
    if found.returncode != 0 or not FULL_SHA.match(sha):
        raise TemplateRuntimeError(
            f"cannot tell which commit of gitops-ml this is ({repo_dir} is not a git checkout): render the template "
            "from its git repository (cookiecutter/cruft with the repository URL), or answer actions_ref with the "
            "full 40-character commit SHA of the gitops-ml release the workflows should call"
        )
    return sha


def actions_sha(cookiecutter: dict) -> str:
    """The commit SHA the generated repo pins the gitops-ml actions (and `make setup`) to.

    An `actions_ref` answer that is a full SHA wins. Under cruft (create, update, diff) the context
    carries `_commit`, the template commit being rendered: `cruft update` renders the old and the new
    commit, so the pin moves with the update. Plain cookiecutter sets `_repo_dir` (its checkout) instead.
    """
    ref = str(cookiecutter.get("actions_ref", ""))
    if FULL_SHA.match(ref):
        return ref
    commit = str(cookiecutter.get("_commit") or "")
    if FULL_SHA.match(commit):
        return commit
    if not cookiecutter.get("_repo_dir"):
        raise TemplateRuntimeError(
            "cannot tell which commit of gitops-ml is being rendered (neither cruft's _commit nor cookiecutter's "
            "_repo_dir is set): use cruft 2.16 or later, or answer actions_ref with the full 40-character commit SHA "
            "of the gitops-ml release"
        )
    return template_commit(str(cookiecutter["_repo_dir"]))


def gitops_ml_action(cookiecutter: dict, name: str) -> str:
    """`<actions_repo>/actions/<name>@<sha>  # <ref>`: a `uses:` value pinned by SHA with the ref as comment."""
    return f"{cookiecutter['actions_repo']}/actions/{name}@{actions_sha(cookiecutter)}  # {cookiecutter['actions_ref']}"


class PinnedActions(Extension):
    def __init__(self, environment):
        super().__init__(environment)
        environment.filters["actions_sha"] = actions_sha
        environment.filters["gitops_ml_action"] = gitops_ml_action


# cruft's throwaway layout: the template is cloned into <tmp>/repo and rendered beside it, into
# <tmp>/current_template and <tmp>/new_template (update) or <tmp>/remote and <tmp>/local (diff); see
# cruft/_commands/update.py and diff.py, unchanged since cruft 2.5. `cruft create` and cookiecutter
# clone the template elsewhere (cruft create: into a temporary folder of its own, no "repo" level).
RERENDER_SIBLINGS = ({"current_template"}, {"new_template"}, {"remote", "local"})


def cruft_rerender(template_dir: Path | None = None) -> bool:
    """True while cruft update/diff re-render the template (call it while a hook is rendered: cookiecutter
    renders hooks with the template checkout as the working directory)."""
    checkout = Path.cwd() if template_dir is None else template_dir
    if checkout.name != "repo":
        return False
    beside = {path.name for path in checkout.parent.iterdir() if path.is_dir()}
    return any(names <= beside for names in RERENDER_SIBLINGS)


class CruftRerender(Extension):
    def __init__(self, environment):
        super().__init__(environment)
        environment.globals["cruft_rerender"] = cruft_rerender

"""Jinja extensions for this cookiecutter template (cookiecutter loads them from `_extensions`).

`Sandbox`: cookiecutter renders every answer as a Jinja template before any hook can validate it,
in an environment that is not sandboxed: an answer such as `{{ lipsum.__globals__.os.popen(...) }}`
would run code on the machine generating the project. `Sandbox` turns that environment into
Jinja's sandboxed one before anything is rendered, so such an answer fails with a SecurityError
and nothing runs, while ordinary template features keep working.

`PinnedActions`: the generated workflows call the gitops-ml actions pinned by full commit SHA (a
tag can be moved; a SHA cannot), with the chosen ref as a comment, the way third-party actions are
pinned. The SHA is the commit of the template checkout being rendered (cookiecutter and cruft both
render from a git checkout), unless the `actions_ref` answer is itself a full SHA.
"""

from __future__ import annotations

import re
import subprocess

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
    """The commit SHA the generated repo pins the gitops-ml actions (and `make setup`) to."""
    ref = str(cookiecutter.get("actions_ref", ""))
    return ref if FULL_SHA.match(ref) else template_commit(str(cookiecutter["_repo_dir"]))


def gitops_ml_action(cookiecutter: dict, name: str) -> str:
    """`<actions_repo>/actions/<name>@<sha>  # <ref>`: a `uses:` value pinned by SHA with the ref as comment."""
    return f"{cookiecutter['actions_repo']}/actions/{name}@{actions_sha(cookiecutter)}  # {cookiecutter['actions_ref']}"


class PinnedActions(Extension):
    def __init__(self, environment):
        super().__init__(environment)
        environment.filters["actions_sha"] = actions_sha
        environment.filters["gitops_ml_action"] = gitops_ml_action

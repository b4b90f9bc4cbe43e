"""Reject invalid answers before anything is generated, naming the answer and what is allowed.

Answers reach this file through `tojson`, so no answer can change its code. (Cookiecutter renders
each answer as a template before this hook runs; local_extensions.Sandbox makes that rendering
harmless.) Free text never reaches a workflow, and may hold neither line breaks nor the opener of a
GitHub Actions expression (written below as EXPRESSION, since this file is itself a template).
"""

import re
import sys

SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
OWNER_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$")
GITHUB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}$")
REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
REGISTRY = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$")
TEAM = re.compile(r"^@[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9][A-Za-z0-9._-]*$")
OWNER = re.compile(r"^(@[A-Za-z0-9][A-Za-z0-9-]{0,38}(/[A-Za-z0-9][A-Za-z0-9._-]*)?|[^@\s]+@[^@\s]+\.[a-z]+)$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
FREE_TEXT = ("display_name", "description", "author")
EXPRESSION = "$" + "{" * 2
KEYWORDS = {"import", "class", "def", "return", "from", "lambda", "global", "pass", "test", "tests"}

ANSWERS = {
    "project": {{ cookiecutter.project | tojson }},
    "display_name": {{ cookiecutter.display_name | tojson }},
    "package": {{ cookiecutter.package | tojson }},
    "description": {{ cookiecutter.description | tojson }},
    "author": {{ cookiecutter.author | tojson }},
    "github_owner": {{ cookiecutter.github_owner | tojson }},
    "github_repo": {{ cookiecutter.github_repo | tojson }},
    "code_owners": {{ cookiecutter.code_owners | tojson }},
    "actions_repo": {{ cookiecutter.actions_repo | tojson }},
    "actions_ref": {{ cookiecutter.actions_ref | tojson }},
    "container_registry": {{ cookiecutter.container_registry | tojson }},
    "task": {{ cookiecutter.task | tojson }},
    "deploy_target": {{ cookiecutter.deploy_target | tojson }},
    "python_version": {{ cookiecutter.python_version | tojson }},
}


def problems(answers: dict) -> list:
    """Every invalid answer, as 'name: value seen; what is allowed'. Pure, so tests call it directly."""
    found = []

    def check(name, ok, allowed):
        if not ok:
            found.append(f"{name} = {answers[name]!r}: {allowed}")

    check("project", SLUG.match(answers["project"]) and len(answers["project"]) <= 63,
          "use lowercase letters, digits and single dashes, at most 63 characters (e.g. churn-model)")
    check("display_name", answers["display_name"].strip() != "", "give a non-empty display name")
    for name in FREE_TEXT:
        text = answers[name]
        check(name, not CONTROL.search(text) and EXPRESSION not in text and len(text) <= 300,
              f"free text on one line, at most 300 characters, without '{EXPRESSION}' (it must never become a "
              "GitHub Actions expression)")
    package = answers["package"]
    check("package", IDENTIFIER.match(package) and package not in KEYWORDS,
          "must be a valid Python package name: lowercase letters, digits and underscores, not starting "
          f"with a digit and not a keyword (e.g. {'model_' + package if package[:1].isdigit() else 'churn_model'})")
    check("github_owner", GITHUB_NAME.match(answers["github_owner"]), "a GitHub user or organisation name")
    check("github_repo", REF.match(answers["github_repo"]) and "/" not in answers["github_repo"],
          "a GitHub repository name (letters, digits, '.', '_', '-')")
    check("actions_repo", OWNER_REPO.match(answers["actions_repo"]), "must be <owner>/<repo>, e.g. acme/gitops-ml")
    check("actions_ref", REF.match(answers["actions_ref"]) and ".." not in answers["actions_ref"],
          "a tag, branch or commit SHA, e.g. v1")
    registry = answers["container_registry"]
    check("container_registry", REGISTRY.match(registry) and ".." not in registry,
          "a registry and optional path in lowercase, e.g. ghcr.io/acme or 127.0.0.1:5000")
    owners = answers["code_owners"].split()
    check("code_owners", owners and all(OWNER.match(o) for o in owners) and any(TEAM.match(o) for o in owners),
          "one or more owners separated by spaces, at least one a team (@org/team-name): an organisation alone "
          "(@org) is not a valid code owner, so GitHub would silently not require its review")
    check("task", answers["task"] in ("classification", "regression"), "one of: classification, regression")
    check("deploy_target", answers["deploy_target"] in ("docker", "kubernetes"), "one of: docker, kubernetes")
    if answers["deploy_target"] == "kubernetes":
        # The Service is named after the project (a DNS label: starts with a letter) and the
        # namespaces are <project>-staging and <project>-production (at most 63 characters).
        check("project", answers["project"][:1].isalpha() and len(answers["project"]) <= 52,
              "with deploy_target kubernetes, start with a letter and use at most 52 characters "
              "(the Service and the <project>-production namespace are named after it)")
    check("python_version", answers["python_version"] in ("3.11", "3.12", "3.13"), "one of: 3.11, 3.12, 3.13")
    return found


if __name__ == "__main__":
    errors = problems(ANSWERS)
    if errors:
        print("ERROR: cannot generate the project; fix these answers and run again:", file=sys.stderr)
        for line in errors:
            print(f"  - {line}", file=sys.stderr)
        sys.exit(1)

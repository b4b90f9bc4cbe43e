"""Reject invalid answers before anything is generated, naming the answer and what is allowed."""

import re
import sys

SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
OWNER_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$")
GITHUB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}$")
REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
REGISTRY = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$")
KEYWORDS = {"import", "class", "def", "return", "from", "lambda", "global", "pass", "test", "tests"}

ANSWERS = {
    "project": "{{ cookiecutter.project }}",
    "display_name": {{ cookiecutter.display_name | tojson }},
    "package": "{{ cookiecutter.package }}",
    "github_owner": "{{ cookiecutter.github_owner }}",
    "github_repo": "{{ cookiecutter.github_repo }}",
    "actions_repo": "{{ cookiecutter.actions_repo }}",
    "actions_ref": "{{ cookiecutter.actions_ref }}",
    "container_registry": "{{ cookiecutter.container_registry }}",
    "task": "{{ cookiecutter.task }}",
    "deploy_target": "{{ cookiecutter.deploy_target }}",
    "python_version": "{{ cookiecutter.python_version }}",
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
    package = answers["package"]
    check("package", IDENTIFIER.match(package) and package not in KEYWORDS,
          "must be a valid Python package name: lowercase letters, digits and underscores, not starting "
          f"with a digit and not a keyword (e.g. {'model_' + package if package[:1].isdigit() else 'churn_model'})")
    check("github_owner", GITHUB_NAME.match(answers["github_owner"]), "a GitHub user or organisation name")
    check("github_repo", REF.match(answers["github_repo"]) and "/" not in answers["github_repo"],
          "a GitHub repository name (letters, digits, '.', '_', '-')")
    check("actions_repo", OWNER_REPO.match(answers["actions_repo"]), "must be <owner>/<repo>, e.g. acme/gitops-ml")
    check("actions_ref", REF.match(answers["actions_ref"]), "a tag, branch or commit SHA, e.g. v1")
    check("container_registry", REGISTRY.match(answers["container_registry"]),
          "a registry and optional path in lowercase, e.g. ghcr.io/acme or 127.0.0.1:5000")
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

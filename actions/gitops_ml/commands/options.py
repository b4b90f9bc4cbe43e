"""Options shared by the verbs, defined once, and the one place a verb's inputs are built.

Every option names its environment variable (`GITOPS_ML_<OPTION>`): that is how an action's
inputs arrive (through `env:`, never `${{ }}` inside `run:`). `build` loads the contract and turns
the callback's keyword arguments into the verb's frozen `Inputs`, resolving every relative path
against the repository root (the contract file's folder) on the way.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from gitops_ml.core.contract import CONTRACT_FILE, Contract, load_contract

T = TypeVar("T")


def path_option(*names: str, **kwargs: Any):
    return click.option(*names, type=click.Path(path_type=Path), **kwargs)


contract = path_option("--contract", "contract_path", default=Path(CONTRACT_FILE), envvar="GITOPS_ML_CONTRACT",
                       help="the contract file (gitops-ml.yaml) of the model repository")
tracking_uri = click.option(
    "--tracking-uri", envvar="GITOPS_ML_TRACKING_URI", default=None, show_default=False,
    help="MLflow tracking URI [default: MLFLOW_TRACKING_URI, else registry.tracking_uri in the contract]")
pr_number = click.option("--pr-number", envvar="GITOPS_ML_PR_NUMBER", default=None,
                         help="the pull request this run is for")
repository = click.option("--repository", envvar=["GITOPS_ML_REPOSITORY", "GITHUB_REPOSITORY"], default=None,
                          help="owner/repo on GitHub")
sha = click.option("--sha", envvar=["GITOPS_ML_SHA", "GITHUB_SHA"], default=None,
                   help="the commit this run is for (a pull request's head)")
github_token = click.option("--github-token", envvar="GITHUB_TOKEN", default=None, show_default=False,
                            help="GitHub token; without it nothing is read from or posted to GitHub")


def out(default: str, help: str):
    return path_option("--out", envvar="GITOPS_ML_OUT", default=Path(default), help=help)


def data(default: str | None, help: str):
    return path_option("--data", envvar="GITOPS_ML_DATA", default=None if default is None else Path(default),
                       help=help)


def github(fn):
    """--pr-number, --repository, --sha and --github-token; `build` gathers them into `GitHubTarget`."""
    for option in (github_token, sha, repository, pr_number):
        fn = option(fn)
    return fn


@dataclass(frozen=True)
class GitHubTarget:
    """Where a verb reads from or reports to on GitHub."""

    repository: str | None = None
    token: str | None = field(default=None, repr=False)
    pr_number: str | None = None
    sha: str | None = None

    @property
    def usable(self) -> bool:
        """A token and a repository: enough to call the API."""
        return bool(self.token and self.repository)


def root_of(contract_path: Path) -> Path:
    """The repository root: the contract file's folder (or the folder given)."""
    path = Path(contract_path).resolve()
    return path if path.is_dir() else path.parent


def _is_path(annotation: Any) -> bool:
    return annotation is Path or Path in typing.get_args(annotation)


def build(cls: type[T], given: dict[str, Any]) -> tuple[Contract, T]:
    """The contract named by `--contract`, and `cls` built from the callback's arguments.

    A field of `cls` takes the argument of the same name; `root` is the repository root; `github`
    gathers the GitHub options; a relative `Path` is resolved against the root, here and only here.
    `--tracking-uri` becomes MLFLOW_TRACKING_URI, which every MLflow client in the process reads.
    """
    if given.get("tracking_uri"):
        os.environ["MLFLOW_TRACKING_URI"] = given["tracking_uri"]
    contract_path = given["contract_path"]
    loaded = load_contract(contract_path)
    root = root_of(contract_path)
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        name = item.name
        if name == "root":
            values[name] = root
        elif name == "github":
            values[name] = GitHubTarget(given.get("repository"), given.get("github_token"),
                                        given.get("pr_number"), given.get("sha"))
        elif name in given:
            value = given[name]
            if isinstance(value, Path) and _is_path(hints[name]) and not value.is_absolute():
                value = root / value
            values[name] = value
    return loaded, cls(**values)


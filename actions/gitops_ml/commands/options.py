"""Options shared by several verbs, and loading the contract once per command."""

from __future__ import annotations

from pathlib import Path

import click

from gitops_ml.core.contract import CONTRACT_FILE, Contract, load_contract

contract_option = click.option(
    "--contract", "contract_path", type=click.Path(path_type=Path), default=CONTRACT_FILE,
    envvar="GITOPS_ML_CONTRACT", help="the contract file (gitops-ml.yaml) of the model repository",
)


def load(contract_path: Path) -> tuple[Contract, Path]:
    """The contract and the repository root (the contract file's folder)."""
    contract = load_contract(contract_path)
    root = contract_path if contract_path.is_dir() else contract_path.parent
    return contract, root

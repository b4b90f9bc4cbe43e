from __future__ import annotations

from pathlib import Path

import click

from gitops_ml.commands import options, train


@click.command("train")
@options.contract_option
@click.option("--pr-number", envvar="GITOPS_ML_PR_NUMBER", default=None, help="pull request the model is for")
@click.option("--repro/--no-repro", envvar="GITOPS_ML_REPRO", default=True, help="run `dvc repro` first")
@click.option("--out", type=click.Path(path_type=Path), envvar="GITOPS_ML_OUT", default=Path("reports/train.json"),
              help="result file")
def cli(contract_path: Path, pr_number: str | None, repro: bool, out: Path) -> None:
    """Run the pipeline (dvc repro), log the run and register a model version."""
    contract, root = options.load(contract_path)
    train.run(contract, root, pr_number, repro, out if out.is_absolute() else root / out)

from __future__ import annotations

from pathlib import Path

import click

from gitops_ml.commands import bake, options


@click.command("bake")
@options.contract_option
@click.option("--model", "ref", envvar="GITOPS_ML_MODEL", default="@champion",
              help="models:/NAME@ALIAS, models:/NAME/VERSION, @ALIAS or a version number")
@click.option("--out", type=click.Path(path_type=Path), envvar="GITOPS_ML_OUT", default=Path("build/model"),
              help="folder to write")
def cli(contract_path: Path, ref: str, out: Path) -> None:
    """Download a registered model (plus registry.json) into a folder the Dockerfile bakes in."""
    contract, _ = options.load(contract_path)
    bake.run(contract, ref, out)

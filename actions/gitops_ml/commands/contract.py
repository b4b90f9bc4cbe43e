"""`gitops-ml contract`: the contract's JSON Schema, and a starting contract inferred from a dataset.

`gitops-ml contract schema` prints the JSON Schema of gitops-ml.yaml (what
`schema/gitops-ml.schema.json` holds and the generated file's first line points editors to).
`gitops-ml contract infer --data my.csv --target COLUMN` prints a `data:` section (types, ranges
with headroom, categories, nullability, a suggested sensitive attribute, commented) and the task's
default `metrics:` and `promotion:`; with `--write` it puts them into the contract file in place,
keeping every other line, and only when the result validates.

Unlike the other verbs these do not start from a valid contract (`infer` is how one gets made),
so `InferInputs` is built here rather than by `options.build`, which loads the contract first;
relative paths are still resolved against the repository root, the contract file's folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click
import yaml

from gitops_ml.commands import options
from gitops_ml.core.contract import ContractError, json_schema_text, parse_contract
from gitops_ml.core.infer import Inferred, infer, render_data, render_policy, render_section, replace_sections
from gitops_ml.io import csv_input, gha


@dataclass(frozen=True)
class InferInputs:
    contract_path: Path
    data: Path
    target: str
    task: str | None = None
    sensitive_attribute: str | None = None
    write: bool = False

    @property
    def root(self) -> Path:
        return options.root_of(self.contract_path)

    @property
    def shown_data(self) -> str:
        """The data path as the contract records it: relative to the repository root when inside it."""
        try:
            return self.data.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(self.data)


def _command(inputs: InferInputs) -> str:
    parts = ["gitops-ml contract infer", f"--data {inputs.shown_data}", f"--target {inputs.target}"]
    parts += [f"--task {inputs.task}"] if inputs.task else []
    parts += [f"--sensitive-attribute {inputs.sensitive_attribute}"] if inputs.sensitive_attribute else []
    return " ".join(parts)


def written(inputs: InferInputs, inferred: Inferred) -> str:
    """The contract file's new text; ContractError (and nothing written) when it would not validate."""
    path = inputs.contract_path
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    sections = {"data": render_data(inferred, _command(inputs)),
                "metrics": render_section("metrics", inferred.metrics),
                "promotion": render_section("promotion", inferred.promotion)}
    new = replace_sections(text, sections, inferred.task)
    parse_contract(yaml.safe_load(new), str(path))  # raises ContractError naming the keys
    return new


def run_infer(inputs: InferInputs) -> Inferred:
    data = inputs.data if inputs.data.is_absolute() else inputs.root / inputs.data
    frame = csv_input.read_strings(data)
    inferred = infer(frame, inputs.target, inputs.shown_data, inputs.task, inputs.sensitive_attribute)
    if inputs.write:
        old = yaml.safe_load(inputs.contract_path.read_text(encoding="utf-8")) if inputs.contract_path.is_file() else {}
        new = written(inputs, inferred)
        gha.write_text(inputs.contract_path, new)
        gha.log(f"wrote model.task ({inferred.task}), data, metrics and promotion to {inputs.contract_path}; "
                "review the diff before training")
        holdout = ((old or {}).get("data") or {}).get("holdout")
        if holdout:
            gha.warning(f"data.holdout ({holdout}) was left out: it holds the old data's rows. Until you pin a "
                        "protected holdout of your own data (README: The protected holdout), comparisons use "
                        "the held-out split data/split/test.csv")
    else:
        click.echo(render_data(inferred, _command(inputs)) + "\n" + render_policy(inferred), nl=False)
    return inferred


@click.group("contract")
def cli() -> None:
    """The contract file: its JSON Schema, or a starting one inferred from your data."""


@cli.command("schema")
def schema() -> int:
    """Print the JSON Schema of gitops-ml.yaml."""
    click.echo(json_schema_text(), nl=False)
    return 0


@cli.command("infer")
@options.contract
@options.path_option("--data", envvar="GITOPS_ML_DATA", required=True, help="the CSV to describe")
@click.option("--target", envvar="GITOPS_ML_TARGET", required=True, help="the column the model predicts")
@click.option("--task", type=click.Choice(["classification", "regression"]), default=None,
              help="[default: from the target: text or few whole numbers classify, other numbers regress]")
@click.option("--sensitive-attribute", default=None, help="a text column whose groups fairness compares")
@click.option("--write", is_flag=True, help="put the sections into the contract file (only if it then validates)")
def infer_cli(contract_path: Path, **given) -> int:
    """Infer a starting data: section (and the task's metrics and promotion) from a CSV, for review."""
    inputs = InferInputs(contract_path=contract_path.resolve(), **given)
    try:
        run_infer(inputs)
    except csv_input.NotCSVError as error:
        raise ContractError(f"{inputs.data}: {error}") from None
    return 0

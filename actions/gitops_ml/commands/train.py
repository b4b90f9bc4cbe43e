"""`gitops-ml train`: run the repository's pipeline, then log and register the model in MLflow.

The version goes to the candidates model (`registry.candidates_model`, default `<model>-candidates`):
the identity pull requests hold can write there and nowhere else. It is tagged with the git SHA it
was trained from; `gitops-ml verify` binds it to the merged pull request's head by that SHA.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click

from gitops_ml.commands import options
from gitops_ml.core.contract import Contract
from gitops_ml.core.report import train_summary
from gitops_ml.io import gha, repo
from gitops_ml.io.reference import REFERENCE_ARTIFACT
from gitops_ml.io.registry import Registry, tracking_uri

ARTIFACTS = ("reports/evaluation.json", "reports/evaluation.png", "reports/data-check/result.json")
MODEL_DIR = Path("models/model")
TRAIN_SPLIT = Path("data/split/train.csv")
REFERENCE_MAX_ROWS = 50_000


@dataclass(frozen=True)
class Inputs:
    root: Path
    out: Path
    pr_number: str | None = None
    repro: bool = True


def log_reference(train_csv: Path) -> None:
    """Log the training split (sampled if large) as the model's drift reference."""
    import tempfile

    import mlflow
    import pandas as pd

    frame = pd.read_csv(train_csv)
    if len(frame) > REFERENCE_MAX_ROWS:
        frame = frame.sample(REFERENCE_MAX_ROWS, random_state=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
        frame.to_csv(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))


def provenance(contract: Contract, root: Path, pr_number: str | None) -> dict[str, str | None]:
    """Where the model comes from: commit, data, pull request (tags on the run and the version)."""
    return {
        "git_sha": repo.git_sha(root),
        "git_dirty": str(repo.git_dirty(root)).lower(),
        "data_hash": repo.data_hash(contract.data.train, root),
        "data_path": contract.data.train,
        "pr_number": pr_number or None,
    }


def log_and_register(contract: Contract, root: Path, facts: dict, run_name: str):
    """One MLflow run: params, metrics, reports, the drift reference and the registered model."""
    import mlflow

    from gitops_ml.io.model_dir import load_model_dir, log_model

    metrics = repo.read_metrics(root / "metrics.json")
    params = repo.flat_params(root / "params.yaml")
    tags = {k: v for k, v in facts.items() if v is not None}
    name = contract.registry.candidates_name
    mlflow.set_experiment(name)
    with mlflow.start_run(run_name=run_name) as active:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        mlflow.set_tags(tags)
        if (root / TRAIN_SPLIT).is_file():
            log_reference(root / TRAIN_SPLIT)
        for artifact in ARTIFACTS:
            if (root / artifact).is_file():
                mlflow.log_artifact(str(root / artifact), artifact_path=str(Path(artifact).parent))
        loaded = load_model_dir(root / MODEL_DIR)
        info = log_model(loaded.model, contract, name, extra={**tags, "metrics": metrics})
    return str(info.registered_model_version), active.info.run_id, metrics, params


def run(contract: Contract, inputs: Inputs) -> dict:
    root = inputs.root
    if inputs.repro:
        with gha.group("dvc repro"):
            repo.run_dvc(["repro"], cwd=root)
    if not (root / MODEL_DIR / "MLmodel").is_file():
        raise repo.RepoError(f"{root / MODEL_DIR} has no MLmodel: the pipeline's train stage did not save a model")
    facts = provenance(contract, root, inputs.pr_number)
    registry = Registry.candidates(contract)  # also points mlflow at the tracking URI
    with gha.group(f"log and register {registry.name} at {registry.shown_uri}"):
        version, run_id, metrics, params = log_and_register(
            contract, root, facts, f"pr-{inputs.pr_number}" if inputs.pr_number else "train")
        registry.set_tags(version, {**facts, "params": json.dumps(params, sort_keys=True, default=str)})
    result = {"model_name": registry.name, "version": version, "model_uri": f"models:/{registry.name}/{version}",
              "run_id": run_id, "metrics": metrics, **facts}
    gha.publish(inputs.out, result, train_summary(result),
                outputs={key.replace("_", "-"): result[key]
                         for key in ("version", "model_uri", "run_id", "data_hash", "git_sha")})
    gha.log(f"registered {result['model_uri']} (run {run_id}) at {tracking_uri(contract)}")
    return result


@click.command("train")
@options.contract
@options.tracking_uri
@options.pr_number
@click.option("--repro/--no-repro", envvar="GITOPS_ML_REPRO", default=True, help="run `dvc repro` first")
@options.out("reports/train.json", "result file")
def cli(**given) -> int:
    """Run the pipeline (dvc repro), log the run and register a model version."""
    contract, inputs = options.build(Inputs, given)
    run(contract, inputs)
    return 0

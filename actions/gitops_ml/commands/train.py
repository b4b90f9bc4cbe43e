"""`gitops-ml train`: run the repository's pipeline, then log and register the model in MLflow."""

from __future__ import annotations

import json
from pathlib import Path

from gitops_ml.core.contract import Contract
from gitops_ml.io import gha, repo
from gitops_ml.io.reference import REFERENCE_ARTIFACT
from gitops_ml.io.registry import Registry, tracking_uri

ARTIFACTS = ("reports/evaluation.json", "reports/evaluation.png", "reports/data-check/result.json")
REFERENCE_MAX_ROWS = 50_000


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


def run(contract: Contract, root: Path, pr_number: str | None, repro: bool, out: Path) -> dict:
    if repro:
        with gha.group("dvc repro"):
            repo.run_dvc(["repro"], cwd=root)
    model_dir = root / "models" / "model"
    if not (model_dir / "MLmodel").is_file():
        raise repo.RepoError(f"{model_dir} has no MLmodel: the pipeline's train stage did not save a model")

    import mlflow

    from gitops_ml.io.model_dir import load_model_dir, log_model

    metrics = repo.read_metrics(root / "metrics.json")
    params = repo.flat_params(root / "params.yaml")
    provenance = {
        "git_sha": repo.git_sha(root),
        "git_dirty": str(repo.git_dirty(root)).lower(),
        "data_hash": repo.data_hash(contract.data.train, root),
        "data_path": contract.data.train,
        "pr_number": pr_number or None,
    }
    registry = Registry.for_contract(contract)  # also points mlflow at the tracking URI
    mlflow.set_experiment(contract.registry.model_name)
    run_name = f"pr-{pr_number}" if pr_number else "train"
    with gha.group(f"log and register {contract.registry.model_name} at {tracking_uri(contract)}"):
        with mlflow.start_run(run_name=run_name) as active:
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
            mlflow.set_tags({k: v for k, v in provenance.items() if v is not None})
            if (root / "data/split/train.csv").is_file():
                log_reference(root / "data/split/train.csv")
            for artifact in ARTIFACTS:
                if (root / artifact).is_file():
                    mlflow.log_artifact(str(root / artifact), artifact_path=str(Path(artifact).parent))
            loaded = load_model_dir(model_dir)
            extra = {**{k: v for k, v in provenance.items() if v is not None}, "metrics": metrics}
            info = log_model(loaded.model, contract, contract.registry.model_name, extra=extra)
        version = str(info.registered_model_version)
        registry.set_tags(version, {**provenance, "params": json.dumps(params, sort_keys=True, default=str)})
    result = {
        "model_name": contract.registry.model_name,
        "version": version,
        "model_uri": f"models:/{contract.registry.model_name}/{version}",
        "run_id": active.info.run_id,
        "metrics": metrics,
        **provenance,
    }
    gha.write_text(out, json.dumps(result, indent=2) + "\n")
    for key in ("version", "model_uri", "run_id", "data_hash", "git_sha"):
        gha.set_output(key.replace("_", "-"), result[key])
    table = "\n".join(f"| {name} | {value:.4f} |" for name, value in metrics.items())
    summary = (
        f"### Trained {contract.registry.model_name} version {version}\n\n"
        f"git `{provenance['git_sha']}` · data `{provenance['data_hash']}` · run `{active.info.run_id}`\n\n"
        f"| metric | held-out |\n| --- | --- |\n{table}\n"
    )
    gha.add_summary(summary)
    print(f"registered {result['model_uri']} (run {active.info.run_id})")
    return result
